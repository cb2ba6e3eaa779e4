"""Events: envelope, data against the schema, timestamps (Q29, Q30).

``stop`` then ``cont`` is the cheapest way to make a QMP server emit events
(STOP, RESUME); the three checks judge the events of that one exchange.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass

from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.protocol.messages import TIMESTAMP_OUT_OF_RANGE, shape_problems
from conformance.protocol.values import JSON
from conformance.qapi.model import EnumType, Schema
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
    """Judge the events of the ``stop``/``cont`` exchange: each must be ``{event, data?,
    timestamp}`` (and downstream ``__`` members only besides) with a string name, an
    object as data and exactly integer ``seconds`` and ``microseconds`` (Q29).  Raises
    :class:`Fail` with the first event that is not, and :class:`Skip` as :func:`fired`
    does."""
    for msg in fired(ctx).events:
        problems = [p for p in shape_problems(msg.value) if p != TIMESTAMP_OUT_OF_RANGE]
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
        if TIMESTAMP_OUT_OF_RANGE in shape_problems(msg.value):
            raise Fail(
                "an event timestamp is out of range (Q29)",
                expected="seconds >= 0 and 0 <= microseconds <= 999999, or both -1",
                seen=msg.brief(),
            )
    return "timestamps in range"


#: The throttled event the catalogue can trigger without a guest, and the
#: drivers of the node tree that triggers it: a quorum of three children, one
#: of which fails every read (blkdebug injecting EIO under raw).
THROTTLED_EVENT = "QUORUM_REPORT_BAD"
TRIGGER_DRIVERS = ("quorum", "blkdebug", "null-co", "raw")
#: Reads in a burst, and the rate the rule sets: one event a second per source.
BURST = 8
PERIOD = 1.0
#: Slack for the arrival of the delayed event (timers, scheduling, the pipe).
EARLY = 0.1
LATE = 0.5


def _block_drivers(schema: Schema) -> set[str]:
    """The drivers ``blockdev-add`` accepts (introspection names types by
    number, so the enum is found through the command's ``driver`` member)."""
    command = schema.commands.get("blockdev-add")
    args = schema.object_type(command.arg_type) if command else None
    member = next((m for m in args.members if m.name == "driver"), None) if args else None
    drivers = schema.types.get(member.type) if member else None
    return {v.name for v in drivers.values} if isinstance(drivers, EnumType) else set()


def _node(event: Message) -> JSON:
    """The node an event's data names (None without one)."""
    data = event.obj.get("data")
    return data.get("node-name") if isinstance(data, dict) else None


def _quorum(node: str) -> dict[str, object]:
    good = {"driver": "null-co", "read-zeroes": True}
    failing = {
        "driver": "raw",
        "file": {"driver": "blkdebug", "inject-error": [{"event": "read_aio"}], "image": good},
    }
    return {
        "driver": "quorum",
        "node-name": node,
        "vote-threshold": 2,
        "children": [good, good, failing],
    }


@check(
    "events.throttled",
    "Q31",
    "a burst of a throttled event is delivered as its first at once and its last a "
    "period later, nothing between",
    QMP_DIALECTS,
)
def throttled(ctx: Context) -> str:
    """Trigger QUORUM_REPORT_BAD, an event QEMU throttles to one a second per
    node, in a burst: a quorum node whose third child fails every read, read
    eight times in a row through HMP ``qemu-io``.  The first event must come
    at once, the others within the second be dropped but the last, which
    comes when the second is over (Q31): two events, a period apart.  Raises
    :class:`Skip` when the target cannot build the trigger (no HMP, no
    quorum driver, no such event) or it emits no event, and :class:`Fail`
    when events of the burst come closer than a period or the last is lost."""
    schema = ctx.require_schema()
    ctx.require_command("human-monitor-command")
    ctx.require_command("blockdev-add")
    if THROTTLED_EVENT not in schema.events:
        raise Skip(f"the target's schema has no {THROTTLED_EVENT} event to trigger")
    known = _block_drivers(schema)
    missing = [d for d in TRIGGER_DRIVERS if d not in known]
    if missing:
        raise Skip(f"the block drivers the trigger needs are missing: {', '.join(missing)}")
    session = ctx.shared()
    node = f"qc-throttle-{len(session.received)}"
    added = ctx.call(session, "blockdev-add", _quorum(node))
    if added.is_error:
        raise Skip(f"the quorum node cannot be built here: {added.desc}")
    try:
        first = len(session.events)
        start = time.monotonic()
        # -q: a report would go to QEMU's stdout, which -qmp stdio makes the QMP stream.
        read = {"command-line": f'qemu-io {node} "read -q 0 512"'}
        for _ in range(BURST):
            out = ctx.call(session, "human-monitor-command", read)
            if out.is_error or out.obj.get("return"):
                raise Skip(f"HMP qemu-io does not read the node: {out.brief(200)}")
        burst = time.monotonic() - start
        # The delayed last event is due a period after the first: wait that
        # long and a little, not for a quiet line.
        until = start + PERIOD + LATE
        while (left := until - time.monotonic()) > 0 and not session.closed:
            session.collect(quiet=left, timeout=left)
        events = [m for m in session.events[first:] if m.obj.get("event") == THROTTLED_EVENT]
    finally:
        if not session.closed:  # a server that died must be blamed for the burst, not this
            with contextlib.suppress(Fail):
                ctx.call(session, "blockdev-del", {"node-name": node})
    if not events:
        raise Skip(f"{BURST} failing reads emitted no {THROTTLED_EVENT}")
    if burst >= PERIOD - EARLY:
        raise Skip(f"the burst took {burst:.2f} s, more than the period it must fit in")
    # One source: the failing child the first event names.
    events = [m for m in events if _node(m) == _node(events[0])]
    arrivals = [m.t for m in events]
    began = start - session.transcript.start  # on the session's clock, as m.t is
    if arrivals[0] - began >= PERIOD - EARLY:
        raise Fail(
            f"the first {THROTTLED_EVENT} of the burst came {arrivals[0] - began:.3f} s after "
            f"it began: held back, not sent at once (Q31)",
            expected="the first event of a burst at once",
            seen=events[0].brief(200),
        )
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    close = [g for g in gaps if g < PERIOD - EARLY]
    if close:
        raise Fail(
            f"{len(events)} {THROTTLED_EVENT} events for one node, {min(close):.3f} s apart "
            f"(Q31: at most one a second)",
            expected=f"the first at once, the last {PERIOD:g} s later, none between",
            seen="; ".join(
                f"+{t - arrivals[0]:.3f} s {m.brief(160)}"
                for t, m in zip(arrivals, events, strict=True)
            ),
        )
    if len(events) < 2:
        raise Fail(
            f"a burst of {BURST} {THROTTLED_EVENT} within {burst:.2f} s gave one event: "
            f"the last of the burst was dropped, not delayed (Q31)",
            expected=f"the first at once and the last {PERIOD:g} s later",
            seen=events[0].brief(200),
        )
    return (
        f"{BURST} reads in {burst:.3f} s: {len(events)} {THROTTLED_EVENT}, "
        f"{', '.join(f'{g:.2f}' for g in gaps)} s apart"
    )
