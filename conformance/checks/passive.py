"""Every line of the run, judged in passing (Q1, Q2, Q3, Q20, Q29, Q30, Q37).

The other checks judge what their own rule is about; whatever else a server
writes while they run is judged here, once all of them are done: every line
every session of the run received, against the rules that hold for any line
(``Message.wire_problem``, the rules the fuzzer's framing oracle applies
too) and for any message of its kind (``protocol.shape_problems``).  A
violation names the check during which it was seen.
"""

from __future__ import annotations

from collections.abc import Iterator

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.messages import shape_problems
from conformance.session import Message, Session

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
        problem = msg.wire_problem(lf_ends=ctx.qga, cut=cut)
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
    tally = _Tally(ctx)
    messages = 0
    for session, msg, seen_in, _cut in _lines(ctx):
        if not msg.ok:
            continue  # not an object: passive.wire's business
        messages += 1
        problems = shape_problems(msg.value)
        if problems:
            rule = SHAPE_RULES.get(msg.kind, "Q3")
            tally.add(session, rule, seen_in, f"{'; '.join(problems)}: {msg.brief()}")
    return tally.verdict(
        "messages without the shape of their kind",
        "greetings, replies, errors and events as the spec shapes them",
        f"{messages} messages, each shaped as its kind",
    )
