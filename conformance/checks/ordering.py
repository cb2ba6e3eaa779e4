"""In-band commands are answered in the order they were issued (Q22)."""

from __future__ import annotations

import json

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.messages import MISSING

PIPELINE = 16


@check("ordering.pipelined", "Q22", "pipelined in-band commands are answered in order")
def pipelined(ctx: Context) -> str:
    """Pipeline a mix of succeeding and failing in-band commands (after ``qmp_capabilities``)
    on a fresh session in one write: the replies must come back in the order sent (Q22).
    Raises :class:`Fail` with the order seen when not."""
    # A fresh session, with qmp_capabilities at the head of the pipeline: no reply
    # is awaited before the whole batch is out, so even a server that holds
    # replies back shows its order rather than a timeout.
    session = ctx.open(negotiate=False)
    sent: list[str] = []
    chunks: list[bytes] = []
    if not ctx.qga:
        sent.append("ord-negotiate")
        chunks.append(json.dumps(session.request("qmp_capabilities", id="ord-negotiate")).encode())
    for i in range(PIPELINE):
        # Mix cheap successes and failures: both kinds must keep their place.
        name = ctx.probe_command if i % 3 else "qc-no-such-command"
        ident = f"ord-{i}"
        sent.append(ident)
        chunks.append(json.dumps(session.request(name, id=ident)).encode())
    session.send_raw(b"".join(chunks))
    got = [
        m
        for m in session.collect(quiet=1.0, timeout=ctx.reply_timeout, until=len(sent))
        if not m.is_event
    ]
    order = [m.id for m in got]
    if order != sent:
        shown = ", ".join("(none)" if i is MISSING else json.dumps(i) for i in order)
        raise Fail(
            "replies did not come back in the order the commands were sent (Q22)",
            expected=", ".join(sent),
            seen=shown or "no replies",
        )
    return f"{len(sent)} pipelined commands answered in order"
