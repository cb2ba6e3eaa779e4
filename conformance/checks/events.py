"""Events: envelope, data against the schema, timestamps (Q29, Q30).

``stop`` then ``cont`` is the cheapest way to make a QMP server emit events
(STOP, RESUME); the three checks judge the events of that one exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.session import Message, Session


@dataclass
class Fired:
    """The events one ``stop``/``cont`` exchange brought on the shared session, and the
    transcript entry the exchange starts from (the event checks' evidence)."""

    session: Session
    mark: int
    events: list[Message]


def fired(ctx: Context) -> Fired:
    """The ``stop``/``cont`` exchange the event checks judge, run by the first of them.
    Raises :class:`Skip` when the target lacks either command or emits no event, and
    :class:`Fail` when the shared session cannot be opened or a command goes unanswered."""
    return ctx.workload("events", lambda: _fire(ctx))


def _fire(ctx: Context) -> Fired:
    ctx.require_command("stop")
    ctx.require_command("cont")
    session = ctx.shared()
    mark = session.transcript.mark()
    first = len(session.events)
    ctx.call(session, "stop")
    ctx.call(session, "cont")
    session.collect(quiet=0.1, timeout=0.5)  # events may trail the replies
    events = session.events[first:]
    if not events:
        raise Skip("stop and cont emitted no event")
    return Fired(session, mark, events)


@check(
    "events.envelope",
    "Q29,Q30",
    "events are {event, timestamp{seconds, microseconds}, data?}",
    QMP_DIALECTS,
)
def envelope(ctx: Context) -> str:
    """Judge the events of the ``stop``/``cont`` exchange: each must be exactly ``{event,
    data?, timestamp}`` with a string name, an object as data and integer timestamp
    members (Q29).  Raises :class:`Fail` with the first event that is not, and
    :class:`Skip` as :func:`fired` does."""
    for msg in fired(ctx).events:
        v = msg.obj
        ts = v.get("timestamp")
        problems = []
        if not isinstance(v.get("event"), str):
            problems.append("'event' is not a string")
        if "data" in v and not isinstance(v["data"], dict):
            problems.append("'data' is not an object")
        extra = set(v) - {"event", "data", "timestamp"}
        if extra:
            problems.append(f"unexpected members {sorted(extra)}")
        if (
            not isinstance(ts, dict)
            or set(ts) != {"seconds", "microseconds"}
            or not all(isinstance(ts[k], int) and not isinstance(ts[k], bool) for k in ts)
        ):
            problems.append("'timestamp' is not {seconds: int, microseconds: int}")
        if problems:
            raise Fail(
                "an event does not have the event envelope (Q29)",
                expected='{"event": str, "data"?: object, '
                '"timestamp": {"seconds": int, "microseconds": int}}',
                seen=f"{msg.brief()}: {'; '.join(problems)}",
            )
    return f"{len(fired(ctx).events)} events well-formed"


@check("events.data", "Q29,Q3", "event data validates against the target's schema", QMP_DIALECTS)
def data(ctx: Context) -> str:
    """Judge the events of the ``stop``/``cont`` exchange against the target's own schema:
    each must be an event the schema names, with valid data (Q29, Q3).  Raises
    :class:`Fail` with the first event that is not, and :class:`Skip` when the target has
    no schema or :func:`fired` skips."""
    schema = ctx.require_schema()
    specs = ctx.specs()
    events = fired(ctx).events
    for msg in events:
        name = msg.obj.get("event")
        if name not in schema.events:
            raise Fail(
                f"event {name!r} is not in the target's schema (Q29)",
                expected=f"one of {len(schema.events)} events of query-qmp-schema",
                seen=msg.brief(),
            )
        problems = specs.errors("data", name, msg.obj.get("data", {}))
        if problems:
            raise Fail(
                f"the data of event {name} does not match its schema (Q3)",
                expected=f"data valid for {name}",
                seen=f"{msg.brief()}: {problems[0]}",
            )
    return f"{', '.join(str(m.obj.get('event')) for m in events)}: data valid"


@check(
    "events.timestamp",
    "Q29",
    "timestamps are both -1, or seconds >= 0 and 0 <= microseconds <= 999999",
    QMP_DIALECTS,
)
def timestamp(ctx: Context) -> str:
    """Judge the timestamps of the ``stop``/``cont`` exchange's events: both -1, or seconds
    >= 0 and microseconds within 0..999999 (Q29).  Raises :class:`Fail` with the first
    event out of range, and :class:`Skip` as :func:`fired` does."""
    for msg in fired(ctx).events:
        ts = msg.obj.get("timestamp")
        s = ts.get("seconds") if isinstance(ts, dict) else None
        us = ts.get("microseconds") if isinstance(ts, dict) else None
        ok = (
            isinstance(s, int)
            and isinstance(us, int)
            and ((s == -1 and us == -1) or (s >= 0 and 0 <= us <= 999999))
        )
        if not ok:
            raise Fail(
                "an event timestamp is out of range (Q29)",
                expected="seconds >= 0 and 0 <= microseconds <= 999999, or both -1",
                seen=msg.brief(),
            )
    return "timestamps in range"
