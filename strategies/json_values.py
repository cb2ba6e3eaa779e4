"""Schema-free JSON building blocks: strings, numbers, any-values and ids.

These are the leaves every schema-derived strategy is built from.  Strings
lean on the characters that exercise a JSON encoder and QEMU's parser: the
ones that must be escaped (``"``, ``\\``, U+0000-U+001F), DEL, the line and
paragraph separators, astral characters (surrogate pairs on QEMU's ASCII
output, Q1) and a NUL, which QEMU accepts inside a string (observed, 7.2).
Surrogate code points are excluded: they cannot be encoded as UTF-8, and
their ``\\uD800`` escape is a parse error in QEMU, not a string.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from hypothesis import strategies as st

from conformance.protocol.spellings import SPELLINGS, Spelling

#: Characters that stress escaping, picked often on purpose.
SPECIAL_CHARS = (
    '"',
    "\\",
    "/",
    "\x00",
    "\x01",
    "\x08",
    "\t",
    "\n",
    "\x0c",
    "\r",
    "\x1f",
    "\x7f",
    "\u00e9",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "'",
)

_char = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(SPECIAL_CHARS),
)

#: Any valid JSON string (as text; the encoder escapes what must be escaped).
json_strings: st.SearchStrategy[str] = st.text(_char, max_size=24)

#: JSON numbers QEMU reads: integers across int64 and uint64 and beyond
#: (beyond uint64 QEMU holds them as doubles), and finite doubles.
INT_EDGES = (
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**32,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**63,
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    10**30,
)
json_ints: st.SearchStrategy[int] = st.one_of(
    st.integers(-(2**15), 2**15), st.sampled_from(INT_EDGES), st.integers()
)
json_floats: st.SearchStrategy[float] = st.floats(allow_nan=False, allow_infinity=False)
json_numbers: st.SearchStrategy[int | float] = st.one_of(json_ints, json_floats)

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), json_ints, json_floats, json_strings
)


@functools.cache
def json_values(depth: int = 3, width: int = 4) -> st.SearchStrategy[Any]:
    """Any JSON value (QAPI's ``any``): scalars, and arrays and objects of at
    most ``width`` members nested at most ``depth`` levels.

    Built as ``depth`` fixed layers rather than with ``st.recursive``, whose
    leaf counting made a value cost about three times as much to draw (and a
    campaign spends most of its time drawing); depth beyond a few levels is
    :func:`deep_values`' job.  Built once per shape: strategies are
    immutable, so sharing them is safe.
    """
    layer: st.SearchStrategy[Any] = json_scalars
    for _ in range(depth):
        layer = st.one_of(
            json_scalars,
            st.lists(layer, max_size=width),
            st.dictionaries(json_strings, layer, max_size=width),
        )
    return layer


def deep_values(max_depth: int = 400) -> st.SearchStrategy[Any]:
    """A scalar wrapped in up to ``max_depth`` arrays/objects, for depth-heavy ids.

    Kept well under QEMU's 1024 nesting limit (with the request object and
    Python's own recursion limit in ``json.dumps`` in mind).
    """

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        value = draw(json_scalars)
        depth = draw(st.integers(1, max_depth))
        as_object = draw(st.booleans())
        key = draw(json_strings)
        for _ in range(depth):
            value = {key: value} if as_object else [value]
        return value

    return build()


def ids() -> st.SearchStrategy[Any]:
    """Request ids of every JSON type (Q15): scalars, containers, deep nesting,
    large numbers, Unicode strings."""
    return st.one_of(json_scalars, json_values(), deep_values())


_DIGITS = "0123456789"


def _number_spelling(parts: tuple[str, str, str, str]) -> Spelling:
    text = "".join(parts)
    # Python reads every spelling of the grammar; infinity means past a double.
    return Spelling("number", text, limit=math.isinf(float(text)))


#: Numbers spelled from RFC 8259's grammar, part by part: sign, integer part
#: (0, or up to 40 digits), fraction, exponent (either letter, any sign, up to
#: four digits, so past a double's range too).
number_spellings: st.SearchStrategy[Spelling] = st.tuples(
    st.sampled_from(["", "-"]),
    st.one_of(
        st.just("0"),
        st.tuples(st.sampled_from(_DIGITS[1:]), st.text(_DIGITS, max_size=40)).map("".join),
    ),
    st.one_of(st.just(""), st.text(_DIGITS, min_size=1, max_size=25).map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.tuples(
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.text(_DIGITS, min_size=1, max_size=4),
        ).map("".join),
    ),
).map(_number_spelling)

#: Ids as JSON text spelled every way the grammar allows (the catalogue's
#: classes of :data:`SPELLINGS`, and numbers drawn from the grammar): what a
#: client library's encoder never writes.
id_spellings: st.SearchStrategy[Spelling] = st.one_of(st.sampled_from(SPELLINGS), number_spellings)
