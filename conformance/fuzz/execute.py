"""Run a :class:`~conformance.fuzz.program.Program` against a target and record
everything that came back.

Sending is pipelined: the chunks of a program go out without waiting for
replies (that is what makes a campaign as fast as the server), and replies
are read at the end, up to each connection's probe reply.  Only a
negotiation that enables OOB waits for its reply, because exec-oob requests
sent before ``qmp_capabilities`` has run would race it.

Running is split in two, :meth:`Executor.submit` (connect, send) and
:meth:`Executor.collect` (read, judge-ready observation), so that a campaign
can send the next program while the server still works on the previous one.
Programs in flight together run on different *lanes*: each lane has its own
connections, so the replies of two programs never share a stream and are
never attributed to the wrong one.

Between examples the executor keeps healthy connections open and hands
them to the next program of the same lane that opens the same kind of
connection (negotiated with or without OOB, or still in negotiation mode):
the probe that ends every program leaves the server's parser in a
known-good state, so only the (recorded) greeting and negotiation are
skipped.  Confirmation and replay runs use ``fresh=True``: new connections,
exactly the stored bytes.

When a program mixes negotiated connections with ones left in negotiation
mode, the latter's probes are held back until the negotiated connections'
probes are answered: by then every event their commands caused has been
queued, so a server that wrongly delivers one to a negotiating connection
(Q11) has written it before that connection's probe reply.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from conformance.fuzz.program import Program, Step
from conformance.session import Message, Session, Transcript, json_equal
from conformance.transport import ConnectionClosed, Target, TargetError

SEND_TIMEOUT = 5.0
GREETING_TIMEOUT = 3.0
#: How long a socket target that went away is waited for before giving up.
RESTART_WAIT = 15.0


@dataclass
class ConnLog:
    """What happened on one connection during one program."""

    conn: int
    session: Session
    #: A kept-open negotiated session: the program's negotiation step is skipped.
    reused: bool = False
    greeting: Message | None = None
    greeting_expected: bool = False
    greeting_unread: bool = False
    start: int = 0  # index in session.received where this program's messages begin
    closed: str | None = None  # why the stream ended early, if it did
    sent_probe: bool = False
    #: The probe's id as it appears in its reply, to spot the reply unparsed.
    probe_needle: bytes = b"\0"
    probe_reply: Message | None = None
    raw_sent: bool = False

    @property
    def messages(self) -> list[Message]:
        """What this connection received during this program."""
        return self.session.received[self.start :]


@dataclass
class Observation:
    """What one run of ``program`` produced: each connection's log (by number),
    the time from its last send until its replies were read, and how a spawned
    server exited when a connection died."""

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


@dataclass
class Submitted:
    """A program whose bytes are sent and whose replies are still to be read."""

    obs: Observation
    lane: int
    fresh: bool
    last_send: float
    #: Probes of connections in negotiation mode, sent by :meth:`Executor.advance`.
    held: list[tuple[ConnLog, Step]] = field(default_factory=list)
    held_sent: bool = False


#: A kept-open session's key: (lane, connection number, mode), the mode
#: being "oob" or "plain" once negotiated, NEGOTIATING before.
PoolKey = tuple[int, int, str]
NEGOTIATING = "negotiating"


def _mode(negotiate: Step) -> str:
    return "oob" if negotiate.meta.get("oob") else "plain"


class Executor:
    """Executes programs on the target made by ``factory``; restarts it on demand.

    Construction starts the target at once: raises :class:`TargetError` when
    ``factory`` cannot start or reach it.
    """

    def __init__(self, factory: Callable[[], Target], probe_timeout: float = 5.0) -> None:
        self.factory = factory
        self.target = factory()
        self.probe_timeout = probe_timeout
        self.pool: dict[PoolKey, Session] = {}
        #: Whether the target greets several clients at once; when it does not
        #: (QEMU's socket monitor), at most one session is kept.  A spawned
        #: target gives every connection its own process.
        self.concurrent = self.target.restarts

    # -- connections ------------------------------------------------------------

    def _drop(self, key: PoolKey) -> None:
        held = self.pool.pop(key, None)
        if held is not None:
            held.close()

    def drop_all(self) -> None:
        """Close every kept-open session: the next programs open new connections."""
        for conn in list(self.pool):
            self._drop(conn)

    def restart(self) -> None:
        """A new target instance (spawned/reference) or, for a socket, a wait until
        it accepts connections again.

        Raises :class:`TargetError` when it is not back within ``RESTART_WAIT``
        seconds.
        """
        self.drop_all()
        with contextlib.suppress(Exception):
            self.target.close()
        deadline = time.monotonic() + RESTART_WAIT
        while True:
            try:
                self.target = self.factory()
                if not self.target.restarts and self.target.kind in ("unix", "tcp"):
                    # Nothing is started for a socket: is anyone listening again?
                    self.target.connect(GREETING_TIMEOUT).close()
                return
            except TargetError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        """Close every kept-open session and stop the target."""
        self.drop_all()
        self.target.close()

    def _open(self, conn: int, wait: bool) -> ConnLog:
        """A new connection.  Its greeting is read now when ``wait`` (negotiation
        follows), else with its replies: a client may send before the greeting
        arrives (the server reads it after), and waiting for a greeting from
        a busy server would stall the campaign for a round trip."""
        # The oracles judge by the program's own steps, not by re-reading them.
        session = Session(self.target.connect(), label=f"c{conn}", read_sent=False)
        log = ConnLog(conn, session, greeting_expected=True, greeting_unread=True)
        if wait:
            self._read_greeting(log)
        return log

    def _read_greeting(self, log: ConnLog) -> None:
        log.greeting_unread = False
        try:
            log.session.read_greeting(GREETING_TIMEOUT)
        except ConnectionClosed:
            log.closed = "closed before the greeting"
        log.greeting = next((m for m in log.session.received if m.is_greeting), None)

    # -- running ----------------------------------------------------------------

    def run(self, program: Program, fresh: bool = False) -> Observation:
        """Send ``program`` and read everything it is owed.

        Raises :class:`TargetError` when a connection cannot be opened.
        """
        return self.collect(self.submit(program, fresh))

    def submit(self, program: Program, fresh: bool = False, lane: int = 0) -> Submitted:
        """Connect, negotiate and send every chunk of ``program`` on ``lane``.

        Raises :class:`TargetError` when a connection cannot be opened.
        """
        obs = Observation(program)
        if fresh:
            self.drop_all()
        submitted = Submitted(obs, lane, fresh, time.monotonic())
        steps = program.steps
        skip: set[int] = set()
        negotiated = {s.conn for s in steps if s.kind == "negotiate"}
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
            if step.kind == "connect":
                log = self._connect(program, index, fresh, skip, lane)
                obs.conns[step.conn] = log
                if log.reused:
                    negotiated.add(step.conn)
                continue
            if log is None or log.closed:
                continue
            if step.kind == "negotiate":
                self._negotiate(log, step)
                continue
            if step.kind == "probe":
                log.probe_needle = json.dumps(step.meta.get("id")).encode()
            if step.kind == "probe" and step.conn not in negotiated and negotiated:
                submitted.held.append((log, step))
                continue
            pending.append(step)
            pending_log = log
            if step.kind == "raw":
                log.raw_sent = True
            elif step.kind == "probe":
                log.sent_probe = True
        if pending and pending_log is not None:
            self._send(pending_log, pending)
        submitted.last_send = time.monotonic()
        return submitted

    def collect(self, submitted: Submitted) -> Observation:
        """Read each connection up to its probe's reply; keep healthy sessions."""
        while True:
            obs = self.advance(submitted)
            if obs is not None:
                return obs

    def ready(self, submitted: Submitted) -> bool:
        """Whether :meth:`advance` would find the probe replies it waits for
        already here (what has arrived is read, without waiting)."""
        for log in self._awaited(submitted):
            if log.closed or not log.sent_probe:
                continue
            session = log.session
            session.read_available()
            needle = log.probe_needle
            if not session.reader.holds(needle) and not any(
                needle in m.raw for m in session.received[log.start :]
            ):
                return False
        return True

    def _awaited(self, submitted: Submitted) -> list[ConnLog]:
        """The connections whose probe replies the next :meth:`advance` reads."""
        if submitted.held_sent:
            return [log for log, _step in submitted.held]
        held = {id(log) for log, _step in submitted.held}
        return [log for log in submitted.obs.conns.values() if id(log) not in held]

    def advance(self, submitted: Submitted) -> Observation | None:
        """Read what ``submitted`` is owed so far.  None when it has just sent
        its held-back probes, whose replies are read by the next call: the
        caller can do other work meanwhile instead of waiting for a round
        trip through a busy server."""
        obs = submitted.obs
        program = obs.program
        if submitted.held and not submitted.held_sent:
            for log in self._awaited(submitted):
                self._await_probe(log, program)
            for log, step in submitted.held:
                if not log.closed:
                    self._send(log, [step])
                    log.sent_probe = True
            submitted.held_sent = True
            return None
        for log in self._awaited(submitted):
            self._await_probe(log, program)
        obs.latency = time.monotonic() - submitted.last_send
        self._settle(obs, submitted)
        return obs

    def _connect(
        self, program: Program, index: int, fresh: bool, skip: set[int], lane: int
    ) -> ConnLog:
        step = program.steps[index]
        following = program.steps[index + 1] if index + 1 < len(program.steps) else None
        negotiates = (
            following is not None and following.kind == "negotiate" and following.conn == step.conn
        )
        key = (lane, step.conn, _mode(following) if negotiates and following else NEGOTIATING)
        held = self.pool.pop(key, None) if not fresh else None
        if held is not None and held.closed:
            held.close()
            held = None
        if held is not None:
            session = held
            session.transcript = Transcript(f"c{step.conn}")
            session.received.clear()
            session.events.clear()
            session.inbox.clear()
            if not negotiates:
                # Still in negotiation mode: its greeting came with an earlier program.
                return ConnLog(step.conn, session)
            skip.add(index + 1)
            return ConnLog(step.conn, session, reused=True)
        if self.concurrent:
            self._drop(key)
        else:
            self.drop_all()
        return self._open(step.conn, wait=negotiates)

    def _negotiate(self, log: ConnLog, step: Step) -> None:
        self._send(log, [step])
        if log.closed or not step.meta.get("oob"):
            return  # in-band requests queue up behind it; only exec-oob could race it
        try:
            # The first reply on a new connection is the negotiation's, whatever
            # its id says: a server that garbles ids should not cost a timeout
            # per connection (the oracles judge the id).
            log.session.next_reply(self.probe_timeout)
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
            log.session.transcript.note(f"connection closed while sending: {exc}")
        except TimeoutError as exc:
            log.session.transcript.note(f"send timed out: {exc}")

    def _await_probe(self, log: ConnLog, program: Program) -> None:
        """Read until the probe's reply, then until every exec-oob request with an
        id is answered too: an OOB reply may overtake in-band ones (Q23) but is
        not obliged to, so it can also come after the probe's."""
        if log.greeting_unread and not log.closed:
            self._read_greeting(log)
        if not log.sent_probe or log.closed:
            return
        probe = next(s for s in program.steps if s.kind == "probe" and s.conn == log.conn)
        # Every request with an id (equal ids count once each): the in-band
        # ones are answered before the probe, exec-oob ones at any time.
        waiting = [probe.meta["id"]] + [
            r["id"]
            for r in (
                s.request() for s in program.steps if s.conn == log.conn and s.kind == "command"
            )
            if r is not None and "id" in r
        ]
        oob_ids = [
            r["id"]
            for r in (
                s.request()
                for s in program.steps
                if s.conn == log.conn and s.kind == "command" and s.meta.get("oob")
            )
            if r is not None and "id" in r
        ]
        seen = [m for m in log.messages if m.ok and "id" in m.obj]
        deadline = time.monotonic() + self.probe_timeout
        while True:
            waiting = _unanswered(waiting, seen)
            if log.probe_reply is None:
                log.probe_reply = next(
                    (m for m in seen if json_equal(m.obj["id"], probe.meta["id"])), None
                )
                if log.probe_reply is not None:
                    # In-band work is done; exec-oob replies have no deadline in
                    # the spec, so they get a full probe timeout of their own.
                    deadline = time.monotonic() + self.probe_timeout
            if log.probe_reply is not None and not any(
                json_equal(w, o) for w in waiting for o in oob_ids
            ):
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
            if msg.ok and "id" in msg.obj:
                seen = [msg]
        if log.probe_reply is None:
            log.session.transcript.note(f"no reply to the probe within {self.probe_timeout:g} s")

    def _settle(self, obs: Observation, submitted: Submitted) -> None:
        """Keep healthy connections for the lane's next program; close the rest."""
        for log in obs.conns.values():
            spawn = getattr(log.session.conn, "exit_status", None)
            if log.closed and callable(spawn):
                obs.crash_detail = str(spawn())
            healthy = log.probe_reply is not None and not log.closed
            negotiated = next(
                (s for s in obs.program.steps if s.kind == "negotiate" and s.conn == log.conn), None
            )
            if not submitted.fresh and healthy:
                key = (
                    submitted.lane,
                    log.conn,
                    NEGOTIATING if negotiated is None else _mode(negotiated),
                )
                self._drop(key)
                self.pool[key] = log.session
            else:
                log.session.close()


T = TypeVar("T")


class Pipeline(Generic[T]):
    """Programs in flight on up to ``lanes`` lanes of one executor, each with a
    tag of the caller's, handed back as they complete.

    Completed programs are taken in any order: a server that shares its time
    between connections finishes them in no particular order, and waiting for
    the oldest would leave it idle once the others are done.  Only when every
    lane is busy and none is complete does :meth:`push` wait (for the oldest).
    """

    def __init__(self, executor: Executor, lanes: int) -> None:
        self.executor = executor
        self.lanes = lanes
        self.waiting: deque[tuple[Submitted, T]] = deque()

    def push(self, program: Program, tag: T, fresh: bool = False) -> list[tuple[T, Observation]]:
        """Send ``program`` on a free lane; the programs that completed meanwhile.

        Raises :class:`TargetError` when a connection cannot be opened (the
        program is then not in flight).
        """
        busy = {submitted.lane for submitted, _tag in self.waiting}
        lane = next(lane for lane in range(self.lanes) if lane not in busy)
        self.waiting.append((self.executor.submit(program, fresh, lane), tag))
        done: list[tuple[T, Observation]] = []
        while self.waiting:
            item = next((each for each in self.waiting if self.executor.ready(each[0])), None)
            if item is None:
                if len(self.waiting) < self.lanes:
                    break
                item = self.waiting[0]
            self.waiting.remove(item)
            obs = self.executor.advance(item[0])
            if obs is None:
                self.waiting.append(item)  # its held-back probes are on their way
            else:
                done.append((item[1], obs))
        return done

    def drain(self) -> list[tuple[T, Observation]]:
        """Every program still in flight, read to the end, oldest first."""
        done = []
        while self.waiting:
            submitted, tag = self.waiting.popleft()
            done.append((tag, self.executor.collect(submitted)))
        return done


def _unanswered(waiting: list[Any], replies: list[Message]) -> list[Any]:
    """``waiting`` minus one entry per reply whose id equals it (as JSON values)."""
    left = list(waiting)
    for msg in replies:
        for i, want in enumerate(left):
            if json_equal(want, msg.obj["id"]):
                del left[i]
                break
    return left
