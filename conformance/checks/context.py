"""The state one run shares between checks: the target, its dialect, sessions.

Checks ask the context for sessions instead of connecting themselves, so the
context can (a) keep one negotiated session alive across checks that do not
disturb it, (b) close it before opening a fresh one (QEMU serves one client
per socket at a time; a spawned target is restarted), and (c) remember which
sessions a check touched, from which transcript entry, for its evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, cast

from conformance.baseline import server_version
from conformance.checks.base import Fail, Skip
from conformance.protocol.dialects import DEFAULT, QGA, Dialect, resolve
from conformance.qapi import Schema, load
from conformance.session import (
    GREETING_TIMEOUT,
    Message,
    ReplyTimeout,
    Session,
    read_schema,
)
from conformance.specs import Specs
from conformance.transport import ConnectionClosed, Target, TargetError


class Workload(Protocol):
    """What a shared workload keeps: its session and where its transcript starts."""

    @property
    def session(self) -> Session:
        """The session the workload ran on."""
        ...

    @property
    def mark(self) -> int:
        """The transcript entry the workload's evidence starts from."""
        ...


W = TypeVar("W", bound=Workload)


class Context:
    """See the module docstring; one per run.  Construction raises :class:`ValueError`
    when ``dialect`` names no known dialect."""

    def __init__(
        self, target: Target, dialect: Dialect | str | None = None, reply_timeout: float = 5.0
    ) -> None:
        try:
            self.forced = resolve(dialect) if dialect is not None else None
        except KeyError as exc:
            raise ValueError(str(exc).strip("'\"")) from None
        self.target = target
        #: What the server speaks: forced, or learnt by :meth:`start`.
        self.dialect: Dialect = self.forced or DEFAULT
        self.reply_timeout = reply_timeout
        self.greeting: dict[str, Any] | None = None
        #: The server's ``major.minor.micro``: from the greeting, or from
        #: ``guest-info`` for the guest agent; "" when it does not say.
        self.version = ""
        self.memo: dict[str, Any] = {}
        self._shared: Session | None = None
        self._used: list[tuple[Session, int]] = []
        #: Each session's (answered, unanswered) when the current check first
        #: touched it, to tell what the check itself waited for.
        self._waits: dict[int, tuple[Session, int, int]] = {}
        #: Whether the detection session's requests went unanswered.
        self.silent_at_start = False
        self._open: list[Session] = []
        self._sessions = 0
        #: Every session a check used in this run, with where in its received
        #: messages each check began using it (index, check id): what the
        #: checks that judge all traffic in passing attribute lines by.
        self.history: list[tuple[Session, list[tuple[int, str]]]] = []
        #: The check running now (see :meth:`begin`).
        self.check_id = ""
        self._schema: Schema | None = None
        self._schema_error: str | None = None
        self._specs: Specs | None = None

    # -- life cycle ----------------------------------------------------------

    def start(self) -> None:
        """Connect once: learn the dialect (a greeting means QMP, none means the
        guest agent) and check the target answers at all; raises TargetError."""
        try:
            conn = self.target.connect()
        except ConnectionClosed as exc:
            raise TargetError(f"{self.target.spec}: {exc}") from exc
        session = Session(conn, "dialect detection")
        forced = self.forced
        try:
            if forced is None or forced.greeting:
                self.greeting = session.read_greeting(GREETING_TIMEOUT)
            if self.greeting is not None:
                self.version = server_version(self.greeting)
                self._learn_schema(session)
                return
            if forced is not None and forced.greeting:
                return  # a QMP server without a greeting: the checks will say so (Q7)
            try:
                reply: Message | None = session.execute(
                    QGA.probe_command, timeout=min(self.reply_timeout, 2.0)
                )
            except (ReplyTimeout, ConnectionClosed):
                reply = None
            if reply is None:
                raise TargetError(
                    f"{self.target.spec}: no greeting and no reply to guest-ping: not a QMP server"
                )
            if reply.error_class == "CommandNotFound":
                # Not a guest agent, so a QMP server that failed to greet (Q7).
                self.dialect = DEFAULT
                return
            self.dialect = forced or QGA
            self._learn_commands(session)
        except ConnectionClosed as exc:
            fate = session.fate or str(exc)
            raise TargetError(f"{self.target.spec}: connection closed: {fate}") from exc
        finally:
            session.close()

    def close(self) -> None:
        """Close every session, then the target (stopping what the run started for it)."""
        self.close_sessions()
        self.target.close()

    def begin(self, check_id: str = "") -> None:
        """Check ``check_id`` starts: forget which sessions the previous one used."""
        self._used = []
        self._waits = {}
        self.check_id = check_id

    def waits(self) -> tuple[int, int]:
        """The current check's waits for a reply: how many got one, and how
        many ran out of time (a target that stopped answering shows none of
        the first and some of the second in every check)."""
        answered = unanswered = 0
        for session, answered0, unanswered0 in self._waits.values():
            answered += session.answered - answered0
            unanswered += session.unanswered - unanswered0
        return answered, unanswered

    def evidence(self) -> list[str]:
        """The transcript lines of every session the current check used, each from where the
        check began using it."""
        lines: list[str] = []
        for session, mark in self._used:
            lines += session.transcript.render(mark)
        return lines

    # -- sessions ------------------------------------------------------------

    @property
    def qga(self) -> bool:
        """The guest agent's kind of server: no greeting, no negotiation."""
        return not self.dialect.greeting

    def _track(self, session: Session) -> None:
        self.reuse(session, session.transcript.mark())

    def open(
        self,
        negotiate: bool | Sequence[str] = False,
        *,
        keep_shared: bool = False,
        greeting_timeout: float = GREETING_TIMEOUT,
    ) -> Session:
        """A new session on a new connection (a new process for spawned targets),
        greeted, and negotiated when asked: ``True`` enables every offered
        capability, a list enables exactly those.  A missing greeting or a failed
        negotiation is a finding (Q7, Q12) and raises :class:`Fail`; raises
        :class:`TargetError` when the target cannot be reached, and
        :class:`ConnectionClosed` when it hangs up before the session is ready."""
        if not keep_shared:
            self.close_sessions()
        self._sessions += 1
        session = Session(self.target.connect(), f"session {self._sessions}")
        self._open.append(session)
        self._track(session)
        if self.qga:
            return session
        if session.read_greeting(greeting_timeout) is None:
            raise Fail(
                "the server sent no greeting on a new connection (Q7)",
                expected=f"a greeting within {greeting_timeout:g} s",
                seen="nothing" if not session.inbox else session.inbox[0].brief(),
            )
        if negotiate is False:
            return session
        enable = session.capabilities if negotiate is True else list(negotiate)
        try:
            reply = session.negotiate(enable or None, timeout=self.reply_timeout)
        except ReplyTimeout as exc:
            raise Fail(
                "qmp_capabilities got no usable reply, so the check could not start",
                expected='{"return": {}, "id": ...}',
                seen=str(exc),
            ) from exc
        if not (reply.ok and "return" in reply.obj):
            raise Fail(
                "qmp_capabilities failed, so the check could not start (Q12)",
                expected='{"return": {}}',
                seen=reply.brief(),
            )
        return session

    def shared(self) -> Session:
        """The run's long-lived session, negotiated with every offered capability.
        Opening it raises as :meth:`open` does."""
        if self._shared is None or self._shared.closed:
            self._shared = self.open(negotiate=True)
        self._track(self._shared)
        return self._shared

    def discard(self) -> None:
        """Close the shared session (a check may have left it in a bad state)."""
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def close_sessions(self) -> None:
        """Close every session still open: the target may serve one client at a time."""
        self.discard()
        for session in self._open:
            session.close()
        self._open.clear()

    def reuse(self, session: Session, mark: int) -> None:
        """Cite ``session`` from transcript entry ``mark`` as this check's evidence
        (checks sharing one workload); a session already cited is cited once."""
        if all(s is not session for s, _ in self._used):
            self._used.append((session, mark))
            users = next((u for s, u in self.history if s is session), None)
            if users is None:
                users = []
                self.history.append((session, users))
            users.append((len(session.received), self.check_id))
        self._waits.setdefault(id(session), (session, session.answered, session.unanswered))

    def workload(self, key: str, build: Callable[[], W]) -> W:
        """A workload several checks judge: built by the first check that asks,
        then cited as evidence, from its mark, by every later one.  Raises what
        ``build`` raises (a Fail or Skip), and the next check that asks tries again."""
        cached = self.memo.get(key)
        if cached is not None:
            self.reuse(cached.session, cached.mark)
            return cast(W, cached)
        result = build()
        self.memo[key] = result
        return result

    @property
    def probe_command(self) -> str:
        """The dialect's cheapest harmless command, used as a probe and as a fence."""
        return self.dialect.probe_command

    def probe(self, session: Session, timeout: float | None = None) -> Message | None:
        """Send the dialect's cheapest command; its reply, or None if none came."""
        try:
            return session.execute(self.probe_command, timeout=timeout or self.reply_timeout)
        except (ReplyTimeout, ConnectionClosed):
            return None

    def fenced(self, session: Session, raw: bytes, after: str) -> list[Message]:
        """Send ``raw`` then the probe command; the messages that came before
        the probe's reply.  A probe left unanswered is a finding (Q32): raises
        :class:`Fail` saying the server stopped answering after ``after``, and
        :class:`ConnectionClosed` when the connection is found closed while sending."""
        session.send_raw(raw)
        fence = session.request(self.probe_command)
        session.send(fence)
        try:
            session.wait_reply(fence["id"], self.reply_timeout)
        except (ReplyTimeout, ConnectionClosed) as exc:
            raise Fail(
                f"the server stopped answering after {after} (Q32)",
                expected=f"a reply to {self.probe_command} sent after it",
                seen=str(exc),
            ) from exc
        before = list(session.inbox)
        session.inbox.clear()
        return before

    def call(
        self, session: Session, name: str, arguments: dict[str, Any] | None = None, **kw: Any
    ) -> Message:
        """Execute and wait; a missing reply or a closed connection is a finding and
        raises :class:`Fail`."""
        try:
            return session.execute(name, arguments, timeout=self.reply_timeout, **kw)
        except ReplyTimeout as exc:
            raise Fail(
                f"no reply to {name} (Q16: one reply per command)",
                expected="a reply carrying the request's id",
                seen=str(exc),
            ) from exc
        except ConnectionClosed as exc:
            raise Fail(
                f"the server closed the connection instead of answering {name}",
                expected="a reply",
                seen=str(exc),
            ) from exc

    # -- the target's schema -------------------------------------------------

    def _learn_schema(self, session: Session) -> None:
        """Fetch and load ``query-qmp-schema`` once, on the detection session,
        so no check has to open a session in the middle of another one."""
        try:
            entries = read_schema(
                session, timeout=2 * self.reply_timeout, negotiation_timeout=self.reply_timeout
            )
        except TargetError as exc:
            self._schema_error = str(exc)
            self.silent_at_start = session.answered == 0
            return
        try:
            self._schema = load(entries)
        except Exception as exc:
            self._schema_error = f"the target's schema does not load: {exc}"
            return
        self.memo["commands"] = set(self._schema.commands)

    def _learn_commands(self, session: Session) -> None:
        """The guest agent has no schema; guest-info lists its enabled commands."""
        self._schema_error = "the guest-agent dialect has no query-qmp-schema"
        try:
            reply = session.execute("guest-info", timeout=self.reply_timeout)
        except ReplyTimeout:
            reply = None
        info = reply.obj.get("return") if reply is not None and reply.ok else None
        version = info.get("version") if isinstance(info, dict) else None
        if isinstance(version, str):
            self.version = version
        listed = info.get("supported_commands") if isinstance(info, dict) else None
        self.memo["commands"] = (
            {c["name"] for c in listed if isinstance(c, dict) and c.get("enabled")}
            if isinstance(listed, list)
            else set()
        )

    def schema(self) -> Schema | None:
        """The target's own schema (``query-qmp-schema``); None when it has none."""
        return self._schema

    def require_schema(self) -> Schema:
        """The target's own schema.  Raises :class:`Skip` when it has none, saying why."""
        schema = self.schema()
        if schema is None:
            raise Skip(self._schema_error or "no schema")
        return schema

    def specs(self) -> Specs:
        """JSON Schemas derived from the target's schema (an empty one without it), built once."""
        if self._specs is None:
            self._specs = Specs(self.schema() or Schema())
        return self._specs

    def commands(self) -> set[str]:
        """Command names the target offers (from its schema, or guest-info)."""
        commands: set[str] = self.memo.get("commands", set())
        return commands

    def require_command(self, *names: str) -> str:
        """The first of ``names`` the target offers.  Raises :class:`Skip` when it
        offers none of them."""
        offered = self.commands()
        for name in names:
            if name in offered:
                return name
        raise Skip(f"the target offers none of: {', '.join(names)}")
