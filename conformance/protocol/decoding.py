"""Client side: decode what a QMP server writes, robustly, and compare JSON values.

A conformance client must survive anything a server (or a fuzzed QEMU)
prints, so decoding never raises anything but :class:`DecodeError`.  It is
iterative because QEMU echoes ids up to 1024 levels deep, deeper than
Python's ``json`` can recurse.  QEMU prints an overflowed double as ``inf``
(its ``%.17g``), which is not JSON; ``allow_nonfinite`` (default on) accepts
``inf``/``-inf``/``nan``/``-nan`` so such replies can still be matched.
"""

from __future__ import annotations

import json
import json.decoder
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .values import JSON, qemu_number

__all__ = [
    "DecodeError",
    "DecodedLine",
    "LineReader",
    "decode",
    "decode_buffer",
    "json_equal",
]


class DecodeError(ValueError):
    """A server line that is not (acceptable) JSON."""

    def __init__(
        self, message: str, raw: bytes = b"", position: int = 0, framing: bool = False
    ) -> None:
        super().__init__(message if framing else f"{message} (at offset {position})")
        self.message = message
        self.raw = raw
        self.position = position
        #: The line itself is broken (cut for length, or ended with the
        #: stream), not the JSON in it.
        self.framing = framing


@dataclass(frozen=True, slots=True)
class DecodedLine:
    """One server line: its value, or why it could not be decoded.

    ``raw`` is the line as received, terminator included (framing rules judge
    it).  ``sentinel`` is set when the line started with the guest agent's
    0xFF resynchronisation byte (stripped before decoding).
    """

    raw: bytes = field(repr=False)
    value: JSON = None
    error: DecodeError | None = None
    sentinel: bool = False


# Python's C string scanner (strict: raw control characters are rejected).
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORD = re.compile(r"-?[A-Za-z]+")
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan, "-nan": math.nan}


def _reject_constant(name: str) -> JSON:
    raise ValueError(f"non-JSON constant {name}")


#: One decoder for every line: ``json.loads`` with an option builds a new one per call.
_FAST = json.JSONDecoder(parse_constant=_reject_constant)


def decode(line: bytes | str, *, allow_nonfinite: bool = True) -> JSON:
    """Decode one JSON text (surrounding whitespace and CR/LF allowed).

    Raises :class:`DecodeError` when the bytes are not UTF-8 or the text is not
    one JSON value (``inf`` and ``nan`` only pass with ``allow_nonfinite``).
    """
    raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")
    if isinstance(line, bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid UTF-8", raw, exc.start) from None
    else:
        text = line
    try:
        # Fast path in C; anything unusual falls through to the exact parser.
        return _FAST.decode(text)  # type: ignore[no-any-return]
    except (ValueError, RecursionError):
        pass
    return _Parser(text, raw, allow_nonfinite).parse()


class _Parser:
    def __init__(self, text: str, raw: bytes, allow_nonfinite: bool) -> None:
        self.text = text
        self.raw = raw
        self.allow_nonfinite = allow_nonfinite

    def fail(self, message: str, pos: int) -> DecodeError:
        return DecodeError(message, self.raw, pos)

    def ws(self, pos: int) -> int:
        match = _WS.match(self.text, pos)
        assert match is not None
        return match.end()

    def string(self, pos: int) -> tuple[str, int]:
        try:
            return _scanstring(self.text, pos + 1, True)
        except (ValueError, IndexError) as exc:
            raise self.fail(f"bad string: {exc}", pos) from None

    def key(self, pos: int) -> tuple[str, int]:
        pos = self.ws(pos)
        if self.text[pos : pos + 1] != '"':
            raise self.fail("expected a string key", pos)
        key, pos = self.string(pos)
        pos = self.ws(pos)
        if self.text[pos : pos + 1] != ":":
            raise self.fail("expected ':'", pos)
        return key, pos + 1

    def scalar(self, pos: int) -> tuple[JSON, int]:
        text = self.text
        char = text[pos : pos + 1]
        if char == '"':
            return self.string(pos)
        number = _NUMBER.match(text, pos)
        word = _WORD.match(text, pos)
        if word is not None and (number is None or word.end() > number.end()):
            name = word.group()
            if name == "true":
                return True, word.end()
            if name == "false":
                return False, word.end()
            if name == "null":
                return None, word.end()
            if self.allow_nonfinite and name in _NONFINITE:
                return _NONFINITE[name], word.end()
            raise self.fail(f"unexpected word {name[:40]!r}", pos)
        if number is None:
            raise self.fail("expecting value", pos)
        literal = number.group()
        end = number.end()
        if end < len(text) and (text[end].isalnum() or text[end] == "."):
            raise self.fail("malformed number", pos)
        if "." in literal or "e" in literal or "E" in literal or len(literal) > 4000:
            return float(literal), end
        return int(literal), end

    def parse(self) -> JSON:
        text = self.text
        n = len(text)
        stack: list[dict[str, JSON] | list[JSON]] = []
        keys: list[str] = []
        pos = 0
        while True:
            pos = self.ws(pos)
            if pos >= n:
                raise self.fail("expecting value", pos)
            char = text[pos]
            value: JSON
            if char == "{":
                after = self.ws(pos + 1)
                if text[after : after + 1] == "}":
                    value, pos = {}, after + 1
                else:
                    key, pos = self.key(after)
                    stack.append({})
                    keys.append(key)
                    continue
            elif char == "[":
                after = self.ws(pos + 1)
                if text[after : after + 1] == "]":
                    value, pos = [], after + 1
                else:
                    stack.append([])
                    keys.append("")
                    pos = after
                    continue
            else:
                value, pos = self.scalar(pos)
            while True:
                if not stack:
                    pos = self.ws(pos)
                    if pos != n:
                        raise self.fail("extra data after the value", pos)
                    return value
                top = stack[-1]
                if isinstance(top, list):
                    top.append(value)
                else:
                    top[keys[-1]] = value
                pos = self.ws(pos)
                char = text[pos : pos + 1]
                if char == ",":
                    if isinstance(top, dict):
                        keys[-1], pos = self.key(pos + 1)
                    else:
                        pos += 1
                    break
                if char == ("]" if isinstance(top, list) else "}"):
                    pos += 1
                    value = stack.pop()
                    keys.pop()
                    continue
                raise self.fail("expected ',' or a closing bracket", pos)


class LineReader:
    """Cuts a server's byte stream into decoded lines, incrementally.

    Bytes go in with :meth:`feed` as they arrive; :meth:`next_line` hands out
    each complete line (LF-terminated), decoded.  A line longer than
    ``max_line`` is cut there and reported as an error, and the rest of it is
    skipped up to its LF, so a hostile server cannot make the reader buffer
    without bound.  :meth:`finish` turns a partial last line (the stream
    ended in the middle of it) into one last, failed, line.
    """

    def __init__(
        self,
        *,
        max_line: int = 16 << 20,
        sentinel: bytes | None = b"\xff",
        allow_nonfinite: bool = True,
    ) -> None:
        self.max_line = max_line
        self.sentinel = sentinel
        self.allow_nonfinite = allow_nonfinite
        self._buffer = bytearray()
        self._skipping = False  # inside the unread rest of an oversized line

    @property
    def pending(self) -> bytes:
        """What arrived but is not a complete line yet."""
        return bytes(self._buffer)

    def holds(self, needle: bytes) -> bool:
        """Whether ``needle`` is among the bytes not yet cut into lines."""
        return needle in self._buffer

    def feed(self, data: bytes) -> None:
        """Add bytes as they arrive (the rest of a line cut for length is dropped)."""
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return
            self._skipping = False
            data = data[nl + 1 :]
        self._buffer += data

    def next_line(self) -> DecodedLine | None:
        """The next complete line, or None until more bytes are fed."""
        nl = self._buffer.find(b"\n")
        if nl < 0:
            if len(self._buffer) <= self.max_line:
                return None
            line = bytes(self._buffer[: self.max_line])
            self._buffer.clear()
            self._skipping = True
            return self._failed(line, f"line longer than {self.max_line} bytes")
        line = bytes(self._buffer[: nl + 1])
        del self._buffer[: nl + 1]
        if len(line) > self.max_line:
            return self._failed(line[: self.max_line], f"line longer than {self.max_line} bytes")
        return self.decode_line(line)

    def finish(self) -> DecodedLine | None:
        """At end of stream: the partial line left over, as a failed line."""
        if not self._buffer:
            return None
        tail = bytes(self._buffer)
        self._buffer.clear()
        return self._failed(tail, "partial line at end of stream")

    def decode_line(self, line: bytes) -> DecodedLine:
        """Decode one line (terminator included), stripping the sentinel first."""
        body, synced = line, False
        if self.sentinel and body.startswith(self.sentinel):
            synced = True
            while body.startswith(self.sentinel):
                body = body[len(self.sentinel) :]
        try:
            value = decode(body, allow_nonfinite=self.allow_nonfinite)
        except DecodeError as exc:
            return DecodedLine(line, None, exc, synced)
        return DecodedLine(line, value, None, synced)

    def _failed(self, line: bytes, why: str) -> DecodedLine:
        synced = bool(self.sentinel) and line.startswith(self.sentinel or b"")
        return DecodedLine(line, None, DecodeError(why, line, len(line), framing=True), synced)


def decode_buffer(
    buffer: bytes, *, sentinel: bytes | None = b"\xff", allow_nonfinite: bool = True
) -> tuple[list[DecodedLine], bytes]:
    """Decode every complete line in ``buffer``; return them and the unused tail.

    Empty lines are reported as errors: QEMU never writes them.
    """
    reader = LineReader(
        sentinel=sentinel, allow_nonfinite=allow_nonfinite, max_line=max(len(buffer), 1)
    )
    reader.feed(buffer)
    out: list[DecodedLine] = []
    while (line := reader.next_line()) is not None:
        out.append(line)
    return out, reader.pending


#: Integers QEMU holds as integers (int64 or uint64), compared as such.
_INT_LOW, _INT_HIGH = -(1 << 63), 1 << 64


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: JSON, b: JSON) -> bool:
    """Semantic JSON equality, as a QMP id echo must be judged.

    Object member order is irrelevant; numbers are compared as the values QEMU
    would hold (ints outside int64/uint64 become doubles), so ``1.0 == 1`` and
    ``18446744073709551616 == 1.8446744073709552e+19``; ``true`` is not ``1``;
    NaN equals NaN.  Iterative, so 1000-deep values are fine.
    """
    # The common case (ids are mostly strings and small integers) first.
    kind = type(a)
    if kind is type(b):
        if kind is str:
            return a == b
        if (
            isinstance(a, int)
            and isinstance(b, int)
            and not isinstance(a, bool)
            and _INT_LOW <= a < _INT_HIGH
            and _INT_LOW <= b < _INT_HIGH
        ):
            return a == b
    work: list[tuple[JSON, JSON]] = [(a, b)]
    while work:
        x, y = work.pop()
        if _is_number(x) and _is_number(y):
            assert isinstance(x, int | float) and isinstance(y, int | float)
            nx, ny = qemu_number(x), qemu_number(y)
            both_nan = isinstance(nx, float) and isinstance(ny, float)
            both_nan = both_nan and math.isnan(nx) and math.isnan(ny)
            if nx != ny and not both_nan:
                return False
        elif isinstance(x, bool) or isinstance(y, bool):
            if x is not y:
                return False
        elif isinstance(x, str) or isinstance(y, str) or x is None or y is None:
            if type(x) is not type(y) or x != y:
                return False
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            work.extend(zip(x, y, strict=True))
        elif isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            work.extend((x[k], y[k]) for k in x)
        else:
            return False
    return True
