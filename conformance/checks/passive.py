"""Every line of the run, judged in passing (Q1, Q2, Q30, Q37).

The other checks judge what their own rule is about; whatever else a server
writes while they run is judged here, once all of them are done: every line
every session of the run received, against the wire rules that hold for
any line (``Message.wire_problem``, the rules the fuzzer's framing oracle
applies too).  A violation names the check during which it was seen.
"""

from __future__ import annotations

from conformance.checks.base import Fail, check
from conformance.checks.context import Context


@check(
    "passive.wire",
    "Q1,Q2,Q30,Q37",
    "every line of the whole run, whatever check drew it, keeps the wire rules",
)
def wire(ctx: Context) -> str:
    """Judge every line every session of the run received: CRLF (LF for the
    guest agent), ASCII, one JSON object, no event inside another message.
    A line the server was cut off in (it died) is not held to its ending.
    Raises :class:`Fail` naming each rule broken with the check it was seen
    in and how many lines, citing the sessions of the first line of each."""
    lines = 0
    counts: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], str] = {}
    for session, users in ctx.history:
        last = session.received[-1] if session.received else None
        for index, msg in enumerate(session.received):
            lines += 1
            problem = msg.wire_problem(lf_ends=ctx.qga, cut=session.closed and msg is last)
            if problem is None:
                continue
            rule, _slug, what = problem
            # The check that was using the session when the line came.
            seen_in = next((c for start, c in reversed(users) if start <= index), "")
            key = (rule, seen_in or "the run")
            if key not in counts:
                ctx.reuse(session, 0)
                first[key] = f"{what}: {msg.brief()}"
            counts[key] = counts.get(key, 0) + 1
    if counts:
        # One line that names every (rule, check) pair and nothing else, so a
        # baseline entry can expect exactly the pairs it knows of.
        raise Fail(
            "lines breaking wire rules, seen in passing: "
            + "; ".join(f"{rule} in {where} ({n})" for (rule, where), n in counts.items()),
            expected="every line one JSON object in ASCII, ending in CRLF",
            seen="; ".join(first.values()),
        )
    return f"{lines} lines on {len(ctx.history)} sessions, each keeping the wire rules"
