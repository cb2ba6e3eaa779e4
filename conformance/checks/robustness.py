"""Robustness: malformed input gets errors, never silence or a dead server,
and a control byte brings a stuck parser back (Q32, Q37).

Each input is followed by a probe command used as a fence: the server handles
input in order, so everything before the probe's reply belongs to the input,
and no quiet-time guessing is needed.
"""

from __future__ import annotations

import random

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.session import Session


def malformed_inputs(probe: str) -> list[bytes]:
    """The malformed inputs of QEMU's qmp-test and of the notes (section 5);
    each must give at least one GenericError and leave the parser ready."""
    return [
        b"{]",
        b"{\xff",
        b"{\x01",
        b"{'bad \xff",
        b'"unterminated\n',
        b"%p",
        b"null",
        b"[1, 2, 3]",
        b"42",
        b"{}",
        b"hello world\n",
        b'{"execute": true}',
        b'{"execute": "' + probe.encode() + b'", "arguments": []}',
        b'{"execute": "' + probe.encode() + b'", "extra": 1}',
        b'{"execute": "' + probe.encode() + b'",}',
        b'{"execute": "' + probe.encode() + b'", "execute": "x"}',
        b'{"execute": "\\x41"}',
        b'{"execute": "\\ud800"}',
        b"\x00",
        b"]",
    ]


@check(
    "robustness.malformed",
    "Q32,Q37,Q20",
    "each malformed input gets GenericError and the server keeps answering",
)
def malformed(ctx: Context) -> str:
    """Send each of :func:`malformed_inputs`, fenced by a probe: each must get at least one
    GenericError and nothing else, and the server must keep answering (Q32, Q37, Q20).
    Raises :class:`Fail` with the input and the reply that broke this."""
    session = ctx.shared()
    inputs = malformed_inputs(ctx.probe_command)
    for raw in inputs:
        replies = ctx.fenced(session, raw, "malformed input")
        if not replies or any(m.error_class != "GenericError" for m in replies):
            wrong = next((m for m in replies if m.error_class != "GenericError"), None)
            raise Fail(
                f"malformed input {raw!r} was not answered with GenericError",
                expected="at least one GenericError error response, nothing else",
                seen=wrong.brief() if wrong else "no reply before the next command's",
            )
    return f"{len(inputs)} malformed inputs refused; the server kept answering"


def _resync(ctx: Context, stuck: bytes, what: str, session: Session | None = None) -> str:
    session = session or ctx.shared()
    session.send_raw(stuck)
    replies = ctx.fenced(
        session, b"\x01", f"{what} and the control byte \\x01 meant to bring the parser back"
    )
    leftovers = [m for m in replies if not m.is_error]
    if leftovers:
        raise Fail(
            f"after {what}, the server answered something other than errors",
            expected="error responses only",
            seen=leftovers[0].brief(),
        )
    return f"after {what}, \\x01 brought the parser back"


@check("robustness.unterminated", "Q32", "\\x01 resets the parser after an unterminated object")
def unterminated(ctx: Context) -> str:
    """Leave a request object unterminated, then send the control byte 0x01: the parser must
    recover, with only errors before the next probe's reply (Q32).  Raises :class:`Fail`
    when the server answers anything else or stops answering."""
    return _resync(ctx, f'{{"execute": "{ctx.probe_command}"'.encode(), "an unterminated object")


@check("robustness.nesting-limit", "Q32", "\\x01 resets the parser after the nesting limit")
def nesting_limit(ctx: Context) -> str:
    """Open 1100 arrays inside an id, past the nesting limit of 1024, then send 0x01: the
    parser must recover, with only errors before the next probe's reply (Q32).  Raises
    :class:`Fail` when the server answers anything else or stops answering."""
    stuck = f'{{"execute": "{ctx.probe_command}", "id": '.encode() + b"[" * 1100
    return _resync(ctx, stuck, "1100 unclosed arrays (past the 1024 nesting limit)")


@check("robustness.garbage", "Q32,Q37", "the server survives random bytes and recovers on \\x01")
def garbage(ctx: Context) -> str:
    """Send 2 KiB of seeded random bytes on a session negotiated without oob, then 0x01: the
    server must survive and recover, with only errors before the next probe's reply (Q32,
    Q37).  Raises :class:`Fail` when it answers anything else or stops answering."""
    rng = random.Random(20180829)
    noise = bytes(rng.randrange(256) for _ in range(2048))
    # Without oob: the error flood with oob on is robustness.error-flood's subject.
    session = ctx.open(negotiate=())
    return _resync(ctx, noise, "2 KiB of random bytes", session)


@check(
    "robustness.error-flood",
    "Q32,Q25",
    "a burst of input errors (with oob on, when offered) does not kill the server",
)
def error_flood(ctx: Context) -> str:
    """On the shared session (oob on when offered), send a burst of 4000 input errors, then
    0x01: the server must survive the flood of error replies and recover (Q32, Q25).
    Raises :class:`Fail` when it answers anything else or stops answering."""
    # Each "1]" is two errors (a non-object, a stray bracket): far more queued
    # error responses than the in-band queue holds.  Last of the checks that talk
    # to the target, as a server that dies here takes a unix target down for
    # good (the passive checks after it only read what the run received).
    return _resync(ctx, b"1]" * 2000, "a burst of 4000 input errors")
