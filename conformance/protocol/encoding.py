"""QEMU's JSON output format, byte for byte.

QEMU prints compact JSON with ``", "`` and ``": "`` separators, ASCII only
(uppercase ``\\uXXXX``, surrogate pairs for astral characters, DEL escaped
too), keeps ``\\b \\f \\n \\r \\t \\" \\\\`` as short escapes, never escapes
``/``, prints doubles with ``%.17g`` (so ``inf`` is possible and is not valid
JSON), and ends each message with CRLF on a monitor (LF on the guest agent).
Member order is the order QEMU's QDict iterates in; ``key_order="qdict"``
reproduces it, ``"insertion"`` keeps the dict's own order.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeAlias

from ._qemu import NONCHAR_OR_SURROGATE, qdict_keys, qdict_order
from .values import INT64_MIN, JSON, UINT64_MAX, qemu_number

__all__ = ["KeyOrder", "encode", "encode_request", "encode_string", "format_number"]

KeyOrder: TypeAlias = Literal["insertion", "qdict"]

_LOWER_HEX_ESCAPE = re.compile(r"\\(u[0-9a-f]{4}|.)")


def _upper_escape(match: re.Match[str]) -> str:
    body = match.group(1)
    return "\\" + ("u" + body[1:].upper() if len(body) == 5 else body)


def encode_string(text: str) -> str:
    """``text`` as a QEMU JSON string literal (quotes included).

    Characters QEMU can never hold (lone surrogates, noncharacters) come out
    as U+FFFD, which is what QEMU prints for any invalid sequence.
    """
    if NONCHAR_OR_SURROGATE.search(text):
        text = NONCHAR_OR_SURROGATE.sub("\ufffd", text)
    # json.dumps already matches QEMU except for lowercase hex; it runs in C.
    out = json.dumps(text, ensure_ascii=True)
    if "\\u" in out:
        out = _LOWER_HEX_ESCAPE.sub(_upper_escape, out)
    return out


def format_number(value: int | float) -> str:
    """A number as QEMU prints it (int64/uint64 exactly, else ``%.17g``)."""
    value = qemu_number(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.17g}"


class _Close:
    """Marker on the work stack: emit a closing bracket."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


#: Strings that print as themselves between quotes: printable ASCII but ``"`` and ``\\``.
_plain = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z").match
#: The same few member names and values recur in every message: their text
#: is kept, per dict shape (keys in insertion order, for each key order) the
#: names in writing order and the text before each value ('{"a": ', ', "b": '),
#: and short strings.  Bounded, since names and values may come from peers.
_Shape: TypeAlias = tuple[tuple[str, ...], tuple[str, ...]]
_SHAPES: dict[tuple[str, ...], _Shape] = {}
_QDICT_SHAPES: dict[tuple[str, ...], _Shape] = {}
_STRINGS: dict[str, str] = {}
_CACHE_MAX = 4096
_CACHED_STRING_MAX = 256
#: Deeper values are encoded by the iterative encoder, which has no depth limit.
_RECURSION_LIMIT = 200


class _TooDeep(Exception):
    """The recursive encoder gave up; the iterative one takes over."""


def _shape(keys: tuple[str, ...], qdict: bool) -> _Shape:
    cache = _QDICT_SHAPES if qdict else _SHAPES
    names = qdict_keys(keys) if qdict else keys
    heads = tuple(("{" if i == 0 else ", ") + encode_string(n) + ": " for i, n in enumerate(names))
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    shape = cache[keys] = (names, heads)
    return shape


def _string(text: str) -> str:
    """``encode_string`` of an exact str, kept when short."""
    out = f'"{text}"' if _plain(text) else encode_string(text)
    if len(text) <= _CACHED_STRING_MAX:
        if len(_STRINGS) >= _CACHE_MAX:
            _STRINGS.clear()
        _STRINGS[text] = out
    return out


def _other(value: JSON, qdict: bool) -> str:
    """A value the fast encoder's loops do not write themselves."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is dict:
        return "{}"  # non-empty ones are written by the loop
    if type(value) is list:
        return "[]"
    # Floats, integers QEMU holds as doubles, subclasses, non-JSON values.
    return _encode_iterative(value, "qdict" if qdict else "insertion")


def _encode_fast(value: Any, qdict: bool, depth: int, parts: list[str]) -> None:
    """Append the text of ``value``, a non-empty dict or list, to ``parts``.

    Recursive, on exact types, with the common scalars written in the loop
    of their container (a call per member costs more than the member).
    Produces what :func:`_encode_iterative` produces; raises :class:`_TooDeep`
    past ``_RECURSION_LIMIT`` levels.  ``value`` and members are ``Any``:
    the checks are on exact types, which mypy does not narrow on.
    """
    if depth > _RECURSION_LIMIT:
        raise _TooDeep
    append = parts.append
    if type(value) is dict:
        keys = tuple(value)
        names, heads = (_QDICT_SHAPES if qdict else _SHAPES).get(keys) or _shape(keys, qdict)
        for name, head in zip(names, heads, strict=True):
            member: Any = value[name]
            kind = type(member)
            if kind is str:
                append(head + (_STRINGS.get(member) or _string(member)))
            elif kind is int and INT64_MIN <= member <= UINT64_MAX:
                append(f"{head}{member}")
            elif (kind is dict or kind is list) and member:
                append(head)
                _encode_fast(member, qdict, depth + 1, parts)
            else:
                append(head + _other(member, qdict))
        append("}")
    else:
        sep = "["
        for element in value:
            kind = type(element)
            if kind is str:
                append(sep + (_STRINGS.get(element) or _string(element)))
            elif kind is int and INT64_MIN <= element <= UINT64_MAX:
                append(f"{sep}{element}")
            elif (kind is dict or kind is list) and element:
                append(sep)
                _encode_fast(element, qdict, depth + 1, parts)
            else:
                append(sep + _other(element, qdict))
            sep = ", "
        append("]")


def _encode_iterative(value: JSON, key_order: KeyOrder) -> str:
    parts: list[str] = []
    work: list[JSON | _Close | tuple[str, JSON]] = [value]
    while work:
        item = work.pop()
        if isinstance(item, _Close):
            parts.append(item.text)
            continue
        if isinstance(item, tuple):
            key, item = item
            parts.append(encode_string(key))
            parts.append(": ")
        if item is None:
            parts.append("null")
        elif item is True:
            parts.append("true")
        elif item is False:
            parts.append("false")
        elif isinstance(item, str):
            parts.append(encode_string(item))
        elif isinstance(item, int | float):
            parts.append(format_number(item))
        elif isinstance(item, dict):
            if not item:
                parts.append("{}")
                continue
            keys = list(item) if key_order == "insertion" else qdict_order(item)
            parts.append("{")
            work.append(_Close("}"))
            for index in range(len(keys) - 1, -1, -1):
                work.append((keys[index], item[keys[index]]))
                if index:
                    work.append(_Close(", "))
        elif isinstance(item, list):
            if not item:
                parts.append("[]")
                continue
            parts.append("[")
            work.append(_Close("]"))
            for index in range(len(item) - 1, -1, -1):
                work.append(item[index])
                if index:
                    work.append(_Close(", "))
        else:
            raise TypeError(f"not a JSON value: {type(item).__name__}")
    return "".join(parts)


def encode(
    value: JSON,
    *,
    terminator: bytes = b"\r\n",
    key_order: KeyOrder = "insertion",
) -> bytes:
    """Serialise ``value`` exactly as QEMU would write it, plus ``terminator``.

    Arbitrarily deep values encode.  Raises :class:`TypeError` when
    ``value`` holds something that is not a JSON value.
    """
    # Every message a server sends passes here: a recursive encoder on
    # exact types is several times faster than the general iterative one,
    # which still handles what is too deep for it.
    kind = type(value)
    if (kind is dict or kind is list) and value:
        parts: list[str] = []
        try:
            _encode_fast(value, key_order == "qdict", 0, parts)
            text = "".join(parts)
        except _TooDeep:
            text = _encode_iterative(value, key_order)
    elif kind is str:
        assert isinstance(value, str)
        text = encode_string(value)
    else:
        text = _other(value, key_order == "qdict")
    return text.encode("ascii") + terminator


def encode_request(message: object) -> bytes:
    """A request as a client writes it: compact JSON, UTF-8, non-ASCII left raw.

    Lone surrogates pass through as their (invalid) UTF-8 bytes, so a value
    that QEMU would reject still reaches it as generated.

    Raises :class:`ValueError` for NaN or infinities (not JSON).
    """
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8", "surrogatepass"
    )
