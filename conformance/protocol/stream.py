"""QEMU's server-side JSON input pipeline (lexer, streamer, parser) as a push parser.

QEMU does not read "lines": a byte-level lexer cuts the input into tokens, a
streamer groups tokens into one message by brace/bracket balance, and a
recursive-descent parser turns a complete message into a value or an error.
Every quirk a client can observe comes from that split, so it is reproduced
stage by stage:

* the lexer's recovery after a bad byte (skip to a structural character, a
  control character other than TAB, or 0xFE/0xFF; that byte then starts over),
  one ``stray`` error per bad token, a raw newline ending a bad string token;
* single-quoted strings, ``\\'``, and "modified UTF-8" (C0 80 is U+0000);
* the streamer's separate brace and bracket counters: a message ends when both
  are back to zero or either goes negative, and an unclosed message swallows
  everything after it until a lexical error resets it;
* the limits (token bytes per message, tokens per message, nesting), checked
  in that order on each token; an oversized single token is cut by the lexer;
* the parser keeping only its first error, and its exact messages.

Everything is iterative (deep nesting never touches Python's recursion
limit) and long string, whitespace and garbage runs are scanned with regexes.
Whole messages on which Python's C JSON scanner and QEMU agree (plain ASCII,
see "fast path" below) are read by that scanner, between messages only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ._qemu import c_text, is_valid_codepoint, mod_utf8_decode
from .values import INT64_MIN, JSON, UINT64_MAX

__all__ = [
    "DEFAULT_MAX_NESTING",
    "DEFAULT_MAX_TOKEN_COUNT",
    "DEFAULT_MAX_TOKEN_SIZE",
    "BytesLike",
    "Item",
    "JSONStream",
    "ParseError",
    "Parsed",
    "parse_all",
]

DEFAULT_MAX_TOKEN_SIZE = 64 << 20
DEFAULT_MAX_TOKEN_COUNT = 2 << 20
DEFAULT_MAX_NESTING = 1024

# QEMU formats parser messages into a 1024-byte buffer.
_PARSER_MSG_MAX = 1023


@dataclass(frozen=True, slots=True)
class Parsed:
    """A complete top-level value and the bytes from its first to last token."""

    value: JSON
    raw: bytes = field(repr=False)


ErrorKind: TypeAlias = Literal["lexical", "syntax", "limit"]


@dataclass(frozen=True, slots=True)
class ParseError:
    """An input error as QEMU reports it (always class GenericError, never an id).

    ``desc`` is the text a client reads after decoding QEMU's reply (invalid
    bytes already replaced by U+FFFD).  ``kind`` says which stage failed:
    lexer (``stray``), parser, or a streamer limit.
    """

    desc: str
    raw: bytes = field(repr=False)
    kind: ErrorKind = "syntax"


Item: TypeAlias = Parsed | ParseError
BytesLike: TypeAlias = bytes | bytearray | memoryview

# ---------------------------------------------------------------- lexer table
# Lexer states.  ERROR doubles as the "bad token" result, as in QEMU.
_ERROR = 0
_RECOVERY = 1
_DQ_ESC = 2
_DQ = 3
_SQ_ESC = 4
_SQ = 5
_ZERO = 6
_EXP_DIGITS = 7
_EXP_SIGN = 8
_EXP_E = 9
_MANTISSA = 10
_MANTISSA_DIGITS = 11
_DIGITS = 12
_SIGN = 13
_KEYWORD = 14
_WHITESPACE = 15
_START = 16
_NSTATES = 17

# Token types (>= 100 so they never collide with states).
_T_LCURLY = 100
_T_RCURLY = 101
_T_LSQUARE = 102
_T_RSQUARE = 103
_T_COLON = 104
_T_COMMA = 105
_T_INTEGER = 106
_T_FLOAT = 107
_T_KEYWORD = 108
_T_STRING = 109
_T_SKIP = 110
_T_FORCED = 111  # a token cut by the size limit; the streamer always rejects it

_LOOKAHEAD = 0x100  # "emit what you have, then look at this byte again"
_EMITTING = frozenset(range(_T_LCURLY, _T_STRING + 1))


def _build_table(rfc8259: bool = False) -> list[list[int]]:
    table = [[_ERROR] * 256 for _ in range(_NSTATES)]

    def terminal(state: int, token: int) -> None:
        table[state] = [token | _LOOKAHEAD] * 256

    def chars(state: int, spec: str, target: int) -> None:
        for ch in spec:
            table[state][ord(ch)] = target

    digits = "0123456789"
    rec = table[_RECOVERY]
    for b in range(256):
        rec[b] = _START | _LOOKAHEAD if b < 0x20 or b >= 0xFE else _RECOVERY
    rec[ord("\t")] = _RECOVERY
    chars(_RECOVERY, "[]{}:,", _START | _LOOKAHEAD)

    for state, esc, quote in ((_DQ, _DQ_ESC, '"'), (_SQ, _SQ_ESC, "'")):
        for b in range(0x20, 0xFE):
            table[state][b] = state
            table[esc][b] = state
        table[state][ord("\\")] = esc
        table[state][ord(quote)] = _T_STRING

    terminal(_ZERO, _T_INTEGER)
    chars(_ZERO, digits, _ERROR)
    chars(_ZERO, ".", _MANTISSA)
    if rfc8259:
        # QEMU's lexer ends the number at a leading zero, so 0e5 is read as
        # 0 and a stray e5; RFC 8259 allows the exponent there.
        chars(_ZERO, "eE", _EXP_E)
    terminal(_EXP_DIGITS, _T_FLOAT)
    chars(_EXP_DIGITS, digits, _EXP_DIGITS)
    chars(_EXP_SIGN, digits, _EXP_DIGITS)
    chars(_EXP_E, "+-", _EXP_SIGN)
    chars(_EXP_E, digits, _EXP_DIGITS)
    terminal(_MANTISSA_DIGITS, _T_FLOAT)
    chars(_MANTISSA_DIGITS, digits, _MANTISSA_DIGITS)
    chars(_MANTISSA_DIGITS, "eE", _EXP_E)
    chars(_MANTISSA, digits, _MANTISSA_DIGITS)
    terminal(_DIGITS, _T_INTEGER)
    chars(_DIGITS, digits, _DIGITS)
    chars(_DIGITS, "eE", _EXP_E)
    chars(_DIGITS, ".", _MANTISSA)
    chars(_SIGN, "0", _ZERO)
    chars(_SIGN, digits[1:], _DIGITS)
    lower = "abcdefghijklmnopqrstuvwxyz"
    terminal(_KEYWORD, _T_KEYWORD)
    chars(_KEYWORD, lower, _KEYWORD)
    terminal(_WHITESPACE, _T_SKIP)
    chars(_WHITESPACE, " \t\r\n", _WHITESPACE)

    chars(_START, '"', _DQ)
    chars(_START, "'", _SQ)
    chars(_START, "0", _ZERO)
    chars(_START, digits[1:], _DIGITS)
    chars(_START, "-", _SIGN)
    chars(_START, "{", _T_LCURLY)
    chars(_START, "}", _T_RCURLY)
    chars(_START, "[", _T_LSQUARE)
    chars(_START, "]", _T_RSQUARE)
    chars(_START, ",", _T_COMMA)
    chars(_START, ":", _T_COLON)
    chars(_START, lower, _KEYWORD)
    chars(_START, " \t\r\n", _WHITESPACE)
    return table


_TABLE = _build_table()
_RFC_TABLE = _build_table(rfc8259=True)

# Runs that keep the lexer in the same state, scanned in one regex step.
_RUNS: dict[int, re.Pattern[bytes]] = {
    _DQ: re.compile(rb"[\x20\x21\x23-\x5b\x5d-\xfd]+"),
    _SQ: re.compile(rb"[\x20-\x26\x28-\x5b\x5d-\xfd]+"),
    _WHITESPACE: re.compile(rb"[ \t\r\n]+"),
    _KEYWORD: re.compile(rb"[a-z]+"),
    _DIGITS: re.compile(rb"[0-9]+"),
    _MANTISSA_DIGITS: re.compile(rb"[0-9]+"),
    _EXP_DIGITS: re.compile(rb"[0-9]+"),
}
_RECOVERY_SKIP = re.compile(rb"[\t\x20-\x2b\x2d-\x39\x3b-\x5a\x5c\x5e-\x7a\x7c\x7e-\xfd]+")

_SINGLE = {
    _T_LCURLY: b"{",
    _T_RCURLY: b"}",
    _T_LSQUARE: b"[",
    _T_RSQUARE: b"]",
    _T_COLON: b":",
    _T_COMMA: b",",
}


# ---------------------------------------------------------------- fast path
# Most requests are plain JSON, on which QEMU's lexer, streamer and parser
# agree with Python's C decoder: on ASCII text without a backslash (so no
# escapes) the tokens are the same and so is the message's end.  What they
# read differently is refused by the hooks below and then read by the exact
# path: duplicate members (QEMU refuses them), integers past int64 (QEMU
# makes them doubles), numbers with an exponent (QEMU's lexer splits "0e5";
# past a double's range the reader refuses or goes infinite), and NaN and
# Infinity, which are not JSON.
_FAST_WS = re.compile(r"[ \t\r\n]*")


class _NotFast(ValueError):
    """The fast path does not read this message; the exact path will."""


def _unique_members(pairs: list[tuple[str, JSON]]) -> dict[str, JSON]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _NotFast
    return members


def _short_int(text: str) -> int:
    if len(text) > 18:  # might not fit int64
        raise _NotFast
    return int(text)


def _plain_float(text: str) -> float:
    if "e" in text or "E" in text or len(text) > 300:  # no exponent, so finite
        raise _NotFast
    return float(text)


def _not_json(text: str) -> JSON:
    raise _NotFast


# The decoder's scanner itself: raw_decode only wraps it in a Python frame.
_fast_scan: Callable[[str, int], tuple[JSON, int]] = json.JSONDecoder(
    object_pairs_hook=_unique_members,
    parse_int=_short_int,
    parse_float=_plain_float,
    parse_constant=_not_json,
).scan_once  # type: ignore[attr-defined]  # typeshed omits it


# ---------------------------------------------------------------- parser
class _Fail(Exception):
    """First parser error; QEMU ignores every later one, so unwinding is exact."""

    def __init__(self, message: bytes) -> None:
        super().__init__(message)
        self.message = message


_SIMPLE_ESCAPES = {
    ord('"'): '"',
    ord("'"): "'",
    ord("\\"): "\\",
    ord("/"): "/",
    ord("b"): "\b",
    ord("f"): "\f",
    ord("n"): "\n",
    ord("r"): "\r",
    ord("t"): "\t",
}
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _hex4(text: bytes, pos: int) -> int:
    """Four hex digits at ``pos`` or -1; stops at the first non-digit like QEMU."""
    value = 0
    for i in range(pos, pos + 4):
        if i >= len(text) or text[i] not in _HEX:
            return -1
        value = value << 4 | int(chr(text[i]), 16)
    return value


def _parse_string(token: bytes) -> str:
    """Decode a string token (quotes included) with QEMU's escapes and errors."""
    end = len(token) - 1  # the closing quote; the lexer guarantees it
    if token.find(b"\\", 1, end) < 0:
        text = mod_utf8_decode(token[1:end])
        if text is None:
            raise _Fail(b"invalid UTF-8 sequence in string")
        return text
    parts: list[str] = []
    pos = 1
    while pos < end:
        bs = token.find(b"\\", pos, end)
        stop = end if bs < 0 else bs
        if stop > pos:
            text = mod_utf8_decode(token[pos:stop])
            if text is None:
                raise _Fail(b"invalid UTF-8 sequence in string")
            parts.append(text)
        if bs < 0:
            break
        begin = bs
        kind = token[bs + 1]
        pos = bs + 2
        simple = _SIMPLE_ESCAPES.get(kind)
        if simple is not None:
            parts.append(simple)
            continue
        if kind != ord("u"):
            raise _Fail(b"invalid escape sequence in string")
        cp = _hex4(token, pos)
        pos += 4
        if 0xD800 <= cp <= 0xDBFF and token[pos : pos + 2] == b"\\u":
            trailing = _hex4(token, pos + 2)
            if 0xDC00 <= trailing <= 0xDFFF:
                cp = 0x10000 + ((cp & 0x3FF) << 10) | (trailing & 0x3FF)
                pos += 6
            else:
                cp = -1
        if not is_valid_codepoint(cp):
            # QEMU prints the escape text it consumed, cut at the token's end.
            raise _Fail(token[begin:pos] + b" is not a valid Unicode character")
        parts.append(chr(cp))
    return "".join(parts)


def _number(kind: int, text: bytes) -> int | float:
    if kind == _T_INTEGER and len(text) <= 21:
        value = int(text)
        if INT64_MIN <= value <= UINT64_MAX:
            return value
    return float(text)


_INFINITIES = (float("inf"), float("-inf"))
_ARRAY = 0
_OBJECT = 1
_NO_KEY = object()


def _parse_tokens(kinds: bytearray, texts: list[bytes | None], *, finite: bool = False) -> JSON:
    """Parse one message's tokens; raise ``_Fail`` with QEMU's first error
    (or, with ``finite``, at a number past a double's range)."""
    n = len(kinds)
    i = 0
    # Each frame: [kind, container, pending key (objects only)].
    stack: list[list[object]] = []
    while True:
        # ---- parse one value starting at token i
        if i >= n:
            raise _Fail(b"premature EOI")
        kind = kinds[i]
        value: JSON
        if kind in (_T_LCURLY, _T_LSQUARE):
            i += 1
            if i >= n:
                raise _Fail(b"premature EOI")
            closer = _T_RCURLY if kind == _T_LCURLY else _T_RSQUARE
            if kinds[i] == closer:
                i += 1
                value = {} if kind == _T_LCURLY else []
            else:
                if kind == _T_LCURLY:
                    stack.append([_OBJECT, {}, _NO_KEY])
                else:
                    stack.append([_ARRAY, [], _NO_KEY])
                continue
        elif kind == _T_STRING:
            text = texts[i]
            assert text is not None
            value = _parse_string(text)
            i += 1
        elif kind in (_T_INTEGER, _T_FLOAT):
            text = texts[i]
            assert text is not None
            value = _number(kind, text)
            if finite and value in _INFINITIES:
                raise _Fail(b"number '" + text[:40] + b"' is out of range")
            i += 1
        elif kind == _T_KEYWORD:
            text = texts[i]
            assert text is not None
            i += 1
            if text == b"true":
                value = True
            elif text == b"false":
                value = False
            elif text == b"null":
                value = None
            else:
                raise _Fail(b"invalid keyword '" + text + b"'")
        else:
            raise _Fail(b"expecting value")

        # ---- hand the value to the enclosing containers
        while True:
            if not stack:
                return value
            frame = stack[-1]
            if frame[0] == _ARRAY:
                items = frame[1]
                assert isinstance(items, list)
                items.append(value)
                if i >= n:
                    raise _Fail(b"premature EOI")
                kind = kinds[i]
                i += 1
                if kind == _T_RSQUARE:
                    stack.pop()
                    value = items
                    continue
                if kind != _T_COMMA:
                    raise _Fail(b"expected separator in list")
                break
            members = frame[1]
            assert isinstance(members, dict)
            key = frame[2]
            if key is _NO_KEY:
                if not isinstance(value, str):
                    raise _Fail(b"key is not a string in object")
                frame[2] = value
                if i >= n:
                    raise _Fail(b"premature EOI")
                kind = kinds[i]
                i += 1
                if kind != _T_COLON:
                    raise _Fail(b"missing : in object pair")
                break
            assert isinstance(key, str)
            frame[2] = _NO_KEY
            if key in members:
                raise _Fail(b"duplicate key")
            members[key] = value
            if i >= n:
                raise _Fail(b"premature EOI")
            kind = kinds[i]
            i += 1
            if kind == _T_RCURLY:
                stack.pop()
                value = members
                continue
            if kind != _T_COMMA:
                raise _Fail(b"expected separator in dict")
            if i >= n:
                raise _Fail(b"premature EOI")
            break


# ---------------------------------------------------------------- stream
class JSONStream:
    """Push parser fed raw bytes, producing QEMU's sequence of messages and errors.

    Feeding the same bytes in any split (down to one byte at a time) yields the
    same items.  Limits default to QEMU's; tests use small ones.
    """

    def __init__(
        self,
        *,
        max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
        max_token_count: int = DEFAULT_MAX_TOKEN_COUNT,
        max_nesting: int = DEFAULT_MAX_NESTING,
        rfc8259: bool = False,
    ) -> None:
        self.max_token_size = max_token_size
        self.max_token_count = max_token_count
        self.max_nesting = max_nesting
        #: Read numbers as RFC 8259 asks where QEMU does not: an exponent
        #: right after a leading zero is part of the number, and a number past
        #: a double's range is refused as a parse error (a limit §9 allows;
        #: QEMU makes it infinite and prints ``inf``, which is not JSON).
        self.rfc8259 = rfc8259
        self._table = _RFC_TABLE if rfc8259 else _TABLE
        self.reset()

    def reset(self) -> None:
        """Forget all state, as QEMU does when a client disconnects."""
        self._state = _START
        self._tok = bytearray()
        self._tok_start = 0
        self._offset = 0  # absolute offset of the next byte to lex
        self._buf = bytearray()  # retained input, for ``raw``
        self._buf_base = 0
        self._braces = 0
        self._brackets = 0
        self._token_size = 0
        self._kinds = bytearray()
        self._texts: list[bytes | None] = []
        self._msg_start = 0
        self._items: list[Item] = []

    @property
    def in_message(self) -> bool:
        """True while a message or token is incomplete (more input is awaited)."""
        return bool(self._kinds) or self._state not in (_START, _RECOVERY, _WHITESPACE)

    def feed(self, data: BytesLike) -> list[Item]:
        """Consume all of ``data``; return the items it completed, in order."""
        items, _ = self._run(data, stop_early=False)
        return items

    def feed_some(self, data: BytesLike) -> tuple[list[Item], int]:
        """Consume ``data`` only up to the first byte that completes an item.

        Returns the items completed by that byte (one byte can complete two,
        e.g. ``1}``) and how many bytes were consumed.  This is how a reader
        that stops reading when its queue fills (QEMU's monitor) uses the
        stream.
        """
        return self._run(data, stop_early=True)

    # -- internals --------------------------------------------------------
    def _run(self, data: BytesLike, *, stop_early: bool) -> tuple[list[Item], int]:
        fast = 0
        if self._state in (_START, _WHITESPACE) and not self._kinds:
            fast = self._fast(data, stop_early)
            if fast == len(data) or (stop_early and self._items):
                items, self._items = self._items, []
                return items, fast
        with memoryview(data) as view, view[fast:] as rest:
            self._buf += rest
            consumed = self._lex(rest, stop_early)
            if consumed < len(rest):
                del self._buf[len(self._buf) - (len(rest) - consumed) :]
        self._trim()
        items, self._items = self._items, []
        return items, fast + consumed

    def _fast(self, data: BytesLike, stop_early: bool) -> int:
        """Decode whole plain messages at the start of ``data`` in C (see the
        fast path's notes); return the bytes consumed, 0 when the exact path
        must read what comes first.  Called between messages only."""
        text = str(data, "latin-1")  # one character per byte: offsets stay byte offsets
        size = len(text)
        pos = 0
        held = len(self._tok)  # whitespace lexed by an earlier feed
        while pos < size:
            if text.startswith("{", pos):
                start = pos
            else:
                blank = _FAST_WS.match(text, pos)
                assert blank is not None  # the pattern matches the empty string
                start = blank.end()
            if start == size or text[start] != "{" or held + start - pos > self.max_token_size:
                break
            try:
                value, end = _fast_scan(text, start)
            except (StopIteration, ValueError, RecursionError):
                break
            span = text[start:end]
            length = end - start
            # Bounds that imply QEMU's limits: a token is at least a byte,
            # and nesting is at most the count of '{' and '['.
            if (
                not span.isascii()
                or "\\" in span
                or length >= self.max_token_size
                or length > self.max_token_count
                or (
                    length > self.max_nesting
                    and span.count("{") + span.count("[") > self.max_nesting
                )
            ):
                break
            self._items.append(Parsed(value, span.encode("ascii")))
            pos = end
            held = 0
            if stop_early:
                break
        if pos:
            self._offset += pos
            self._buf_base = self._offset
            if self._tok:  # whitespace held from an earlier feed: consumed too
                self._state = _START
                self._tok.clear()
                self._buf.clear()
        return pos

    def _trim(self) -> None:
        keep = self._offset
        if self._kinds:
            keep = min(keep, self._msg_start)
        if self._tok:
            keep = min(keep, self._tok_start)
        drop = keep - self._buf_base
        if drop > 0:
            del self._buf[:drop]
            self._buf_base = keep

    def _raw(self, start: int, end: int) -> bytes:
        return bytes(self._buf[start - self._buf_base : end - self._buf_base])

    def _lex(self, data: BytesLike, stop_early: bool) -> int:
        table = self._table
        tok = self._tok
        limit = self.max_token_size
        pos = 0
        end = len(data)
        base = self._offset  # absolute offset of data[0]
        while pos < end:
            if stop_early and self._items:
                break
            state = self._state
            run = _RUNS.get(state)
            if run is not None:
                room = limit + 1 - len(tok)
                m = run.match(data, pos, min(end, pos + room))
                if m is not None:
                    stop = m.end()
                    if not tok:
                        self._tok_start = base + pos
                    tok += data[pos:stop]
                    pos = stop
                    self._offset = base + pos
                    if len(tok) > limit:
                        self._force_emit()
                    continue
            elif state == _RECOVERY:
                m = _RECOVERY_SKIP.match(data, pos)
                if m is not None:
                    pos = m.end()
                    self._offset = base + pos
                    continue

            byte = data[pos]
            while True:
                new = table[self._state][byte]
                consumed = not new & _LOOKAHEAD
                if consumed:
                    if not tok:
                        self._tok_start = base + pos
                    tok.append(byte)
                    self._offset = base + pos + 1
                new &= ~_LOOKAHEAD
                if new in _EMITTING:
                    self._token(new, bytes(tok), self._tok_start, self._offset)
                    tok.clear()
                    self._state = _START
                elif new == _T_SKIP:
                    tok.clear()
                    self._state = _START
                elif new == _ERROR:
                    self._lex_error(bytes(tok))
                    tok.clear()
                    self._state = _RECOVERY
                elif new == _RECOVERY:
                    tok.clear()
                    self._state = _RECOVERY
                else:
                    self._state = new
                if consumed:
                    break
            pos += 1
            self._offset = base + pos
            if len(tok) > limit:
                self._force_emit()
        return pos

    def _force_emit(self) -> None:
        # QEMU hands an over-long token to the streamer as-is (it is then
        # rejected by the size limit) and restarts lexing from scratch.
        self._token(_T_FORCED, bytes(self._tok), self._tok_start, self._offset)
        self._tok.clear()
        self._state = _START

    def _reset_message(self) -> None:
        self._braces = 0
        self._brackets = 0
        self._token_size = 0
        self._kinds = bytearray()
        self._texts = []

    def _emit_error(self, desc: str, kind: ErrorKind, start: int, end: int) -> None:
        if self._kinds:
            start = self._msg_start
        self._items.append(ParseError(desc, self._raw(start, end), kind))
        self._reset_message()

    def _lex_error(self, text: bytes) -> None:
        desc = "JSON parse error, stray '" + c_text(text) + "'"
        self._emit_error(desc, "lexical", self._tok_start, self._offset)

    def _token(self, kind: int, text: bytes, start: int, end: int) -> None:
        if kind == _T_LCURLY:
            self._braces += 1
        elif kind == _T_RCURLY:
            self._braces -= 1
        elif kind == _T_LSQUARE:
            self._brackets += 1
        elif kind == _T_RSQUARE:
            self._brackets -= 1

        if self._token_size + len(text) + 1 > self.max_token_size:
            self._emit_error("JSON token size limit exceeded", "limit", start, end)
            return
        if len(self._kinds) + 1 > self.max_token_count:
            self._emit_error("JSON token count limit exceeded", "limit", start, end)
            return
        if self._braces + self._brackets > self.max_nesting:
            self._emit_error("JSON nesting depth limit exceeded", "limit", start, end)
            return

        if not self._kinds:
            self._msg_start = start
        self._kinds.append(kind)
        self._texts.append(None if kind in _SINGLE else text)
        self._token_size += len(text)

        if (self._braces > 0 or self._brackets > 0) and self._braces >= 0 and self._brackets >= 0:
            return

        raw = self._raw(self._msg_start, end)
        try:
            value = _parse_tokens(self._kinds, self._texts, finite=self.rfc8259)
        except _Fail as exc:
            message = exc.message[:_PARSER_MSG_MAX]
            item: Item = ParseError(c_text(b"JSON parse error, " + message), raw, "syntax")
        else:
            item = Parsed(value, raw)
        self._items.append(item)
        self._reset_message()


def parse_all(
    data: bytes,
    *,
    max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
    max_token_count: int = DEFAULT_MAX_TOKEN_COUNT,
    max_nesting: int = DEFAULT_MAX_NESTING,
) -> list[Item]:
    """Items QEMU would produce from ``data`` on a fresh connection."""
    stream = JSONStream(
        max_token_size=max_token_size, max_token_count=max_token_count, max_nesting=max_nesting
    )
    return stream.feed(data)
