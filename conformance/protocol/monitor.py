"""The per-connection QMP monitor as a pure state machine (no I/O, no threads).

It models QEMU 7.2's split between the reader (which parses input and runs
``exec-oob`` requests at once) and the in-band dispatcher (which runs queued
requests one at a time):

* negotiation mode until ``qmp_capabilities`` succeeds (handled here, with
  QEMU's argument checks and errors); no events are sent before that;
* the in-band queue: with ``oob`` negotiated the reader stops once 8 inputs
  wait, without it after every input, and resumes as QEMU does (when the
  queue drops below its limit, or once the command finished);
* parse and request errors are queued like commands, so they are answered in
  order behind a blocked command, while an OOB request overtakes.

Usage (the caller owns sockets and runs commands)::

    mon = Monitor(commands={"query-name", ...}, oob_commands={"yank"})
    while True:
        ev = mon.next_event()
        if isinstance(ev, Send): sock.sendall(ev.data)
        elif isinstance(ev, Dispatch): start ev.request, later mon.complete(ev.request, result)
        elif ev is NEED_DATA: mon.receive_data(sock.recv(4096))
        else: (PAUSED) wait for a running command to complete
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from .dialects import QEMU, Dialect
from .encoding import KeyOrder, encode
from .messages import MISSING, Missing, error_response, event, greeting, return_response
from .request import GENERIC_ERROR, Request, RequestError, is_oob_request, validate_request
from .stream import BytesLike, Item, JSONStream, Parsed, ParseError
from .values import JSON, JSONObject

__all__ = [
    "COMMAND_NOT_FOUND",
    "NEED_DATA",
    "NO_REPLY",
    "PAUSED",
    "CommandError",
    "Dispatch",
    "Event",
    "Monitor",
    "MonitorState",
    "NeedData",
    "NoReply",
    "Paused",
    "Send",
]

COMMAND_NOT_FOUND = "CommandNotFound"
_READ_WINDOW = 4096


@dataclass(frozen=True)
class Send:
    """Bytes to write to the peer, the message they encode, and why the
    monitor sends it (what kind of input it answers), so that the I/O layer
    can act on a kind of reply without reading its text."""

    data: bytes
    message: JSONObject = field(compare=False)
    reason: Reason | None = field(default=None, compare=False)


class Reason(enum.Enum):
    """What a message the monitor sends answers."""

    GREETING = "greeting"
    EVENT = "event"
    RESULT = "result"  # a dispatched command's return or error
    #: Input the lexer or parser rejected ("JSON parse error, ...").
    PARSE_ERROR = "parse-error"
    #: Input over one of the streamer's limits (size, token count, nesting).
    INPUT_LIMIT = "input-limit"
    BAD_REQUEST = "bad-request"  # not a valid request object
    COMMAND_NOT_FOUND = "command-not-found"
    OOB_NOT_ALLOWED = "oob-not-allowed"
    NEGOTIATED = "negotiated"  # qmp_capabilities succeeded
    UNKNOWN_CAPABILITY = "unknown-capability"
    ALREADY_NEGOTIATED = "already-negotiated"
    BAD_NEGOTIATION = "bad-negotiation"  # other qmp_capabilities errors


@dataclass(frozen=True)
class Quirks:
    """Departures from QEMU's behaviour a monitor can be asked for (the
    reference server's seeded defects); the default is none.

    * ``skip_greeting``: no greeting on connect (Q7).
    * ``commands_before_negotiation``: starts in command mode with every
      offered capability on; the first ``qmp_capabilities`` still succeeds (Q10).
    * ``accept_unknown_capability``: while negotiating, an unknown capability
      name completes the negotiation instead of failing (Q14).
    * ``accept_renegotiation``: ``qmp_capabilities`` in command mode succeeds (Q12).
    * ``oob_always_enabled``: ``exec-oob`` is a member whether or not oob
      was negotiated (Q28).
    * ``events_before_negotiation``: events reach a monitor still negotiating (Q11).
    """

    skip_greeting: bool = False
    commands_before_negotiation: bool = False
    accept_unknown_capability: bool = False
    accept_renegotiation: bool = False
    oob_always_enabled: bool = False
    events_before_negotiation: bool = False


@dataclass(frozen=True)
class Dispatch:
    """Run ``request`` (``request.oob`` tells whether out-of-band), then call
    :meth:`Monitor.complete`."""

    request: Request


class NeedData:
    """Nothing to do until more input arrives."""

    def __repr__(self) -> str:
        return "NEED_DATA"


class Paused:
    """Input is not being read until a dispatched command completes."""

    def __repr__(self) -> str:
        return "PAUSED"


NEED_DATA: Final = NeedData()
PAUSED: Final = Paused()

Event: TypeAlias = Send | Dispatch | NeedData | Paused


@dataclass(frozen=True)
class CommandError:
    """A failed command's result, for :meth:`Monitor.complete`."""

    error_class: str
    desc: str


class NoReply:
    """Result of a command that sends nothing on success (QGA ``success-response: false``)."""

    def __repr__(self) -> str:
        return "NO_REPLY"


NO_REPLY: Final = NoReply()

Result: TypeAlias = JSON | CommandError | NoReply


class MonitorState(enum.Enum):
    """Whether a monitor still waits for ``qmp_capabilities`` or takes commands."""

    NEGOTIATION = "negotiation"
    COMMAND = "command"


_new = object.__new__


def _dispatch(request: Request) -> Dispatch:
    # Once per request: filling the frozen instance's dict directly skips the
    # object.__setattr__ call per field that a frozen dataclass's __init__ makes.
    event = _new(Dispatch)
    event.__dict__["request"] = request
    return event


def _send_event(data: bytes, message: JSONObject, reason: Reason | None) -> Send:
    event = _new(Send)
    fields = event.__dict__
    fields["data"] = data
    fields["message"] = message
    fields["reason"] = reason
    return event


class Monitor:
    """One connection's QMP protocol state.

    ``commands`` are the command names the server implements (lookup failures
    are answered here, before dispatch); ``oob_commands`` those that allow
    ``exec-oob``.  ``qmp_capabilities`` is handled internally in dialects
    with negotiation and need not be listed.
    """

    def __init__(
        self,
        dialect: Dialect = QEMU,
        *,
        commands: Container[str],
        oob_commands: Container[str] = frozenset(),
        version: JSON | None = None,
        stream: JSONStream | None = None,
        key_order: KeyOrder = "qdict",
        quirks: Quirks = Quirks(),
    ) -> None:
        self.dialect = dialect
        self.quirks = quirks
        self.commands = commands
        self.oob_commands = oob_commands
        self.key_order: KeyOrder = key_order
        self.state = MonitorState.NEGOTIATION if dialect.negotiation else MonitorState.COMMAND
        self._terminator = dialect.line_terminator
        self.capabilities = frozenset()
        self._stream = stream if stream is not None else JSONStream()
        self._inbuf = bytearray()
        self._inpos = 0
        self._queue: deque[Item] = deque()
        self._suspended = 0
        #: The in-band request dispatched and not completed, and whether oob
        #: was on when it started (which decides how reading resumes).
        self._running: Request | None = None
        self._running_oob = False
        self._oob_running: list[Request] = []
        self._out: deque[Send | Dispatch] = deque()
        self._closed = False
        #: Set when QEMU 7.2 would have crashed on this input (see ``_accept``).
        self.queue_overflowed = False
        #: qmp_capabilities calls still accepted in command mode (quirks).
        self._renegotiations = 1 if quirks.commands_before_negotiation else 0
        if quirks.commands_before_negotiation:
            self.state = MonitorState.COMMAND
            self.capabilities = frozenset(dialect.capabilities)
        if dialect.greeting and not quirks.skip_greeting:
            ver = version if version is not None else dialect.version
            self._send(greeting(ver, dialect.capabilities), reason=Reason.GREETING)

    # -- public API -------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[str]:
        """The capabilities negotiated."""
        return self._capabilities

    @capabilities.setter
    def capabilities(self, value: frozenset[str]) -> None:
        self._capabilities = value
        # Read for every input: kept, not derived each time.
        self._oob = "oob" in value or self.quirks.oob_always_enabled
        self._queue_limit = self.dialect.queue_limit_for(self._oob)

    @property
    def oob_enabled(self) -> bool:
        """Whether OOB is on: ``oob`` was negotiated, or a quirk forces it."""
        return self._oob

    @property
    def want_read(self) -> bool:
        """Whether the I/O layer should read from the peer now."""
        return self._suspended == 0 and not self._closed

    @property
    def queue_length(self) -> int:
        """In-band inputs waiting behind the running one."""
        return len(self._queue)

    @property
    def pending_input(self) -> int:
        """Bytes received but not yet parsed (held back while paused)."""
        return len(self._inbuf) - self._inpos

    @property
    def running(self) -> Request | None:
        """The in-band request dispatched and not yet completed."""
        return self._running

    def receive_data(self, data: BytesLike) -> None:
        """Buffer bytes from the peer; they are parsed as the monitor reads."""
        if not self._closed:
            if self._inpos == len(self._inbuf):  # all read: start afresh, cheaply
                self._inbuf.clear()
                self._inpos = 0
            self._inbuf += data

    def next_event(self) -> Event:
        """The next thing the caller must do."""
        while True:
            if self._out:
                return self._out.popleft()
            if self._closed:
                return PAUSED
            if self._running is None and self._queue:
                self._dispatch_next()
                continue
            if self._suspended == 0 and self._inpos < len(self._inbuf):
                self._read()
                continue
            return PAUSED if self._suspended else NEED_DATA

    def complete(self, request: Request, result: Result) -> None:
        """Report the outcome of a dispatched request (success value,
        :class:`CommandError`, or :data:`NO_REPLY`).

        Raises :class:`ValueError` when ``request`` is not awaiting completion
        (unless the connection was lost, which makes a late result harmless).
        """
        if self._running is request:
            self._running = None
            self._reply(request, result)
            if not self._running_oob:
                self._resume()
            return
        for index, pending in enumerate(self._oob_running):
            if pending is request:
                del self._oob_running[index]
                self._reply(request, result)
                return
        if self._closed:
            return
        raise ValueError("request is not awaiting completion")

    def send_event(
        self, name: str, data: JSONObject | None = None, *, when: JSONObject | float
    ) -> bool:
        """Queue an event; False (and nothing sent) if this session gets no events."""
        negotiating = self.state is not MonitorState.COMMAND
        if (
            not self.dialect.events
            or self._closed
            or (negotiating and not self.quirks.events_before_negotiation)
        ):
            return False
        self._send(event(name, data, when=when), reason=Reason.EVENT)
        return True

    def connection_lost(self) -> None:
        """Drop queued input and output as QEMU does when the peer hangs up."""
        self._closed = True
        self._queue.clear()
        self._out.clear()
        self._inbuf = bytearray()
        self._inpos = 0
        self._stream.reset()

    # -- reader side ------------------------------------------------------
    def _read(self) -> None:
        if self._inpos == 0 and len(self._inbuf) <= _READ_WINDOW:
            items, used = self._stream.feed_some(self._inbuf)
        else:
            with (
                memoryview(self._inbuf) as view,
                view[self._inpos : self._inpos + _READ_WINDOW] as window,
            ):
                items, used = self._stream.feed_some(window)
        self._inpos += used
        if self._inpos > 65536 and self._inpos * 2 > len(self._inbuf):
            del self._inbuf[: self._inpos]
            self._inpos = 0
        for item in items:
            self._accept(item)

    def _accept(self, item: Item) -> None:
        if isinstance(item, Parsed) and is_oob_request(item.value, self.dialect):
            # Runs on the reader: never queued, may overtake in-band work.
            request = self._check(item)
            if request is not None:
                self._oob_running.append(request)
                self._out.append(_dispatch(request))
            return
        limit = self._queue_limit
        if self._oob and len(self._queue) >= limit:
            # One byte completed two inputs while the queue was one short of
            # full (e.g. "1}"): QEMU 7.2 aborts here (assertion in
            # handle_qmp_command).  We keep going and record it.
            self.queue_overflowed = True
        if not self._oob or len(self._queue) == limit - 1:
            self._suspended += 1
        self._queue.append(item)

    def _resume(self) -> None:
        if self._suspended:
            self._suspended -= 1

    # -- dispatcher side --------------------------------------------------
    def _dispatch_next(self) -> None:
        item = self._queue.popleft()
        oob_at_start = self._oob
        if oob_at_start and len(self._queue) == self.dialect.queue_limit_oob - 1:
            self._resume()
        request = self._check(item)
        if request is None:
            if not oob_at_start:
                self._resume()
            return
        self._running = request
        self._running_oob = oob_at_start
        self._out.append(_dispatch(request))

    def _check(self, item: Item) -> Request | None:
        """Answer everything decidable here; return a request to dispatch."""
        if isinstance(item, ParseError):
            reason = Reason.INPUT_LIMIT if item.kind == "limit" else Reason.PARSE_ERROR
            self._send(error_response(GENERIC_ERROR, item.desc), reason=reason)
            return None
        checked = validate_request(
            item.value, oob_enabled=self._oob, dialect=self.dialect, raw=item.raw
        )
        if isinstance(checked, RequestError):
            self._send(
                error_response(checked.error_class, checked.desc, _id(checked.id, checked.has_id)),
                reason=Reason.BAD_REQUEST,
            )
            return None
        request = checked
        name = request.command
        builtin = self.dialect.negotiation and name == "qmp_capabilities"
        if self.state is MonitorState.NEGOTIATION and not builtin:
            self._error(
                request,
                COMMAND_NOT_FOUND,
                f"The command {name} has not been found",
                Reason.COMMAND_NOT_FOUND,
            )
            return None
        if not builtin and name not in self.commands:
            self._error(
                request,
                COMMAND_NOT_FOUND,
                f"The command {name} has not been found",
                Reason.COMMAND_NOT_FOUND,
            )
            return None
        if request.oob and name not in self.oob_commands:
            self._error(
                request,
                GENERIC_ERROR,
                f"The command {name} does not support OOB",
                Reason.OOB_NOT_ALLOWED,
            )
            return None
        if builtin:
            self._qmp_capabilities(request)
            return None
        return request

    def _qmp_capabilities(self, request: Request) -> None:
        args = request.arguments
        enable: list[str] = []
        if "enable" in args:
            value = args["enable"]
            if not isinstance(value, list):
                self._error(
                    request, GENERIC_ERROR, _bad_type("enable", "array"), Reason.BAD_NEGOTIATION
                )
                return
            for index, cap in enumerate(value):
                if not isinstance(cap, str):
                    self._error(
                        request,
                        GENERIC_ERROR,
                        _bad_type(f"enable[{index}]", "string"),
                        Reason.BAD_NEGOTIATION,
                    )
                    return
                if cap not in self.dialect.known_capabilities:
                    if (
                        self.quirks.accept_unknown_capability
                        and self.state is MonitorState.NEGOTIATION
                    ):
                        self.state = MonitorState.COMMAND
                        self._negotiated(request)
                        return
                    # QEMU names list elements 'null' in this message.
                    desc = f"Parameter 'null' does not accept value '{cap}'"
                    self._error(request, GENERIC_ERROR, desc, Reason.UNKNOWN_CAPABILITY)
                    return
                enable.append(cap)
        for name in args:
            if name != "enable":
                self._error(
                    request,
                    GENERIC_ERROR,
                    f"Parameter '{name}' is unexpected",
                    Reason.BAD_NEGOTIATION,
                )
                return
        if self.state is MonitorState.COMMAND:
            if self.quirks.accept_renegotiation or self._renegotiations:
                self._renegotiations = max(self._renegotiations - 1, 0)
                self._negotiated(request)
                return
            desc = "Capabilities negotiation is already complete, command ignored"
            self._error(request, COMMAND_NOT_FOUND, desc, Reason.ALREADY_NEGOTIATED)
            return
        for cap in enable:
            if cap not in self.dialect.capabilities:
                self._error(
                    request,
                    GENERIC_ERROR,
                    f"Capability {cap} not available",
                    Reason.BAD_NEGOTIATION,
                )
                return
        self.capabilities = frozenset(enable)
        self.state = MonitorState.COMMAND
        self._negotiated(request)

    def _negotiated(self, request: Request) -> None:
        self._send(return_response({}, _id(request.id, request.has_id)), reason=Reason.NEGOTIATED)

    # -- output -----------------------------------------------------------
    def _reply(self, request: Request, result: Result) -> None:
        if isinstance(result, NoReply):
            return
        if isinstance(result, CommandError):
            self._error(request, result.error_class, result.desc, Reason.RESULT)
            return
        prefix = b""
        if request.command == self.dialect.sync_command and self.dialect.sync_sentinel:
            prefix = self.dialect.sync_sentinel
        self._send(
            return_response(result, request.id if request.has_id else MISSING),
            prefix,
            reason=Reason.RESULT,
        )

    def _error(self, request: Request, error_class: str, desc: str, reason: Reason) -> None:
        if self.state is MonitorState.NEGOTIATION and error_class == COMMAND_NOT_FOUND:
            # QEMU rewrites every CommandNotFound while negotiating.
            desc = "Expecting capabilities negotiation with 'qmp_capabilities'"
        self._send(
            error_response(error_class, desc, _id(request.id, request.has_id)), reason=reason
        )

    def _send(
        self, message: JSONObject, prefix: bytes = b"", *, reason: Reason | None = None
    ) -> None:
        if self._closed:
            return
        data = encode(message, terminator=self._terminator, key_order=self.key_order)
        self._out.append(_send_event(prefix + data if prefix else data, message, reason))


def _id(value: JSON, present: bool) -> JSON | Missing:
    return value if present else MISSING


def _bad_type(name: str, expected: str) -> str:
    return f"Invalid parameter type for '{name}', expected: {expected}"
