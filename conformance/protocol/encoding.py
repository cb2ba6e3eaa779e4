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
from typing import Literal, TypeAlias

from ._qemu import NONCHAR_OR_SURROGATE, qdict_order
from .values import JSON, qemu_number

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


def encode(
    value: JSON,
    *,
    terminator: bytes = b"\r\n",
    key_order: KeyOrder = "insertion",
) -> bytes:
    """Serialise ``value`` exactly as QEMU would write it, plus ``terminator``.

    Iterative, so arbitrarily deep values encode.  Raises :class:`TypeError`
    when ``value`` holds something that is not a JSON value.
    """
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
    return "".join(parts).encode("ascii") + terminator


def encode_request(message: object) -> bytes:
    """A request as a client writes it: compact JSON, UTF-8, non-ASCII left raw.

    Lone surrogates pass through as their (invalid) UTF-8 bytes, so a value
    that QEMU would reject still reaches it as generated.

    Raises :class:`ValueError` for NaN or infinities (not JSON).
    """
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8", "surrogatepass"
    )
