"""JSON texts that spell values in the ways the grammar allows (RFC 8259 §6, §7).

A client library writes a number or a string one way; the grammar allows
many, and a server's reader has to take them all.  Each :class:`Spelling` is
one class of the grammar: the text as sent, and whether RFC 8259 §9 lets a
reader refuse it ("an implementation may set limits on ... the range and
precision of numbers, the length and character contents of strings").  A
spelling that is not a limit must be read as the value it spells; one that
is may be refused with an error, but if it is read, the same rules apply.
Either way, whatever the server writes back must be JSON (Q37).

Values are compared as :func:`~conformance.protocol.decoding.json_equal`
does: as the numbers QEMU holds (integers beyond 64 bits and every fraction
as doubles), so a rounded echo of ``0.1`` or ``1e-400`` (0) is the same value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from .values import JSON

__all__ = ["NUMBER_SPELLINGS", "SPELLINGS", "STRING_SPELLINGS", "Spelling"]


@dataclass(frozen=True)
class Spelling:
    """One way of writing a JSON value, and what a reader owes it."""

    #: The grammar class, as reports name it.
    label: str
    #: The JSON text, exactly as it goes on the wire.
    text: str
    #: RFC 8259 §9 lets a reader refuse it (a range or a character limit).
    limit: bool = False

    @cached_property
    def value(self) -> JSON:
        """The value the text spells (Python's reader takes every spelling here,
        lone surrogates and beyond-double numbers included, as ``inf``)."""
        decoded: JSON = json.loads(self.text)
        return decoded


#: Numbers: every part of the grammar (sign, integer, fraction, exponent with
#: either letter and any sign), the edges of int64, uint64 and double, and
#: magnitudes past them.
NUMBER_SPELLINGS: tuple[Spelling, ...] = (
    Spelling("zero", "0"),
    Spelling("negative zero", "-0"),
    Spelling("negative zero fraction", "-0.0"),
    Spelling("zero exponent", "0E0"),
    Spelling("exponent with plus", "1e+2"),
    Spelling("upper-case exponent", "1E2"),
    Spelling("negative exponent", "15E-1"),
    Spelling("fraction and exponent", "0.1e1"),
    Spelling("exponent with leading zeros", "1e007"),
    Spelling("long fraction", "0.1000000000000000055511151231257827"),
    Spelling("int64 max", "9223372036854775807"),
    Spelling("int64 min", "-9223372036854775808"),
    Spelling("uint64 max", "18446744073709551615"),
    Spelling("past uint64", "18446744073709551616"),
    Spelling("past int64 below", "-9223372036854775809"),
    Spelling("thirty digits", "123456789012345678901234567890"),
    Spelling("smallest subnormal", "4.9406564584124654e-324"),
    Spelling("smallest normal", "2.2250738585072014e-308"),
    Spelling("largest double", "1.7976931348623157e308"),
    Spelling("underflow to zero", "2.5e-400"),
    Spelling("past double", "1e400", limit=True),
    Spelling("past double below", "-1e400", limit=True),
    Spelling("four hundred digits", "1" * 400, limit=True),
)

#: Strings: every escape, both hex cases, surrogate pairs, raw UTF-8, and the
#: code points a reader may refuse (lone surrogates, noncharacters).
STRING_SPELLINGS: tuple[Spelling, ...] = (
    Spelling("short escapes", r'"\" \\ \/ \b \f \n \r \t"'),
    Spelling("escaped controls", r'"\u0000\u001f\u0001"'),
    Spelling("lower-case hex", r'"\u00e9"'),
    Spelling("upper-case hex", r'"\u00E9"'),
    Spelling("surrogate pair", r'"\ud83d\ude00"'),
    Spelling("raw UTF-8", '"\u00e9\u2028\U0001f600"'),
    Spelling("raw DEL", '"\x7f"'),
    Spelling("escaped byte order mark", r'"\ufeff"'),
    Spelling("lone high surrogate", r'"\ud800"', limit=True),
    Spelling("lone low surrogate", r'"\udc00"', limit=True),
    Spelling("reversed surrogates", r'"\ude00\ud83d"', limit=True),
    Spelling("noncharacter", r'"\uffff"', limit=True),
)

SPELLINGS: tuple[Spelling, ...] = NUMBER_SPELLINGS + STRING_SPELLINGS
