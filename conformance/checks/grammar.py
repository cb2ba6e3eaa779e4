"""What a server's reader makes of JSON the spec leaves open or extends (Q5, Q6).

Neither is a MUST: a repeated key "gives unpredictable results" (Q5) and
single-quoted strings are QEMU's extension (Q6).  So these checks report what
the server does; they fail only where a MUST still applies whatever it does:
one answer, in JSON, with the server still answering after it.
"""

from __future__ import annotations

from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.protocol.messages import MISSING
from conformance.session import Message, json_equal

#: The two ids of the repeated-key request, in the order they are written.
DUPLICATE_IDS = ("qc-dup-first", "qc-dup-last")
#: A single-quoted id with both quote characters in it, and what it spells.
SINGLE_QUOTED_ID = "'qc-it\\'s \"q\"'"
SINGLE_QUOTED_VALUE = 'qc-it\'s "q"'


def _answer(ctx: Context, raw: bytes, what: str) -> Message:
    """The one message that answers ``raw`` (fenced by the probe command).
    Raises :class:`Fail` when there is none or more than one, or it is not
    JSON (Q37)."""
    got = [m for m in ctx.fenced(ctx.shared(), raw, what) if not m.is_event]
    if len(got) != 1:
        raise Fail(
            f"{what} drew {len(got)} answers",
            expected="one reply (or one error)",
            seen=", ".join(m.brief(80) for m in got) or "nothing",
        )
    if got[0].error:
        raise Fail(f"the answer to {what} is not JSON (Q37)", expected="JSON", seen=got[0].brief())
    return got[0]


@check("grammar.duplicate-key", "Q5", "a repeated key draws one answer; which one is reported")
def duplicate_key(ctx: Context) -> str:
    """Send the probe command with its ``id`` written twice.  What follows is
    the server's choice (Q5): an error, or a reply carrying one of the two
    ids.  Raises :class:`Fail` for anything else: no answer or several,
    bytes that are not JSON, a reply with some other id, or no answer to the
    command after it."""
    first, last = DUPLICATE_IDS
    raw = f'{{"execute": "{ctx.probe_command}", "id": "{first}", "id": "{last}"}}'.encode()
    reply = _answer(ctx, raw, "a request with its id written twice")
    if reply.is_error:
        return f"refused (implementation-defined, Q5): {reply.error_class}"
    if reply.id is not MISSING and reply.id in DUPLICATE_IDS:
        winner = "the last" if reply.id == last else "the first"
        return f"accepted; {winner} of the repeated keys counts (implementation-defined, Q5)"
    raise Fail(
        "a request with its id written twice was answered with neither id",
        expected=f"id {first!r} or {last!r}, or an error",
        seen=reply.brief(),
    )


@check("grammar.single-quotes", "Q6", "single-quoted strings, if accepted, mean what they spell")
def single_quotes(ctx: Context) -> str:
    """Send the probe command with a single-quoted id holding ``\\'`` and a
    double quote.  A server without QEMU's extension may refuse it (then the
    check is skipped); one that accepts it must echo the string it spells.
    Raises :class:`Fail` when the echo differs, and :class:`Skip` when the
    server refuses single-quoted strings."""
    raw = f"{{'execute': '{ctx.probe_command}', 'id': {SINGLE_QUOTED_ID}}}".encode()
    reply = _answer(ctx, raw, "a single-quoted request")
    if reply.is_error:
        raise Skip("the server does not take single-quoted strings, QEMU's extension (Q6)")
    if reply.id is MISSING or not json_equal(reply.id, SINGLE_QUOTED_VALUE):
        raise Fail(
            "a single-quoted id came back as another string (Q6)",
            expected=f"id {SINGLE_QUOTED_VALUE!r}",
            seen=reply.brief(),
        )
    return "single-quoted strings (with \\') read as QEMU's extension says"
