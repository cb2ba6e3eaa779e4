"""Read QAPI source files into raw expressions.

The QAPI language is JSON with ``#`` comments, single-quoted strings and no
numbers or null.  This module only reads: it splits files into top-level
expressions, follows ``include`` directives, gathers ``pragma``s and attaches
doc comments.  What the expressions mean is :mod:`conformance.qapi.build`'s job.

QEMU 1.x schemas have missing and trailing commas that the parser of the time
let through; ``lenient=True`` accepts them, and the loader retries in that mode
by itself when a strict read fails.  ``current=True`` is the other way: the
lexical rules of today's generator on top of strict mode (strings of printable
ASCII whose only escape is ``\\\\``), for ``qmp-conform schema --check``.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field
from typing import Any

from conformance.qapi.errors import QAPIError, QAPISyntaxError
from conformance.qapi.model import Doc, SourceInfo

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n\f]+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>'(?:[^'\\\n]|\\.)*')
  | (?P<open>'[^\n]*)
  | (?P<punct>[{}\[\],:])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dstr>"(?:[^"\\\n]|\\.)*")
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_SYMBOL_LINE = re.compile(r"@([A-Za-z0-9_.-]+):?\s*$")
_SECTION = re.compile(
    r"(Since|Returns|Notes?|Example|Examples|TODO|Errors|Features|Arguments)"
    r":\s*(.*)$"
)
_MEMBER_DOC = re.compile(r"@([A-Za-z0-9_-]+):\s*(.*)$")


@dataclass
class Expr:
    """One top-level definition as written, with where it came from."""

    data: dict[str, Any]
    info: SourceInfo
    doc: Doc | None = None


@dataclass
class SourceTree:
    """Everything read from a schema's files."""

    exprs: list[Expr] = field(default_factory=list)
    pragmas: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    lenient_used: bool = False
    #: Each ``pragma`` directive as written, with its place, for the checker.
    pragma_directives: list[tuple[dict[str, Any], SourceInfo]] = field(default_factory=list)


class _FileParser:
    """Recursive-descent parser over one file's tokens."""

    def __init__(self, text: str, fname: str, lenient: bool, current: bool = False) -> None:
        self.fname = fname
        self.lenient = lenient
        self.lenient_used = False
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.tokens: list[tuple[str, str, int]] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup or "bad"
            if kind == "ws":
                continue
            if kind == "bad":
                raise self._error(m.start(), f"stray {m.group()!r}")
            if kind == "dstr":
                raise self._error(m.start(), "strings must use single quotes")
            if kind == "open":
                raise self._error(m.start(), "string not closed before the end of the line")
            if current and kind == "str":
                self._check_current_string(m.group(), m.start())
            self.tokens.append((kind, m.group(), m.start()))
        self.pos = 0

    def info(self, offset: int) -> SourceInfo:
        return SourceInfo(self.fname, bisect.bisect_right(self.line_starts, offset))

    def _error(self, offset: int, message: str) -> QAPISyntaxError:
        """A syntax error at ``offset``, naming its line and column."""
        line = bisect.bisect_right(self.line_starts, offset)
        column = 1
        for ch in self.text[self.line_starts[line - 1] : offset]:
            column = (column + 7) // 8 * 8 + 1 if ch == "\t" else column + 1
        return QAPISyntaxError(SourceInfo(self.fname, line), message, column)

    def _check_current_string(self, token: str, offset: int) -> None:
        """Today's generator: printable ASCII only, and ``\\\\`` the one escape;
        an error names the string's first column, as QEMU's does."""
        if token.isascii() and token.isprintable() and "\\" not in token:
            return
        i = 1
        while i < len(token) - 1:
            ch = token[i]
            if not (" " <= ch <= "~"):
                raise self._error(offset, f"character {ch!r} in a string: only printable ASCII")
            if ch == "\\":
                if token[i + 1] != "\\":
                    raise self._error(
                        offset, f"escape '\\{token[i + 1]}': only '\\\\' is an escape"
                    )
                i += 1
            i += 1

    def _peek(self) -> tuple[str, str, int] | None:
        while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "comment":
            self.pos += 1
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self, what: str) -> tuple[str, str, int]:
        tok = self._peek()
        if tok is None:
            raise self._error(len(self.text), f"expected {what}, found end of file")
        self.pos += 1
        return tok

    def _expect(self, punct: str) -> None:
        _, value, offset = self._next(repr(punct))
        if value != punct:
            raise self._error(offset, f"expected {punct!r}, found {value!r}")

    def _string(self, token: str, offset: int) -> str:
        try:
            return _unquote(token)
        except ValueError:
            raise self._error(offset, f"bad \\u escape in {token}") from None

    def value(self) -> Any:
        kind, value, offset = self._next("a value")
        if kind == "str":
            return self._string(value, offset)
        if kind == "word":
            if value in ("true", "false"):
                return value == "true"
            raise self._error(offset, f"invalid keyword {value!r}")
        if value == "{":
            return self._object(offset)
        if value == "[":
            return self._array()
        raise self._error(offset, f"expected a value, found {value!r}")

    def _separator(self, close: str) -> bool:
        """Consume ``,`` or ``close``; True when the container ended."""
        tok = self._peek()
        if tok is None:
            raise self._error(len(self.text), f"expected ',' or {close!r}")
        kind, value, offset = tok
        if value == close:
            self.pos += 1
            return True
        if value == ",":
            self.pos += 1
            nxt = self._peek()
            if nxt is not None and nxt[1] == close:
                if not self.lenient:
                    raise self._error(nxt[2], f"trailing ',' before {close!r}")
                self.lenient_used = True
                self.pos += 1
                return True
            return False
        if self.lenient and (kind == "str" or value in "{["):
            self.lenient_used = True  # a missing comma
            return False
        raise self._error(offset, f"expected ',' or {close!r}, found {value!r}")

    def _object(self, offset: int) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        tok = self._peek()
        if tok is not None and tok[1] == "}":
            self.pos += 1
            return obj
        while True:
            kind, key, key_offset = self._next("a member name")
            if kind != "str":
                raise self._error(key_offset, f"expected a string key, found {key!r}")
            name = self._string(key, key_offset)
            if name in obj:
                raise self._error(key_offset, f"duplicate key {name!r}")
            self._expect(":")
            obj[name] = self.value()
            if self._separator("}"):
                return obj

    def _array(self) -> list[Any]:
        arr: list[Any] = []
        tok = self._peek()
        if tok is not None and tok[1] == "]":
            self.pos += 1
            return arr
        while True:
            arr.append(self.value())
            if self._separator("]"):
                return arr

    def top_level(self) -> list[tuple[Any, SourceInfo, Doc | None]]:
        """Every top-level expression with its position and doc comment."""
        out: list[tuple[Any, SourceInfo, Doc | None]] = []
        while True:
            comments: list[tuple[str, int]] = []
            while self.pos < len(self.tokens) and self.tokens[self.pos][0] == "comment":
                comments.append((self.tokens[self.pos][1], self.tokens[self.pos][2]))
                self.pos += 1
            if self.pos >= len(self.tokens):
                return out
            offset = self.tokens[self.pos][2]
            value = self.value()
            out.append((value, self.info(offset), _doc_before(comments, self.info)))


def _unquote(token: str) -> str:
    """The string a quoted token stands for; ValueError for a bad ``\\u`` escape."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u":
                digits = body[i + 2 : i + 6]
                if len(digits) < 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise ValueError(f"\\u needs 4 hex digits, not {digits!r}")
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _doc_before(comments: list[tuple[str, int]], where: Any) -> Doc | None:
    """The last ``##`` ... ``##`` block among ``comments``, parsed."""
    end = None
    for i in range(len(comments) - 1, -1, -1):
        if comments[i][0].rstrip() == "##":
            if end is None:
                end = i
            else:
                return _parse_doc([c for c, _ in comments[i + 1 : end]])
    return None


def _parse_doc(lines: list[str]) -> Doc | None:
    body = [ln[2:] if ln.startswith("# ") else ln[1:] for ln in lines]
    if not body:
        return None
    sym = _SYMBOL_LINE.match(body[0].strip())
    symbol = sym.group(1) if sym else None
    text_lines = body[1:] if sym else body
    members: dict[str, str] = {}
    sections: dict[str, str] = {}
    since = None
    current: tuple[dict[str, str], str] | None = None
    for raw in text_lines:
        line = raw.strip()
        if m := _MEMBER_DOC.match(line):
            members[m.group(1)] = m.group(2)
            current = (members, m.group(1))
        elif m := _SECTION.match(line):
            tag = m.group(1)
            sections[tag] = m.group(2)
            current = (sections, tag)
            if tag == "Since":
                since = m.group(2).strip() or None
        elif line and current is not None and raw.startswith((" ", "\t")):
            target, key = current
            target[key] = (target[key] + " " + line).strip()
        elif not line:
            current = None
    if since is None and "Since" in sections:
        since = sections["Since"].strip() or None
    return Doc(
        text="\n".join(text_lines).strip(),
        since=since,
        symbol=symbol,
        members=members,
        sections=sections,
    )


def read_tree(path: str, *, lenient: bool = False, current: bool = False) -> SourceTree:
    """Read ``path`` and everything it includes, each file once; ``current``
    applies today's lexical rules (see the module's docstring).

    Raises :class:`QAPISyntaxError` when a file does not parse, and
    :class:`QAPIError` when one cannot be read, includes a file that is
    including it (a loop), or a top-level expression is not a definition, a
    well-formed ``include`` or a ``pragma``.
    """
    tree = SourceTree()
    seen: set[str] = set()
    #: The files being read, outermost first: an include of one of them loops.
    active: list[str] = []

    def read_file(fname: str, included_from: SourceInfo | None) -> None:
        real = os.path.realpath(fname)
        if real in active:
            raise QAPIError(included_from, f"include loop: '{fname}' is already being read")
        if real in seen:
            return
        seen.add(real)
        try:
            with open(fname, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            where = included_from or fname
            raise QAPIError(
                where, f"can't read {'include ' if included_from else ''}file '{fname}': {reason}"
            ) from None
        tree.files.append(fname)
        active.append(real)
        parser = _FileParser(text, fname, lenient, current)
        for value, info, doc in parser.top_level():
            if not isinstance(value, dict):
                if isinstance(value, list):
                    raise QAPIError(
                        info, "top-level list: this is the 2011 list form, not QAPI source"
                    )
                raise QAPIError(info, "top-level expression must be an object")
            if "include" in value:
                if len(value) != 1 or not isinstance(value["include"], str):
                    raise QAPIError(info, "'include' must be the only key, with a file name")
                read_file(os.path.join(os.path.dirname(fname), value["include"]), info)
            elif "pragma" in value:
                if len(value) != 1 or not isinstance(value["pragma"], dict):
                    raise QAPIError(info, "'pragma' must be the only key, with an object")
                tree.pragmas.update(value["pragma"])
                tree.pragma_directives.append((value["pragma"], info))
            else:
                tree.exprs.append(Expr(value, info, doc))
        tree.lenient_used |= parser.lenient_used
        active.pop()

    read_file(path, None)
    return tree


def parse_text(text: str, fname: str = "<string>", *, lenient: bool = False) -> list[Any]:
    """The top-level values of one file's text; the bare parse, no includes.

    Raises :class:`QAPISyntaxError` when the text does not parse.
    """
    return [value for value, _, _ in _FileParser(text, fname, lenient).top_level()]
