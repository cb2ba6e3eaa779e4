"""Out-of-band execution (Q23, Q25, Q27, Q28).

Overtaking needs an in-band command that blocks on demand.  The recipe from
QEMU's own qmp-test works on real QEMU and on the reference server:
``blockdev-add`` of a ``blkdebug`` node whose ``config`` is a FIFO blocks in
``open()`` until someone opens the FIFO for writing, which we do to release it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import shutil
import time
from typing import Any

from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.protocol.messages import MISSING
from conformance.protocol.values import as_object
from conformance.session import Message, Session, json_equal
from conformance.transport import fifo_path

#: allow-oob commands that are harmless to run, with their arguments.
HARMLESS_OOB: list[tuple[str, dict[str, Any] | None]] = [
    ("yank", {"instances": []}),
    ("query-yank", None),
    ("migrate-pause", None),
]
HOLD = 1.0  # how long a blocked server gets to show (or not) an OOB reply
QUEUED = 12  # more than QEMU's in-band queue of 8 (Q25, Q26)
_nodes = itertools.count(1)


def _oob_command(ctx: Context) -> tuple[str, dict[str, Any] | None]:
    schema = ctx.require_schema()
    for name, args in HARMLESS_OOB:
        cmd = schema.commands.get(name)
        if cmd is not None and cmd.allow_oob:
            return name, args
    raise Skip(
        "the target's schema has no harmless allow-oob command (qemu-storage-daemon has none)"
    )


def _oob_session(ctx: Context) -> Session:
    if ctx.dialect.oob_style != "exec-oob":
        raise Skip(f"exec-oob belongs to the qemu dialect, not {ctx.dialect}")
    session = ctx.shared()
    if "oob" not in session.capabilities:
        raise Skip("the greeting does not offer the oob capability")
    return session


class Blocker:
    """A blkdebug node whose FIFO config holds the in-band queue until released.
    Construction raises :class:`Skip` when the target lacks ``blockdev-add`` or does
    not run on this host (the FIFO must be shared)."""

    def __init__(self, ctx: Context) -> None:
        ctx.require_command("blockdev-add")
        if not ctx.target.local:
            raise Skip("the FIFO blocker needs a target on this host")
        self.fifo = fifo_path()
        self.node = f"qc-blocker-{os.getpid()}-{next(_nodes)}"
        self.released = False

    def request(self, ident: str) -> bytes:
        """The ``blockdev-add`` request, with id ``ident``, that blocks until :meth:`release`."""
        return json.dumps(
            {
                "execute": "blockdev-add",
                "id": ident,
                "arguments": {
                    "driver": "blkdebug",
                    "node-name": self.node,
                    "config": self.fifo,
                    "image": {"driver": "null-co", "read-zeroes": True},
                },
            }
        ).encode()

    def release(self, timeout: float = 3.0) -> bool:
        """Open the FIFO for writing once the server has it open for reading."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    return False
                time.sleep(0.005)
                continue
            os.close(fd)
            self.released = True
            return True
        return False

    def cleanup(self, ctx: Context, session: Session) -> None:
        """Release the FIFO if still held, delete the node and remove the FIFO; a blocker that
        could not be released takes the shared session with it (the server may be stuck)."""
        if not self.released:
            self.release(0.5)
        if self.released and not session.closed:
            with contextlib.suppress(Exception):
                session.execute("blockdev-del", {"node-name": self.node}, timeout=ctx.reply_timeout)
        if not self.released:
            ctx.discard()  # the server may still be stuck in open()
        shutil.rmtree(os.path.dirname(self.fifo), ignore_errors=True)


def _watch(session: Session, ids: list[str], seconds: float) -> list[Message]:
    """Messages that arrive within ``seconds``, stopping once one of ``ids`` came."""
    out: list[Message] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        msg = session.recv(left)
        if msg is None:
            break
        out.append(msg)
        if any(msg.id is not MISSING and json_equal(msg.id, i) for i in ids):
            break
    return out


def _has(msgs: list[Message], ident: str) -> Message | None:
    return next((m for m in msgs if m.id is not MISSING and json_equal(m.id, ident)), None)


def _blocker_refused(held: Message) -> Skip:
    if held.is_error:
        return Skip(f"the blkdebug FIFO blocker was refused: {held.desc}")
    return Skip("blockdev-add with the blkdebug FIFO returned without blocking")


@check("oob.unnegotiated", "Q28", "exec-oob is refused when oob was not negotiated")
def unnegotiated(ctx: Context) -> str:
    """Send ``exec-oob`` on a session negotiated without the oob capability, for an allow-oob
    command that would otherwise succeed: it must be refused and the session must keep
    answering (Q28, Q32).  Raises :class:`Fail` with the reply when not."""
    if ctx.qga:
        session = ctx.shared()
        name = ctx.probe_command
    else:
        session = ctx.open(negotiate=())
        schema = ctx.schema()
        # An allow-oob command that would succeed if run, so only the refusal of
        # exec-oob itself can make it fail.
        name = next(
            (
                n
                for n, _ in HARMLESS_OOB
                if schema and n in schema.commands and schema.commands[n].allow_oob
            ),
            ctx.probe_command,
        )
    args = dict(HARMLESS_OOB).get(name)
    session.send(session.request(name, args, id="oob-off", oob=True))
    reply = session.expect_reply(ctx.reply_timeout)
    if reply is None or not reply.is_error:
        raise Fail(
            "exec-oob was accepted without the oob capability negotiated (Q28)",
            expected="an error (QEMU: QMP input member 'exec-oob' is unexpected)",
            seen=reply.brief() if reply else "no reply",
        )
    if ctx.probe(session) is None:
        raise Fail(
            "the session stopped answering after a refused exec-oob (Q32)",
            expected="a reply",
            seen="none",
        )
    return f"exec-oob {name} refused: {reply.desc}"


@check("oob.not-allowed", "Q27", "exec-oob is refused for commands without allow-oob", QMP_DIALECTS)
def not_allowed(ctx: Context) -> str:
    """With oob negotiated, send ``exec-oob`` of a command without allow-oob: it must be
    refused (Q27).  Raises :class:`Fail` with the reply when it runs, and :class:`Skip`
    when the target has no schema, offers no oob, or has no such command to try."""
    session = _oob_session(ctx)
    schema = ctx.require_schema()
    name = next(
        (
            n
            for n in (ctx.probe_command, "query-commands", "qmp_capabilities")
            if n in schema.commands and not schema.commands[n].allow_oob
        ),
        None,
    )
    if name is None:
        raise Skip("no command without allow-oob to try")
    reply = ctx.call(session, name, oob=True)
    if not reply.is_error:
        raise Fail(
            f"exec-oob of {name}, which lacks allow-oob, was run (Q27)",
            expected="an error (QEMU: The command ... does not support OOB)",
            seen=reply.brief(),
        )
    return f"exec-oob {name} refused: {reply.desc}"


@check(
    "oob.overtake", "Q23", "an exec-oob command overtakes a blocked in-band command", QMP_DIALECTS
)
def overtake(ctx: Context) -> str:
    """Block the in-band queue with a :class:`Blocker`, queue the probe behind it, then send
    a harmless allow-oob command with ``exec-oob``: its reply must come while the queue is
    blocked (Q23), and the in-band replies in order once released (Q22).  Raises
    :class:`Fail` with what came instead, and :class:`Skip` when oob, a harmless allow-oob
    command or the blocker is not available."""
    session = _oob_session(ctx)
    oob_name, oob_args = _oob_command(ctx)
    blocker = Blocker(ctx)
    try:
        session.send_raw(blocker.request("ib-blocks"))
        session.send(session.request(ctx.probe_command, id="ib-quick"))
        session.send(session.request(oob_name, oob_args, id="oob-1", oob=True))
        early = _watch(session, ["oob-1", "ib-blocks"], HOLD)
        held = _has(early, "ib-blocks")
        if held is not None:
            raise _blocker_refused(held)
        if _has(early, "oob-1") is None:
            blocker.release()
            late = session.collect(quiet=0.3, timeout=ctx.reply_timeout, until=3)
            seen = ", ".join(m.brief(80) for m in late) or "nothing"
            raise Fail(
                "the exec-oob command did not overtake the blocked in-band command (Q23)",
                expected=f"the reply to oob-1 within {HOLD:g} s, before ib-blocks",
                seen=f"nothing for {HOLD:g} s; after releasing the blocker: {seen}",
            )
        blocker.release()
        rest = session.collect(quiet=0.5, timeout=ctx.reply_timeout, until=2)
        order = [m.id for m in rest if not m.is_event]
        if order[:2] != ["ib-blocks", "ib-quick"]:
            raise Fail(
                "the in-band replies did not follow in order once unblocked (Q22)",
                expected="ib-blocks, ib-quick",
                seen=json.dumps([str(i) for i in order]),
            )
        return f"exec-oob {oob_name} answered while blockdev-add was blocked"
    finally:
        blocker.cleanup(ctx, session)


@check(
    "oob.queue-limit",
    "Q25",
    "the server stops reading when the in-band queue is full",
    QMP_DIALECTS,
)
def queue_limit(ctx: Context) -> str:
    """Queue :data:`QUEUED` in-band commands behind a blocked one, then send an ``exec-oob``
    command: with the queue full the server must stop reading, so that command gets no
    reply while blocked, and once released every command is answered or reported dropped
    (Q25, Q16).  Raises :class:`Fail` with what went wrong, and :class:`Skip` as
    :func:`overtake` does."""
    session = _oob_session(ctx)
    oob_name, oob_args = _oob_command(ctx)
    blocker = Blocker(ctx)
    queued = [f"qb-{i}" for i in range(QUEUED)]
    try:
        session.send_raw(
            blocker.request("qb-blocks")
            + b"".join(
                json.dumps(session.request(ctx.probe_command, id=i)).encode() for i in queued
            )
        )
        session.send(session.request(oob_name, oob_args, id="qb-oob", oob=True))
        early = _watch(session, ["qb-oob", "qb-blocks"], HOLD)
        held = _has(early, "qb-blocks")
        if held is not None:
            raise _blocker_refused(held)
        if _has(early, "qb-oob") is not None:
            raise Fail(
                f"with {QUEUED} in-band commands queued behind a blocked one, the server "
                "still read and ran an exec-oob command: it did not stop reading (Q25)",
                expected="no reply to qb-oob until the blocker is released",
                seen=f"qb-oob answered within {HOLD:g} s while blocked",
            )
        blocker.release()
        rest = session.collect(quiet=0.5, timeout=ctx.reply_timeout, until=QUEUED + 2)
        dropped = {
            json.dumps(as_object(m.obj.get("data")).get("id"))
            for m in rest
            if m.is_event and m.obj.get("event") == "COMMAND_DROPPED"
        }
        answered = [m.id for m in rest if not m.is_event]
        missing = [i for i in queued if i not in answered and json.dumps(i) not in dropped]
        if missing or _has(rest, "qb-oob") is None:
            raise Fail(
                "after the blocker was released, queued commands went unanswered (Q16)",
                expected=f"replies to {queued[0]}..{queued[-1]} and qb-oob",
                seen=f"missing {missing or ['qb-oob']}",
            )
        return f"reading stopped with {QUEUED} queued; all answered once released"
    finally:
        blocker.cleanup(ctx, session)
