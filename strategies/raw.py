"""Byte-level negatives: input no JSON parser should accept as a request.

Each example is a valid request's bytes with one corruption.  Limits are
parameters (QEMU 7.2: nesting 1024, token 64 MiB) so a server with smaller
ones can be probed cheaply; oversized tokens are built outside Hypothesis's
choice sequence (a repeat count), so their size is bounded by the limit plus
a few bytes, not by Hypothesis's buffer.  A corruption may leave the parser
inside an open structure; send ``b"\\x01"`` afterwards to reset it (Q32).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

from conformance.protocol.encoding import encode_request
from conformance.protocol.spellings import SPELLINGS
from strategies.invalid import Invalid
from strategies.json_values import json_strings

QEMU_DEPTH_LIMIT = 1024
QEMU_TOKEN_LIMIT = 64 * 1024 * 1024
#: Ids inside raw bytes start with this; no other strategy draws such an id,
#: so a reply to corrupted bytes is never taken for the reply to a request.
RAW_ID_PREFIX = "qc-raw-"

RAW_RULES = {
    "malformed-json": "Q32",
    "invalid-utf8": "Q1",
    "nesting-too-deep": "§2.4",
    "control-character": "Q32",
    "oversized-token": "§2.4",
}

#: Junk with no quote or backslash, so QEMU's single-quote extension cannot
#: turn it into a string.
_JUNK = (
    "]",
    "}",
    ",",
    ":",
    "NaN",
    "Infinity",
    "True",
    "NULL",
    "01",
    "+1",
    ".5",
    "1.",
    "-",
    "0x10",
    "%p",
    "nul",
    "hello",
)
#: Invalid UTF-8 (QEMU's modified UTF-8 accepts the overlong ``c0 80``, so not that).
_BAD_UTF8 = (
    b"\x80",
    b"\xbf",
    b"\xff",
    b"\xfe",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xf5\x80\x80\x80",
    b"\xf0\x80\x80",
)
_CONTROL = tuple(bytes([b]) for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))

_BASE: st.SearchStrategy[dict[str, Any]] = st.sampled_from(
    [
        {"execute": "query-version"},
        {"execute": "query-name", "id": RAW_ID_PREFIX + "1"},
        {"execute": "qom-list", "arguments": {"path": "/"}},
    ]
)


def _text(message: dict[str, Any]) -> str:
    return json.dumps(message)


def raw_inputs(
    *,
    labels: list[str] | None = None,
    depth_limit: int = QEMU_DEPTH_LIMIT,
    token_limit: int = QEMU_TOKEN_LIMIT,
) -> st.SearchStrategy[Invalid]:
    """Labelled raw-byte negatives (``RAW_RULES``).

    Raises :class:`ValueError` when ``labels`` names no raw label.

    >>> ex = raw_inputs(labels=["invalid-utf8"]).example()  # doctest: +SKIP
    >>> ex.label, ex.raw  # doctest: +SKIP
    ('invalid-utf8', b'{"execute": "query-version", "id": "\\xff"}')
    """
    wanted = set(labels) if labels is not None else set(RAW_RULES)
    options: list[st.SearchStrategy[Invalid]] = []
    if "malformed-json" in wanted:
        options.append(
            st.tuples(_BASE, st.sampled_from(_JUNK), st.integers(0, 10**6)).map(
                lambda x: _malformed(*x)
            )
        )
    if "invalid-utf8" in wanted:
        options.append(
            st.tuples(_BASE, st.sampled_from(_BAD_UTF8), st.text(max_size=4)).map(
                lambda x: _bad_utf8(*x)
            )
        )
    if "nesting-too-deep" in wanted:
        options.append(st.integers(1, 64).map(lambda extra: _deep(depth_limit, extra)))
    if "control-character" in wanted:
        options.append(
            st.tuples(_BASE, st.sampled_from(_CONTROL), st.integers(0, 10**6)).map(
                lambda x: _control(*x)
            )
        )
    if "oversized-token" in wanted:
        options.append(
            st.tuples(st.integers(1, 16), st.booleans()).map(lambda x: _oversized(token_limit, *x))
        )
    if not options:
        raise ValueError(f"no raw violation fits {sorted(wanted)}")
    return st.one_of(options)


def _invalid(label: str, raw: bytes, **notes: Any) -> Invalid:
    return Invalid(label, RAW_RULES[label], raw=raw, notes=notes)


def _malformed(base: dict[str, Any], junk: str, where: int) -> Invalid:
    text = _text(base)
    # Insert right after a structural character, outside any string.
    spots = [i + 1 for i, ch in enumerate(text) if ch in "{,:" and _outside_string(text, i)]
    at = spots[where % len(spots)]
    return _invalid("malformed-json", (text[:at] + junk + text[at:]).encode())


def _outside_string(text: str, index: int) -> bool:
    inside = False
    escaped = False
    for ch in text[:index]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = inside
        elif ch == '"':
            inside = not inside
    return not inside


def _bad_utf8(base: dict[str, Any], bad: bytes, around: str) -> Invalid:
    message = dict(base, id="\x00MARK\x00")
    text = json.dumps(message).encode()
    marker = json.dumps("\x00MARK\x00").encode()
    value = json.dumps(around).encode()[1:-1]
    return _invalid("invalid-utf8", text.replace(marker, b'"' + value + bad + b'"'))


def _deep(limit: int, extra: int) -> Invalid:
    # The request's own "{" counts: QEMU limits open braces and brackets together.
    n = limit + extra
    return _invalid(
        "nesting-too-deep", b'{"execute": "query-version", "id": ' + b"[" * n + b"]" * n + b"}"
    )


def _control(base: dict[str, Any], char: bytes, where: int) -> Invalid:
    text = _text(base).encode()
    at = where % (len(text) + 1)
    return _invalid("control-character", text[:at] + char + text[at:])


def _oversized(limit: int, extra: int, as_string: bool) -> Invalid:
    size = limit + extra
    token = b'"' + b"a" * size + b'"' if as_string else b"1" * size
    return _invalid("oversized-token", b'{"execute": "query-version", "id": ' + token + b"}")


def _max_depth(raw: bytes) -> int:
    depth = best = 0
    inside = escaped = False
    for byte in raw:
        if inside:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                inside = False
        elif byte == 0x22:
            inside = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            best = max(best, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return best


def _strict_json(raw: bytes) -> bool:
    def reject(name: str) -> Any:
        raise ValueError(name)

    try:
        json.loads(raw, parse_constant=reject)
    except ValueError:
        return False
    return True


_LONG_TOKEN = re.compile(rb'"[^"]*"|[0-9a-zA-Z.+-]+')


def raw_label_holds(
    ex: Invalid, *, token_limit: int | None = None, depth_limit: int = QEMU_DEPTH_LIMIT
) -> bool:
    """The re-check of raw labels on the bytes themselves."""
    raw = ex.raw
    if raw is None:
        return False
    if ex.label == "malformed-json":
        return b"'" not in raw and not _strict_json(raw)
    if ex.label == "invalid-utf8":
        try:
            raw.replace(b"\xc0\x80", b"?").decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False
    if ex.label == "nesting-too-deep":
        return _max_depth(raw) > depth_limit
    if ex.label == "control-character":
        return any(bytes([b]) in _CONTROL for b in raw)
    if ex.label == "oversized-token":
        limit = QEMU_TOKEN_LIMIT if token_limit is None else token_limit
        return any(len(m.group()) > limit for m in _LONG_TOKEN.finditer(raw))
    return False


_PIECES = (
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b":",
    b",",
    b"\\",
    b"'",
    b"\\u",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\x00",
    b"\r\n",
    b" ",
    b"1e999",
    b"-",
    b"nul",
    b"true",
    b'"execute"',
    b'"arguments"',
    b"{}",
    b"[]",
    b"\x7f",
    b"\t",
    # Every number and string spelling of the grammar, as tokens of the soup.
    *(spelling.text.encode() for spelling in SPELLINGS),
)
_TOKEN_SOUP = st.lists(st.sampled_from(_PIECES), max_size=24).map(b"".join)
_OPENERS = st.tuples(
    st.sampled_from([b"[", b'{"a":']),
    st.sampled_from(
        [10, QEMU_DEPTH_LIMIT - 1, QEMU_DEPTH_LIMIT, QEMU_DEPTH_LIMIT + 1, QEMU_DEPTH_LIMIT + 76]
    ),
)


@st.composite
def _cut_request(draw: st.DrawFn) -> bytes:
    message = encode_request(
        {"execute": draw(json_strings), "id": f"{RAW_ID_PREFIX}{draw(st.integers(0, 999))}"}
    )
    cut = draw(st.integers(0, len(message)))
    return message[:cut] + draw(st.binary(max_size=4)) + message[cut:]


def raw_noise() -> st.SearchStrategy[bytes]:
    """Unlabelled bytes: random binary, a soup of JSON tokens and broken
    UTF-8, structures opened around the nesting limit and never closed, and
    a request with a few bytes spliced in.

    Nothing is promised about what such bytes break, only that a server
    must survive them and keep serving other requests (Q32); their ids, if
    any, start with :data:`RAW_ID_PREFIX`.
    """
    return st.one_of(
        st.binary(max_size=48),
        _TOKEN_SOUP,
        _OPENERS.map(lambda pair: pair[0] * pair[1]),
        _cut_request(),
    )
