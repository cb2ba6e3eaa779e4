"""Framing: what every server line must look like on the wire (Q1, Q2, Q37).

The three checks judge one shared workload, run on a fresh session so the
greeting is included: a success, errors, a parse error, non-ASCII input that
must come back escaped, the (large) schema reply, events when the target can
emit them cheaply, and, for the guest agent, the 0xFF-prefixed sync reply.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QGA
from conformance.session import Message, ReplyTimeout, Session
from conformance.transport import ConnectionClosed

NON_ASCII_ID = "qc-\u00e9\U0001f600\u2028"
#: The number the framing workload syncs the guest agent with.
SYNC_ID = 4242


@dataclass
class Workload:
    """The framing workload: every line its session received, greeting included (so the
    evidence starts at ``mark`` 0), and that session, closed."""

    session: Session
    mark: int
    messages: list[Message]


def workload(ctx: Context) -> Workload:
    """The framing workload, run once on a fresh session for the three framing checks.
    Raises as :meth:`Context.open` does: :class:`Fail` when the session gets no greeting."""
    return ctx.workload("framing", lambda: _run_workload(ctx))


def _run_workload(ctx: Context) -> Workload:
    session = ctx.open(negotiate=False)
    mark = 0

    def call(name: str, arguments: dict[str, Any] | None = None, **kw: Any) -> None:
        # A garbled reply never matches its id: go on, the lines are judged below.
        with contextlib.suppress(ReplyTimeout, ConnectionClosed):
            session.execute(name, arguments, timeout=1.0, **kw)

    if not ctx.qga:
        call("qmp_capabilities", {"enable": session.capabilities})
    call(ctx.probe_command)
    call("qc-no-such-command", id=NON_ASCII_ID)
    call(ctx.probe_command, {"qc-\u00fcnexpected": "\u00e9"})
    session.send_raw(b"{]")
    call(ctx.probe_command)  # a fence: the parse error comes before it
    if ctx.qga:
        call("guest-sync-delimited", {"id": SYNC_ID})
    else:
        call("query-qmp-schema")
        if {"stop", "cont"} <= ctx.commands():
            call("stop")
            call("cont")
            call(ctx.probe_command)
    messages = list(session.received)
    session.close()
    return Workload(session, mark, messages)


def _body(ctx: Context, msg: Message) -> bytes:
    """The line without the guest agent's 0xFF sync sentinel (Q39)."""
    return msg.raw.lstrip(b"\xff") if ctx.qga else msg.raw


@check("framing.json-objects", "Q2,Q37", "every server line is one valid JSON object")
def json_objects(ctx: Context) -> str:
    """Judge every line the framing workload received: each must be one valid JSON object
    (Q2, Q37).  Raises :class:`Fail` with the first line that is not."""
    work = workload(ctx)
    for msg in work.messages:
        for rule, slug, what in msg.wire_problems(qga=ctx.qga):
            if slug in ("invalid-json", "event-inside-message", "not-object"):
                raise Fail(
                    f"the server sent a line that is not one JSON object: {what} ({rule})",
                    expected="one JSON object per line",
                    seen=msg.brief(),
                )
    return f"{len(work.messages)} lines, each one JSON object"


@check("framing.crlf", "Q2", "every server message is terminated by CRLF")
def crlf(ctx: Context) -> str:
    """Judge every line the framing workload received: each must end in CRLF and hold no
    other CR or LF (Q2); the guest agent's bare LF is a known deviation and accepted.
    Raises :class:`Fail` with the first line that breaks this."""
    work = workload(ctx)
    for msg in work.messages:
        # The guest agent ends lines with LF: docs/known-deviations.md.
        if any(slug == "no-crlf" for _r, slug, _w in msg.wire_problems(qga=ctx.qga)):
            raise Fail(
                "a server message is not terminated by CRLF (Q2)",
                expected="a line ending in \\r\\n",
                seen=msg.brief(),
            )
        body = msg.raw.removesuffix(b"\n").removesuffix(b"\r")
        if b"\r" in body or b"\n" in body:
            raise Fail(
                "a server message holds a raw CR or LF before its end (Q2)",
                expected="one message per line",
                seen=msg.brief(),
            )
    lf = sum(1 for m in work.messages if not m.raw.endswith(b"\r\n"))
    note = f" ({lf} end in LF only, accepted for the guest agent: see docs)" if lf else ""
    return f"{len(work.messages)} lines, each ending in CRLF{note}"


@check("framing.ascii", "Q1", "the server writes ASCII only, escaping the rest")
def ascii_only(ctx: Context) -> str:
    """Judge every line of the framing workload, which sent a non-ASCII id and arguments: no
    byte may be outside ASCII, and the non-ASCII id must come back, escaped (Q1).  Raises
    :class:`Fail` with the offending line, or when that id never came back."""
    work = workload(ctx)
    for msg in work.messages:
        if any(slug == "non-ascii" for _r, slug, _w in msg.wire_problems(qga=ctx.qga)):
            bad = next(b for b in _body(ctx, msg) if b >= 0x80)
            raise Fail(
                "the server sent a byte outside ASCII (Q1)",
                expected="non-ASCII characters escaped as \\uXXXX",
                seen=f"byte 0x{bad:02x} in {msg.brief()}",
            )
    echoed = [m for m in work.messages if m.ok and m.obj.get("id") == NON_ASCII_ID]
    if not echoed:
        raise Fail(
            "the non-ASCII id did not come back intact (Q1, Q15)",
            expected=f"a reply with id {NON_ASCII_ID!r}, escaped on the wire",
            seen="no such reply",
        )
    return f"{len(work.messages)} lines, all ASCII; non-ASCII input came back escaped"


@check(
    "framing.qga-sync",
    "Q39",
    "the guest agent prefixes guest-sync-delimited's reply with 0xFF",
    (QGA,),
)
def qga_sync(ctx: Context) -> str:
    """Judge the framing workload's ``guest-sync-delimited``: its reply must
    start with the 0xFF byte a client skips stale output up to, and return
    the number sent (Q39).  Raises :class:`Fail` when the reply is missing,
    lacks the byte, or returns another number."""
    work = workload(ctx)
    reply = next(
        (m for m in work.messages if m.ok and m.obj.get("return") == SYNC_ID),
        None,
    )
    if reply is None:
        raise Fail(
            "guest-sync-delimited did not return the number it was given (Q39)",
            expected=f'{{"return": {SYNC_ID}}}',
            seen=", ".join(m.brief(80) for m in work.messages[-3:]) or "nothing",
        )
    if not reply.sentinel:
        raise Fail(
            "guest-sync-delimited's reply does not start with 0xFF (Q39)",
            expected=f'\\xff{{"return": {SYNC_ID}}}',
            seen=reply.brief(),
        )
    return "the sync reply starts with 0xFF and returns the number sent"
