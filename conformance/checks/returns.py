"""Return values match the target's own schema (Q3, Q19).

Like QEMU's qmp-cmd-test: every ``query-*`` command whose arguments are all
optional is called without arguments; each ``return`` must validate against
the command's return type in the target's introspected schema.  Errors are
accepted (a command may be unavailable in this build or configuration), as
long as at least one command returned data.
"""

from __future__ import annotations

import json

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.qapi import Schema
from conformance.session import ReplyTimeout


def callable_queries(schema: Schema) -> list[str]:
    """``query-*`` commands that need no argument, sorted."""
    out = []
    for cmd in schema.commands.values():
        if not cmd.name.startswith("query-"):
            continue
        args = schema.object_type(cmd.arg_type)
        if args is None or (not any(not m.optional for m in args.members) and not args.variants):
            out.append(cmd.name)
    return sorted(out)


@check(
    "returns.query",
    "Q3,Q19",
    "every argument-free query-* command returns data valid against its schema",
    QMP_DIALECTS,
)
def query_returns(ctx: Context) -> str:
    """Pipeline every ``query-*`` command that needs no argument: each ``return`` must
    validate against the command's return type in the target's schema, and at least one
    must return data (Q3, Q19).  Raises :class:`Fail` listing the mismatches, or on a
    command left unanswered, and :class:`Skip` when the target has no schema."""
    schema = ctx.require_schema()
    specs = ctx.specs()
    session = ctx.shared()
    names = callable_queries(schema)
    requests = {name: session.request(name) for name in names}
    # Pipelined: the server stops reading when its queue is full, our socket buffer holds
    # the rest, and replies come back in order.
    session.send_raw(b"".join(json.dumps(r).encode() for r in requests.values()))
    returned = errored = 0
    bad: list[str] = []
    for name, request in requests.items():
        try:
            reply = session.wait_reply(request["id"], ctx.reply_timeout)
        except ReplyTimeout as exc:
            raise Fail(f"no reply to {name} (Q16)", expected="a reply", seen=str(exc)) from exc
        if reply.is_error:
            errored += 1
            continue
        if not reply.ok or "return" not in reply.obj:
            bad.append(f"{name}: neither return nor error: {reply.brief()}")
            continue
        returned += 1
        problems = specs.errors("return", name, reply.obj["return"])
        if problems:
            bad.append(f"{name}: " + "; ".join(problems[:3]))
    if bad:
        raise Fail(
            f"{len(bad)} of {len(names)} query commands returned data that does not "
            "match their return schema (Q3, Q19)",
            expected="returns valid against query-qmp-schema",
            seen="\n  ".join(["", *bad[:10]]),
        )
    if not returned:
        raise Fail(
            "no query command returned data",
            expected="at least one return",
            seen=f"{errored} errors",
        )
    return f"{returned} query commands returned valid data ({errored} refused)"
