"""Every line of the run, judged in passing (Q1, Q2, Q3, Q11, Q16, Q20, Q29,
Q30, Q37, Q38).

The other checks judge what their own rule is about; whatever else a server
writes while they run is judged here, once all of them are done: every line
every session of the run received, against the rules that hold for any line
(``Message.wire_problem``, the rules the fuzzer's framing oracle applies
too), for any message of its kind (``protocol.shape_problems``), and
against what the session sent (``protocol.sent``: no event before it asked
to negotiate, no reply to an id it never wrote), and against the rules of
downstream names (``protocol.downstream_problems``).  A violation names
the check during which it was seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.messages import (
    MISSING,
    bad_downstream_name,
    downstream_problems,
    shape_problems,
)
from conformance.qapi.model import EnumType, ObjectType, Schema
from conformance.session import Message, Session, json_equal

#: The rule a malformed message of each kind breaks.
SHAPE_RULES = {"greeting": "Q3", "return": "Q3", "error": "Q20", "event": "Q29", "unknown": "Q3"}


def _lines(ctx: Context) -> Iterator[tuple[Session, Message, str, bool]]:
    """Every line of the run: its session, the message, the check it came in
    and whether the stream ended in it."""
    for session, users in ctx.history:
        last = session.received[-1] if session.received else None
        for index, msg in enumerate(session.received):
            # The check that was using the session when the line came.
            seen_in = next((c for start, c in reversed(users) if start <= index), "")
            yield session, msg, seen_in or "the run", session.closed and msg is last


class _Tally:
    """Lines breaking a rule, counted by (rule, check), the first of each cited."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.counts: dict[tuple[str, str], int] = {}
        self.first: dict[tuple[str, str], str] = {}

    def add(self, session: Session, rule: str, seen_in: str, what: str) -> None:
        key = (rule, seen_in)
        if key not in self.counts:
            self.ctx.reuse(session, 0)
            self.first[key] = what
        self.counts[key] = self.counts.get(key, 0) + 1

    def verdict(self, what: str, expected: str, passed: str) -> str:
        """``passed`` when nothing was counted.  Raises :class:`Fail` naming
        every (rule, check) pair, on one line of its own so a baseline entry
        can expect exactly the pairs it knows of."""
        if not self.counts:
            return passed
        raise Fail(
            f"{what}, seen in passing: "
            + "; ".join(f"{rule} in {where} ({n})" for (rule, where), n in self.counts.items()),
            expected=expected,
            seen="; ".join(self.first.values()),
        )


def _objects(ctx: Context, judge: Callable[[Message], tuple[str, list[str]]]) -> tuple[_Tally, int]:
    """Every JSON object of the run judged by ``judge`` (the rule, and what
    the message breaks of it), tallied; and how many objects there were.
    A line that is no object is passive.wire's business."""
    tally = _Tally(ctx)
    messages = 0
    for session, msg, seen_in, _cut in _lines(ctx):
        if not msg.ok:
            continue
        messages += 1
        rule, problems = judge(msg)
        if problems:
            tally.add(session, rule, seen_in, f"{'; '.join(problems)}: {msg.brief()}")
    return tally, messages


@check(
    "passive.wire",
    "Q1,Q2,Q30,Q37",
    "every line of the whole run, whatever check drew it, keeps the wire rules",
    needs_target=False,
)
def wire(ctx: Context) -> str:
    """Judge every line every session of the run received: CRLF (LF for the
    guest agent), ASCII, one JSON object, no event inside another message.
    A line the server was cut off in (it died) is not held to its ending.
    Raises :class:`Fail` naming each rule broken with the check it was seen
    in and how many lines, citing the sessions of the first line of each."""
    tally = _Tally(ctx)
    lines = 0
    for session, msg, seen_in, cut in _lines(ctx):
        lines += 1
        problem = msg.wire_problem(qga=ctx.qga, cut=cut)
        if problem is not None:
            rule, _slug, what = problem
            tally.add(session, rule, seen_in, f"{what}: {msg.brief()}")
    return tally.verdict(
        "lines breaking wire rules",
        "every line one JSON object in ASCII, ending in CRLF",
        f"{lines} lines on {len(ctx.history)} sessions, each keeping the wire rules",
    )


@check(
    "passive.shapes",
    "Q3,Q20,Q29",
    "every message of the whole run has the shape of its kind (greeting, reply, error, event)",
    needs_target=False,
)
def shapes(ctx: Context) -> str:
    """Judge every JSON object every session of the run received by the
    structure its kind requires: a greeting's version and capabilities, an
    error's class and desc, an event's name, data and timestamp (in range),
    no members but downstream ``__`` ones beyond those (Q3, Q20, Q29).
    Raises :class:`Fail` naming each rule broken with the check it was seen
    in and how many messages."""
    tally, messages = _objects(
        ctx, lambda msg: (SHAPE_RULES.get(msg.kind, "Q3"), shape_problems(msg.value))
    )
    return tally.verdict(
        "messages without the shape of their kind",
        "greetings, replies, errors and events as the spec shapes them",
        f"{messages} messages, each shaped as its kind",
    )


@check(
    "passive.unasked",
    "Q11,Q16",
    "nothing of the whole run arrives unasked: no event before the session asked to "
    "negotiate, no reply with an id the session never sent",
    needs_target=False,
)
def unasked(ctx: Context) -> str:
    """Judge every message every session of the run received against what
    that session had sent: an event before its ``qmp_capabilities`` (Q11;
    the guest agent has no negotiation and no events) and a reply whose id
    is none of the ids its requests carried, read as QEMU reads them or as
    RFC 8259 does (Q16).  Past the bytes a session's requests are read for
    (floods), neither is judged.  Raises :class:`Fail` naming each rule
    broken with the check it was seen in and how many messages."""
    tally = _Tally(ctx)
    judged = 0
    negotiates = ctx.dialect.negotiation
    for session, msg, seen_in, _cut in _lines(ctx):
        sent = session.sent
        if not msg.ok or msg.t >= sent.judged_until():
            continue
        judged += 1
        if msg.is_event and negotiates:
            asked = sent.negotiate_at
            if asked is None or msg.t < asked:
                tally.add(session, "Q11", seen_in, f"an event before negotiation: {msg.brief()}")
        elif (
            msg.is_reply
            and msg.id is not MISSING
            and not any(json_equal(msg.id, sent_id) for sent_id in sent.ids)
        ):
            tally.add(session, "Q16", seen_in, f"a reply to an id never sent: {msg.brief()}")
    return tally.verdict(
        "messages nobody asked for",
        "events only after negotiation; replies only with ids the session sent",
        f"{judged} messages on {len(ctx.history)} sessions, each asked for",
    )


def _schema_names(schema: Schema) -> Iterator[str]:
    """Every name a schema puts on the wire: commands, events, members, enum values."""
    yield from schema.commands
    yield from schema.events
    for entity in schema.types.values():
        if isinstance(entity, ObjectType):
            yield from (m.name for m in entity.members)
        elif isinstance(entity, EnumType):
            yield from (v.name for v in entity.values)


@check(
    "passive.downstream",
    "Q38",
    "downstream names of the whole run are __RFQDN_ names, and the greeting has none",
    needs_target=False,
)
def downstream(ctx: Context) -> str:
    """Judge every member name of every message the run received, and every
    name of the target's schema: one beginning with ``__`` must be a
    downstream ``__RFQDN_`` name, and the greeting, which a downstream build
    may change only by offering more capabilities, has no downstream member.
    That a downstream build behaves as its upstream for inputs without
    downstream names takes two servers: ``qmp-conform compare``.  Raises
    :class:`Fail` naming each problem with the check it was seen in."""
    tally, messages = _objects(ctx, lambda msg: ("Q38", downstream_problems(msg.value)))
    schema = ctx.schema()
    names = [n for n in _schema_names(schema) if n.startswith("__")] if schema else []
    bad = sorted(n for n in names if bad_downstream_name(n))
    if bad:
        # Reported with what the messages broke, if anything: the schema's
        # names are one more source, not one that hides the others.
        raise Fail(
            f"the schema has {len(bad)} name(s) beginning with __ that are no __RFQDN_ names"
            + "".join(f"; Q38 in {where} ({n})" for (_r, where), n in tally.counts.items()),
            expected="__RFQDN_NAME, such as __com.example_frob",
            seen=", ".join(bad[:10]) + "".join(f"; {w}" for w in tally.first.values()),
        )
    return tally.verdict(
        "downstream names broken",
        "members beginning with __ named __RFQDN_..., none in the greeting",
        f"{messages} messages and {len(names)} downstream schema names, each as Q38 asks",
    )
