"""A QMP client session built for judging servers, not for using them.

It never trusts the peer: every wait has a deadline, lines and floods are
bounded, any byte sequence decodes to a :class:`Message` (possibly one that
failed to parse, with the reason), and every byte sent and received is kept in
a :class:`Transcript` with its time, as evidence.

Replies are matched to requests by id compared as JSON values (QEMU echoes
big integers as doubles); events are set aside in :attr:`Session.events`;
replies nobody is waiting for yet wait in an inbox.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import os
import select
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance.baseline import server_name
from conformance.protocol.decoding import DecodedLine, LineReader
from conformance.protocol.decoding import json_equal as json_equal  # re-exported for checks
from conformance.protocol.messages import MISSING, classify
from conformance.protocol.sent import SentRequests
from conformance.protocol.values import JSON, JSONObject, as_object
from conformance.qapi import Schema, load
from conformance.transport import (
    CONNECT_TIMEOUT,
    Connection,
    ConnectionClosed,
    Target,
    TargetError,
    looks_like_target,
    open_target,
    parse_target,
)

#: A server line longer than this is cut and reported, not buffered forever.
MAX_LINE = 16 << 20
#: Bytes of one transcript entry kept verbatim (the rest is summarised).
ENTRY_KEEP = 4096
#: Transcript bytes kept per session before later entries are only counted.
TRANSCRIPT_BUDGET = 8 << 20
#: Messages one ``collect`` call keeps (a lexical error can fan out to 100k replies).
MAX_COLLECT = 20000
#: Messages a session keeps in ``received`` and in ``events``; later ones are
#: only counted (``dropped``), so a server that floods cannot grow the harness
#: without bound.
MAX_KEPT = 100_000

DEFAULT_TIMEOUT = 5.0
GREETING_TIMEOUT = 3.0


class ReplyTimeout(Exception):
    """A reply did not come before its deadline."""


@dataclass
class Entry:
    """One transcript line: what went which way, when (seconds since start)."""

    t: float
    direction: str  # "->" sent, "<-" received, "--" a note by the harness
    data: bytes
    size: int

    def render(self, keep: int = ENTRY_KEEP) -> str:
        """The entry as one transcript line; bytes past ``keep`` are only counted."""
        text = escape(self.data[:keep])
        if self.size > keep:
            text += f" ... [{self.size - keep} more bytes, {self.size} in all]"
        return f"[{self.t:8.4f}s] {self.direction} {text}"


#: How each byte that is not printable ASCII is shown (str.translate table).
_ESCAPE_TABLE = {
    b: {0x0A: "\\n", 0x0D: "\\r", 0x5C: "\\\\"}.get(b, f"\\x{b:02x}")
    for b in range(256)
    if not 0x20 <= b < 0x7F or b == 0x5C
}


def escape(data: bytes) -> str:
    """Bytes as readable text: printable ASCII as is, CR/LF as \\r \\n, others as \\xNN."""
    # latin-1 maps each byte to the code point of the same number, so the
    # table sees bytes; translate runs in C (transcripts are rendered often).
    return data.decode("latin-1").translate(_ESCAPE_TABLE)


@dataclass
class Transcript:
    """Every byte sent (``->``) and received (``<-``), with timestamps."""

    label: str = ""
    start: float = field(default_factory=time.monotonic)
    entries: list[Entry] = field(default_factory=list)
    kept: int = 0
    dropped: int = 0

    def add(self, direction: str, data: bytes) -> None:
        """Record ``data`` going ``direction``, at most ``2 * ENTRY_KEEP`` bytes of it;
        once the session's budget is spent, only its size is counted."""
        if self.kept > TRANSCRIPT_BUDGET:
            self.dropped += len(data)
            return
        kept = data[: ENTRY_KEEP * 2]
        self.kept += len(kept)
        self.entries.append(Entry(time.monotonic() - self.start, direction, kept, len(data)))

    def note(self, text: str) -> None:
        """Record a remark of the harness (``--``), such as why the stream ended."""
        self.add("--", text.encode("utf-8", "replace"))

    def mark(self) -> int:
        """Where the next entry goes: pass it as ``since`` to render only what follows."""
        return len(self.entries)

    def render(self, since: int = 0, max_entries: int = 400) -> list[str]:
        """The entries from ``since`` as text lines, long runs elided in the middle."""
        entries = self.entries[since:]
        head = [f"=== {self.label} ==="] if self.label else []
        if len(entries) > max_entries:
            half = max_entries // 2
            lines = [e.render() for e in entries[:half]]
            lines.append(f"... [{len(entries) - 2 * half} entries elided] ...")
            lines += [e.render() for e in entries[-half:]]
        else:
            lines = [e.render() for e in entries]
        if self.dropped:
            lines.append(f"... [{self.dropped} further bytes not recorded] ...")
        return head + lines


@dataclass
class Message:
    """One line the server sent, decoded if possible."""

    raw: bytes
    t: float
    value: JSON = None
    error: str | None = None
    #: The line began with QGA's 0xFF resynchronisation sentinel.
    sentinel: bool = False

    @property
    def ok(self) -> bool:
        """The line decoded to a JSON object."""
        return self.error is None and isinstance(self.value, dict)

    @property
    def obj(self) -> JSONObject:
        """The message as a JSON object; empty when the line is not one (so
        members can be looked up without narrowing ``value`` first)."""
        return as_object(self.value) if self.error is None else {}

    @functools.cached_property
    def kind(self) -> str:
        """The protocol core's classification (greeting, return, error, event,
        unknown), or ``unparsed`` for a line that is not a JSON object.

        Kept once computed: oracles ask every message several times, and a
        message is complete when the session hands it out."""
        return classify(self.value) if self.ok else "unparsed"

    def wire_problems(self, *, qga: bool = False, cut: bool = False) -> list[tuple[str, str, str]]:
        """Every wire rule the line breaks, as (rule, slug, what): no CRLF at
        its end (Q2; with ``qga``, the guest agent's bare LF passes, and a
        line the stream ended in passes with ``cut``), a byte outside ASCII
        (Q1; with ``qga``, the agent's leading 0xFF sync sentinel aside), an
        event written inside another message (Q30), not JSON (Q37), not an
        object (Q2)."""
        line = self.raw
        found: list[tuple[str, str, str]] = []
        ended = line.endswith(b"\r\n") or (qga and line.endswith(b"\n"))
        if not ended and not cut:
            found.append(("Q2", "no-crlf", "a line does not end in CRLF"))
        if not (line.lstrip(b"\xff") if qga else line).isascii():
            found.append(("Q1", "non-ascii", "non-ASCII output"))
        if self.error is not None and b'"event"' in line[1:] and not line.startswith(b'{"event"'):
            found.append(
                ("Q30", "event-inside-message", "an event was written inside another message")
            )
        elif self.error is not None:
            found.append(("Q37", "invalid-json", f"invalid JSON from the server ({self.error})"))
        elif not isinstance(self.value, dict):
            found.append(("Q2", "not-object", "a message is not a JSON object"))
        return found

    def wire_problem(self, *, qga: bool = False, cut: bool = False) -> tuple[str, str, str] | None:
        """The first of :meth:`wire_problems`, or None."""
        found = self.wire_problems(qga=qga, cut=cut)
        return found[0] if found else None

    @property
    def is_greeting(self) -> bool:
        """The line is the server's greeting."""
        return self.kind == "greeting"

    @property
    def is_event(self) -> bool:
        """The line is an asynchronous event."""
        return self.kind == "event"

    @property
    def is_reply(self) -> bool:
        """Any object but an event or a greeting: what answers a request."""
        return self.ok and self.kind not in ("event", "greeting")

    @property
    def id(self) -> Any:
        """The ``id`` member as the server sent it, or :data:`MISSING` without one."""
        return self.obj.get("id", MISSING)

    @property
    def is_error(self) -> bool:
        """The line is an error reply (it has an ``error`` member)."""
        return "error" in self.obj

    @property
    def error_class(self) -> str | None:
        """The error's ``class``; None when the line is no error or the class no string."""
        error = self.obj.get("error")
        if not isinstance(error, dict):
            return None
        cls = error.get("class")
        return cls if isinstance(cls, str) else None

    @property
    def desc(self) -> str:
        """The error's ``desc``; "" when the line is no error or the desc no string."""
        err = self.obj.get("error")
        desc = err.get("desc") if isinstance(err, dict) else None
        return desc if isinstance(desc, str) else ""

    def brief(self, keep: int = 300) -> str:
        """The raw line as escaped text for messages, cut after ``keep`` characters."""
        text = escape(self.raw.rstrip(b"\r\n"))
        return text if len(text) <= keep else text[:keep] + f"... ({len(self.raw)} bytes)"


class Session:
    """A client session over one connection; see the module docstring."""

    def __init__(self, conn: Connection, label: str = "", *, read_sent: bool = True) -> None:
        self.conn = conn
        self.transcript = Transcript(label or conn.description)
        self.reader = LineReader(max_line=MAX_LINE, allow_nonfinite=False)
        self.received: list[Message] = []
        #: The requests written, as a server may read them (Q11, Q16 in passing);
        #: without ``read_sent``, not read at all.
        self.sent = SentRequests(read=read_sent)
        self.events: list[Message] = []
        self.inbox: list[Message] = []
        #: Lines recorded on arrival that no caller has taken yet.
        self._arrived: collections.deque[Message] = collections.deque()
        self.greeting: dict[str, Any] | None = None
        self.closed = False
        #: Messages not kept in ``received``/``events`` (see MAX_KEPT).
        self.dropped = 0
        #: How the process behind the connection ended (exit status, stderr),
        #: once the stream has ended and the connection can tell; else "".
        self.fate = ""
        #: Waits for a reply that got one, and waits that ran out of time: a
        #: run tells a target that stopped answering by these.
        self.answered = 0
        self.unanswered = 0
        self._ids = itertools.count(1)

    # -- sending -------------------------------------------------------------

    def next_id(self) -> str:
        """A fresh request id (``qc-1``, ``qc-2``, ...), unique within the session."""
        return f"qc-{next(self._ids)}"

    def send_raw(self, data: bytes, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send bytes exactly as given (malformed input included).

        Raises :class:`ConnectionClosed` when the server has hung up (the session
        is then marked closed), and TimeoutError when it stops reading for
        ``timeout`` seconds.
        """
        self.transcript.add("->", data)
        self.sent.add(data, time.monotonic() - self.transcript.start)
        try:
            self.conn.send(data, timeout)
        except ConnectionClosed:
            self.closed = True
            self.transcript.note("connection closed while sending")
            raise

    def send(self, message: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Send one JSON value as UTF-8 (non-ASCII left raw, as clients may).

        Raises :class:`ConnectionClosed` or TimeoutError as :meth:`send_raw` does.
        """
        self.send_raw(json.dumps(message, ensure_ascii=False).encode("utf-8"), timeout)

    def request(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        id: Any = None,
        oob: bool = False,
    ) -> dict[str, Any]:
        """A request object; ``id=None`` allocates one, ``id=MISSING`` sends none."""
        msg: dict[str, Any] = {"exec-oob" if oob else "execute": name}
        if arguments is not None:
            msg["arguments"] = arguments
        if id is None:
            id = self.next_id()
        if id is not MISSING:
            msg["id"] = id
        return msg

    def execute(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        id: Any = None,
        oob: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Message:
        """Send a command and wait for the reply carrying its id.

        Sent without an id (``id=MISSING``), the next non-event message is taken
        as its reply.  Raises :class:`ReplyTimeout` when no reply comes within
        ``timeout``, :class:`ConnectionClosed` when the server hangs up first, and
        TimeoutError when it stops reading the request.
        """
        msg = self.request(name, arguments, id=id, oob=oob)
        self.send(msg)
        if "id" not in msg:
            return self.next_reply(timeout)
        return self.wait_reply(msg["id"], timeout)

    # -- receiving -----------------------------------------------------------

    def recv(self, timeout: float = DEFAULT_TIMEOUT) -> Message | None:
        """The next message from the wire, or None when the deadline passes.
        Raises :class:`ConnectionClosed` when the stream has ended."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self._take_line()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                chunk = self.conn.recv(1 << 16, left)
            except ConnectionClosed:
                self.closed = True
                tail = self.reader.finish()
                if tail is not None:
                    self.transcript.add("<-", tail.raw)
                    self.transcript.note("connection closed (partial line above)")
                    self._note_diagnostics()
                    return self._record(tail)
                self.transcript.note("connection closed by the server")
                self._note_diagnostics()
                raise
            if chunk:
                self._feed(chunk)

    def read_available(self) -> None:
        """Move what has already arrived into the buffer, without waiting (the
        end of the stream is left for :meth:`recv` to find and report)."""
        sock = getattr(self.conn, "sock", None)
        if sock is None or self.closed:
            return
        try:
            while select.select([sock], [], [], 0)[0]:
                chunk = self.conn.recv(1 << 16, 0.0)
                if not chunk:
                    return
                self._feed(chunk)
        except (ConnectionClosed, OSError, ValueError):
            return

    def _note_diagnostics(self) -> None:
        """What a dead process left behind (exit status, stderr), as evidence,
        kept in ``fate`` too."""
        diagnostics = getattr(self.conn, "diagnostics", None)
        if callable(diagnostics):
            self.fate = diagnostics()
            if self.fate:
                self.transcript.note(self.fate)

    def _feed(self, chunk: bytes) -> None:
        # Lines are cut and recorded as they arrive, not as they are asked
        # for: the transcript's order and a message's time are the wire's,
        # which is what says whether an event came before a request (Q11).
        self.reader.feed(chunk)
        while (line := self.reader.next_line()) is not None:
            self.transcript.add("<-", line.raw)
            self._arrived.append(self._record(line))

    def _take_line(self) -> Message | None:
        return self._arrived.popleft() if self._arrived else None

    def _record(self, line: DecodedLine) -> Message:
        error = line.error
        text = None if error is None else error.message
        if error is not None and not error.framing:
            text = f"not valid JSON: {error}"
        when = time.monotonic() - self.transcript.start
        msg = Message(line.raw, when, line.value, text, line.sentinel)
        if len(self.received) < MAX_KEPT:
            self.received.append(msg)
        else:
            self.dropped += 1
        if msg.is_event and len(self.events) < MAX_KEPT:
            self.events.append(msg)
        return msg

    def next_reply(self, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """The next non-event message (the inbox first).

        Raises :class:`ReplyTimeout` when none comes within ``timeout``, and
        :class:`ConnectionClosed` when the stream ends first.
        """
        for i, held in enumerate(self.inbox):
            if not held.is_event:
                self.answered += 1
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(deadline - time.monotonic())
            if msg is None:
                self.unanswered += 1
                raise ReplyTimeout(f"no reply within {timeout:g} s")
            if not msg.is_event:
                self.answered += 1
                return msg

    def wait_reply(self, id: Any, timeout: float = DEFAULT_TIMEOUT) -> Message:
        """The reply whose id equals ``id`` as a JSON value; others go to the inbox.

        Raises :class:`ReplyTimeout` when it does not come within ``timeout``,
        and :class:`ConnectionClosed` when the stream ends first.
        """
        for i, held in enumerate(self.inbox):
            if held.id is not MISSING and json_equal(held.id, id):
                self.answered += 1
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        garbled: Message | None = None
        while True:
            msg = self.recv(deadline - time.monotonic())
            if msg is None:
                self.unanswered += 1
                why = f"no reply with id {_short(id)} within {timeout:g} s"
                if garbled is not None:
                    why += (
                        f"; meanwhile the server sent a line that is not valid JSON (Q37): "
                        f"{garbled.brief(200)}"
                    )
                raise ReplyTimeout(why)
            if msg.error is not None:
                garbled = msg
            if msg.is_event:
                continue
            if (msg.id is not MISSING and json_equal(msg.id, id)) or (
                msg.id is MISSING and "return" in msg.obj
            ):
                # A success without an id can only answer a command; take it as
                # ours rather than time out (the ids checks judge the lost id).
                self.answered += 1
                return msg
            if len(self.inbox) < MAX_KEPT:
                self.inbox.append(msg)

    def collect(
        self, quiet: float = 0.3, timeout: float = DEFAULT_TIMEOUT, until: int | None = None
    ) -> list[Message]:
        """Messages until the line is quiet for ``quiet`` s, ``until`` non-event
        messages arrived, or ``timeout`` passed; bounded to MAX_COLLECT."""
        out: list[Message] = []
        replies = 0
        deadline = time.monotonic() + timeout
        while len(out) < MAX_COLLECT:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msg = self.recv(min(quiet, left))
            except ConnectionClosed:
                break
            if msg is None:
                break
            out.append(msg)
            if not msg.is_event:
                replies += 1
                if until is not None and replies >= until:
                    break
        return out

    def expect_reply(self, timeout: float = DEFAULT_TIMEOUT) -> Message | None:
        """Like :meth:`next_reply` but None instead of raising on timeout."""
        try:
            return self.next_reply(timeout)
        except (ReplyTimeout, ConnectionClosed):
            return None

    # -- greeting and negotiation --------------------------------------------

    def read_greeting(self, timeout: float = GREETING_TIMEOUT) -> dict[str, Any] | None:
        """The greeting object, or None when nothing came within ``timeout``
        (the guest-agent dialect sends none) or another message came first (it is
        kept for :meth:`next_reply`).  Raises :class:`ConnectionClosed` when the
        stream ends before anything came."""
        msg = self.recv(timeout)
        if msg is None:
            return None
        if not msg.is_greeting:
            self.inbox.append(msg)
            return None
        self.greeting = msg.obj
        return self.greeting

    @property
    def capabilities(self) -> list[str]:
        """The capabilities the greeting offers ([] without a greeting that lists any)."""
        if not self.greeting:
            return []
        qmp = self.greeting.get("QMP")
        caps = qmp.get("capabilities") if isinstance(qmp, dict) else None
        return [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else []

    def negotiate(
        self, enable: Iterable[str] | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Message:
        """``qmp_capabilities`` (enabling ``enable`` when given); the reply.

        Raises :class:`ReplyTimeout` when no reply comes within ``timeout``, and
        :class:`ConnectionClosed` when the server hangs up first.
        """
        args = {"enable": list(enable)} if enable is not None else None
        return self.execute("qmp_capabilities", args, timeout=timeout)

    def close(self) -> None:
        """Close the connection (on a ``spawn:`` target, its process is stopped too)."""
        if not self.closed:
            self.closed = True
        self.conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(value: Any, keep: int = 80) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= keep else text[:keep] + "..."


def iter_errors(messages: Iterable[Message]) -> Iterator[Message]:
    """The error replies among ``messages``, in order."""
    return (m for m in messages if m.is_error)


def read_schema(
    session: Session,
    *,
    timeout: float = 10.0,
    attempts: int = 1,
    negotiation_timeout: float | None = None,
) -> list[Any]:
    """``query-qmp-schema`` on a greeted session: the introspection entries.

    ``qmp_capabilities`` goes first; its reply is awaited (``negotiation_timeout``,
    by default ``timeout``: a reply without an id must not be taken for the
    schema's) but not required (a faulty server may lose it, and that is for
    the checks to find, not a reason not to start).  The schema is asked for
    up to ``attempts`` times, ``timeout`` seconds each.  Raises TargetError
    when no usable answer comes, and ConnectionClosed when the server hangs up.
    """
    negotiation = session.request("qmp_capabilities")
    session.send(negotiation)
    waited = timeout if negotiation_timeout is None else negotiation_timeout
    try:
        session.wait_reply(negotiation["id"], waited)
    except ReplyTimeout:
        # Nothing within its own deadline: the schema gets no longer than that.
        timeout = min(timeout, waited)
    for attempt in range(max(attempts, 1)):
        request = session.request("query-qmp-schema")
        session.send(request)
        try:
            reply = session.wait_reply(request["id"], timeout)
            break
        except ReplyTimeout as exc:
            if attempt >= attempts - 1:
                raise TargetError(f"query-qmp-schema: {exc}") from exc
    entries = reply.obj.get("return")
    if not isinstance(entries, list):
        raise TargetError(f"query-qmp-schema gave no list: {reply.brief()}")
    return entries


def fetch_schema(
    target: str | Target,
    timeout: float = 10.0,
    on_greeting: Callable[[dict[str, Any]], None] | None = None,
) -> list[Any]:
    """The live ``query-qmp-schema`` of ``target`` (a target string or object);
    ``on_greeting`` is handed the server's greeting.  Raises :class:`TargetError`
    when the target cannot be reached, sends no QMP greeting, gives no schema
    or hangs up."""
    owned = isinstance(target, str)
    tgt = open_target(target) if isinstance(target, str) else target
    try:
        with Session(tgt.connect(CONNECT_TIMEOUT)) as session:
            greeting = session.read_greeting()
            if greeting is None:
                raise TargetError(f"{tgt.spec}: no QMP greeting (a guest agent has no schema)")
            if on_greeting is not None:
                on_greeting(greeting)
            try:
                return read_schema(session, timeout=timeout)
            except TargetError as exc:
                raise TargetError(f"{tgt.spec}: {exc}") from exc
    except (ReplyTimeout, ConnectionClosed) as exc:
        raise TargetError(f"{tgt.spec}: {exc}") from exc
    finally:
        if owned:
            tgt.close()


def schema_from(source: str, leniency: str = "auto") -> Schema:
    """A schema from a path (QAPI source, a tree, introspection) or, for a
    target string, from the live server's ``query-qmp-schema``, named as the
    server names itself.  Raises :class:`TargetError` when the path does not
    exist or the target gives no schema, and :class:`QAPIError` when what was
    read is not a valid schema (both are ConformanceErrors)."""
    if not looks_like_target(source):
        if not os.path.exists(source):
            raise TargetError(f"{source}: no such file or folder")
        return load(source, leniency=leniency)  # type: ignore[arg-type]
    greetings: list[dict[str, Any]] = []
    schema = load(fetch_schema(source, on_greeting=greetings.append))
    name = server_name(greetings[0]) if greetings else ""
    program = parse_target(source).program
    schema.source = (f"{name}: {program}" if program else name) if name else source
    return schema
