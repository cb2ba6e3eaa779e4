"""Error responses: ``{class, desc}`` with a known class (Q20)."""

from __future__ import annotations

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.session import Message


def _error_replies(ctx: Context) -> list[Message]:
    """Errors of every layer: parser, dispatcher, command lookup, arguments."""
    session = ctx.shared()
    out: list[Message] = []
    for raw in (
        b"{]",
        b"{}",
        b'{"execute": 1}',
        b'{"execute": "qc-no-such-command"}',
        f'{{"execute": "{ctx.probe_command}", "arguments": {{"qc-bad": 1}}}}'.encode(),
    ):
        out += ctx.fenced(session, raw, "an erroneous request")
    return out


@check("errors.shape", "Q20,Q3", "every error is {class, desc} with a known class")
def shape(ctx: Context) -> str:
    """Send erroneous requests that fail in the parser, the dispatcher, the command lookup and
    the argument check, each fenced by a probe: every error must be ``{class, desc}`` with
    a class the schema knows (Q20).  Raises :class:`Fail` with the first malformed error,
    or when no error came back at all."""
    replies = _error_replies(ctx)
    if not replies:
        raise Fail(
            "erroneous requests got no error replies (Q20)",
            expected="one error per erroneous request",
            seen="none",
        )
    validator = ctx.specs().wire_validator("error", ctx.dialect)
    for msg in replies:
        problems = (
            [e.message for e in validator.iter_errors(msg.obj)]
            if msg.ok
            else [msg.error or "not an object"]
        )
        if problems:
            classes = ", ".join(ctx.specs().error_classes())
            raise Fail(
                "an error response does not have the required shape (Q20)",
                expected=f'{{"error": {{"class": one of {classes}, "desc": str}}, "id"?}}',
                seen=f"{msg.brief()}: {'; '.join(problems[:3])}",
            )
    return f"{len(replies)} errors, all well-formed"


@check("errors.command-not-found", "Q20", "an unknown command gets CommandNotFound")
def command_not_found(ctx: Context) -> str:
    """Call a command that does not exist: the error class must be CommandNotFound (Q20).
    Raises :class:`Fail` with the reply when it is not."""
    reply = ctx.call(ctx.shared(), "qc-no-such-command")
    if reply.error_class != "CommandNotFound":
        raise Fail(
            "an unknown command did not fail with CommandNotFound",
            expected='{"error": {"class": "CommandNotFound", ...}}',
            seen=reply.brief(),
        )
    return "CommandNotFound"
