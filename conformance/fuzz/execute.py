"""Run a :class:`~conformance.fuzz.program.Program` against a target and record
everything that came back.

Sending is pipelined: the chunks of a program go out without waiting for
replies (that is what makes a campaign as fast as the server), and replies
are read at the end, up to each connection's probe reply.  Only negotiation
waits for its reply, because OOB requests sent before ``qmp_capabilities``
has run would race it.

Between examples the executor keeps negotiated connections open and hands
them to the next program that opens the same kind of connection: the probe
that ends every program leaves the server's parser in a known-good state,
so only the (recorded) greeting and negotiation are skipped.  Confirmation
and replay runs use ``fresh=True``: new connections, exactly the stored bytes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.fuzz.program import Program, Step
from conformance.session import Message, Session, Transcript, json_equal
from conformance.transport import ConnectionClosed, Target, TargetError

SEND_TIMEOUT = 5.0
GREETING_TIMEOUT = 3.0
#: How long a connection in negotiation mode is watched for stray events.
DRAIN = 0.02


@dataclass
class ConnLog:
    """What happened on one connection during one program."""

    conn: int
    session: Session
    reused: bool = False
    greeting: Message | None = None
    greeting_expected: bool = False
    start: int = 0  # index in session.received where this program's messages begin
    closed: str | None = None  # why the stream ended early, if it did
    sent_probe: bool = False
    probe_reply: Message | None = None
    raw_sent: bool = False

    @property
    def messages(self) -> list[Message]:
        return self.session.received[self.start:]


@dataclass
class Observation:
    program: Program
    conns: dict[int, ConnLog] = field(default_factory=dict)
    latency: float = 0.0
    crash_detail: str = ""

    def transcript(self) -> list[str]:
        """Every connection's entries merged in time order, ``cN`` naming the connection."""
        rows: list[tuple[float, str]] = []
        base = min((log.session.transcript.start for log in self.conns.values()), default=0.0)
        for log in self.conns.values():
            tr = log.session.transcript
            for entry in tr.entries:
                text = entry.render()
                stamp = tr.start - base + entry.t
                rows.append((stamp, f"[{stamp:9.4f}s] c{log.conn} {text.split('] ', 1)[1]}"))
        rows.sort(key=lambda r: r[0])
        return [r[1] for r in rows]


class Executor:
    """Executes programs on the target made by ``factory``; restarts it on demand."""

    def __init__(self, factory: Callable[[], Target], probe_timeout: float = 5.0) -> None:
        self.factory = factory
        self.target = factory()
        self.probe_timeout = probe_timeout
        #: Kept-open negotiated sessions by (connection number, OOB enabled).
        self.pool: dict[tuple[int, bool], Session] = {}
        #: Whether the target greets several clients at once; when it does not
        #: (QEMU's socket monitor), at most one session is kept.  A spawned
        #: target gives every connection its own process.
        self.concurrent = self.target.restarts

    # -- connections ------------------------------------------------------------

    def _drop(self, key: tuple[int, bool]) -> None:
        held = self.pool.pop(key, None)
        if held is not None:
            held.close()

    def drop_all(self) -> None:
        for conn in list(self.pool):
            self._drop(conn)

    def restart(self) -> None:
        """A new target instance (spawned/reference) or, for a socket, a wait until
        it accepts connections again."""
        self.drop_all()
        with contextlib.suppress(Exception):
            self.target.close()
        deadline = time.monotonic() + 15.0
        while True:
            try:
                self.target = self.factory()
                return
            except TargetError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self.drop_all()
        self.target.close()

    def _open(self, conn: int, log_greeting: bool) -> ConnLog:
        session = Session(self.target.connect(), label=f"c{conn}")
        log = ConnLog(conn, session, greeting_expected=log_greeting)
        try:
            session.read_greeting(GREETING_TIMEOUT)
        except ConnectionClosed:
            log.closed = "closed before the greeting"
        log.greeting = next((m for m in session.received if m.ok and "QMP" in m.value), None)
        return log

    # -- running ----------------------------------------------------------------

    def run(self, program: Program, fresh: bool = False) -> Observation:
        obs = Observation(program)
        if fresh:
            self.drop_all()
        steps = program.steps
        skip: set[int] = set()
        last_send = time.monotonic()
        # Consecutive chunks for one connection go out in one write, as a
        # pipelining client sends them (and as a replay must, since how the
        # server's reads cut the stream can matter); the transcript keeps
        # one entry per chunk.
        pending: list[Step] = []
        pending_log: ConnLog | None = None
        for index, step in enumerate(steps):
            if index in skip:
                continue
            log = obs.conns.get(step.conn)
            if pending and (log is not pending_log or step.kind in ("connect", "negotiate")):
                assert pending_log is not None
                self._send(pending_log, pending)
                pending = []
                last_send = time.monotonic()
            if step.kind == "connect":
                log = self._connect(program, index, fresh, skip)
                obs.conns[step.conn] = log
                continue
            if log is None or log.closed:
                continue
            if step.kind == "negotiate":
                self._negotiate(log, step)
                continue
            pending.append(step)
            pending_log = log
            if step.kind == "raw":
                log.raw_sent = True
            elif step.kind == "probe":
                log.sent_probe = True
        if pending and pending_log is not None:
            self._send(pending_log, pending)
            last_send = time.monotonic()
        # Negotiated connections first: once their probes are answered, every
        # event their commands caused has been sent to the other connections.
        logs = sorted(obs.conns.values(), key=lambda log: not _negotiated(log, program))
        for log in logs:
            self._await_probe(log, program)
            if len(logs) > 1 and not _negotiated(log, program) and not log.closed:
                self._drain(log)
        obs.latency = time.monotonic() - last_send
        self._settle(obs, fresh)
        return obs

    def _connect(self, program: Program, index: int, fresh: bool, skip: set[int]) -> ConnLog:
        step = program.steps[index]
        following = program.steps[index + 1] if index + 1 < len(program.steps) else None
        negotiates = (following is not None and following.kind == "negotiate"
                      and following.conn == step.conn)
        key = (step.conn, bool(following.meta.get("oob")) if negotiates and following else False)
        held = self.pool.pop(key, None) if negotiates and not fresh else None
        if held is not None and held.closed:
            held.close()
            held = None
        if held is not None:
            session = held
            session.transcript = Transcript(f"c{step.conn}")
            session.received.clear()
            session.events.clear()
            session.inbox.clear()
            skip.add(index + 1)
            return ConnLog(step.conn, session, reused=True)
        if self.concurrent:
            self._drop(key)
        else:
            self.drop_all()
        return self._open(step.conn, log_greeting=True)

    def _negotiate(self, log: ConnLog, step: Step) -> None:
        self._send(log, [step])
        if log.closed:
            return
        try:
            log.session.wait_reply(f"qc-neg-{step.conn}", self.probe_timeout)
        except ConnectionClosed:
            log.closed = "closed during negotiation"
        except Exception:
            pass

    def _send(self, log: ConnLog, steps: list[Step]) -> None:
        if log.closed:
            return
        for step in steps:
            log.session.transcript.add("->", step.data)
        try:
            log.session.conn.send(b"".join(s.data for s in steps), SEND_TIMEOUT)
        except ConnectionClosed as exc:
            log.session.closed = True
            log.closed = f"closed while sending: {exc}"
        except TimeoutError as exc:
            log.session.transcript.note(f"send timed out: {exc}")

    def _await_probe(self, log: ConnLog, program: Program) -> None:
        """Read until the probe's reply, then until every exec-oob request with an
        id is answered too: an OOB reply may overtake in-band ones (Q23) but is
        not obliged to, so it can also come after the probe's."""
        if not log.sent_probe or log.closed:
            return
        probe = next(s for s in program.steps if s.kind == "probe" and s.conn == log.conn)
        # Every request with an id (equal ids count once each): the in-band
        # ones are answered before the probe, exec-oob ones at any time.
        waiting = [probe.meta["id"]] + [
            r["id"] for r in (_request(s) for s in program.steps
                              if s.conn == log.conn and s.kind == "command")
            if r is not None and "id" in r]
        oob_ids = [r["id"] for r in (_request(s) for s in program.steps
                                     if s.conn == log.conn and s.kind == "command"
                                     and s.meta.get("oob"))
                   if r is not None and "id" in r]
        seen = [m for m in log.messages if m.ok and "id" in m.value]
        deadline = time.monotonic() + self.probe_timeout
        while True:
            waiting = _unanswered(waiting, seen)
            if log.probe_reply is None:
                log.probe_reply = next((m for m in seen if json_equal(m.value["id"],
                                                                      probe.meta["id"])), None)
                if log.probe_reply is not None:
                    # In-band work is done; exec-oob replies have no deadline in
                    # the spec, so they get a full probe timeout of their own.
                    deadline = time.monotonic() + self.probe_timeout
            if log.probe_reply is not None and not any(
                    json_equal(w, o) for w in waiting for o in oob_ids):
                break  # what is missing is in-band: it will not come now (Q22)
            if not waiting or time.monotonic() >= deadline:
                break
            try:
                msg = log.session.recv(deadline - time.monotonic())
            except ConnectionClosed:
                log.closed = "closed before the probe reply"
                return
            if msg is None:
                break
            if msg.ok and "id" in msg.value:
                seen = [msg]
        if log.probe_reply is None:
            log.session.transcript.note(
                f"no reply to the probe within {self.probe_timeout:g} s")


    def _drain(self, log: ConnLog) -> None:
        """Whatever is already on its way (events for a connection in negotiation mode)."""
        deadline = time.monotonic() + DRAIN
        try:
            while log.session.recv(max(0.0, deadline - time.monotonic())) is not None:
                pass
        except ConnectionClosed:
            log.closed = "closed after the probe reply"

    def _settle(self, obs: Observation, fresh: bool) -> None:
        """Keep healthy negotiated connections for the next program; close the rest."""
        for log in obs.conns.values():
            spawn = getattr(log.session.conn, "exit_status", None)
            if log.closed and callable(spawn):
                obs.crash_detail = str(spawn())
            healthy = log.probe_reply is not None and not log.closed
            negotiated = next((s for s in obs.program.steps
                               if s.kind == "negotiate" and s.conn == log.conn), None)
            if not fresh and healthy and negotiated is not None:
                key = (log.conn, bool(negotiated.meta.get("oob")))
                self._drop(key)
                self.pool[key] = log.session
            else:
                log.session.close()

def _request(step: Step) -> dict[str, Any] | None:
    return step.request()


def _unanswered(waiting: list[Any], replies: list[Message]) -> list[Any]:
    """``waiting`` minus one entry per reply whose id equals it (as JSON values)."""
    left = list(waiting)
    for msg in replies:
        for i, want in enumerate(left):
            if json_equal(want, msg.value["id"]):
                del left[i]
                break
    return left


def _negotiated(log: ConnLog, program: Program) -> bool:
    return log.reused or any(s.kind == "negotiate" and s.conn == log.conn
                             for s in program.steps)
