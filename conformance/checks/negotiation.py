"""Capabilities negotiation mode (Q10 to Q14, Q19)."""

from __future__ import annotations

from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.session import Message

NO_SUCH_COMMAND = "qc-no-such-command"
NO_SUCH_CAPABILITY = "qc-no-such-capability"


def _expect_class(msg: Message, cls: str, what: str, rule: str) -> None:
    if msg.error_class != cls:
        raise Fail(
            f"{what}: the server did not answer {cls} ({rule})",
            expected=f'{{"error": {{"class": "{cls}", ...}}}}',
            seen=msg.brief(),
        )


def _expect_return(msg: Message, what: str, rule: str) -> None:
    if not (msg.ok and "return" in msg.obj):
        raise Fail(f"{what} failed ({rule})", expected='{"return": ...}', seen=msg.brief())


@check(
    "negotiation.commands-refused",
    "Q10",
    "before qmp_capabilities, other commands get CommandNotFound",
    QMP_DIALECTS,
)
def commands_refused(ctx: Context) -> str:
    """On a fresh session still negotiating, send the probe command and an unknown one: both
    must get CommandNotFound (Q10), and ``qmp_capabilities`` must then open command mode
    (Q12).  Raises :class:`Fail` with the reply that breaks this."""
    session = ctx.open(negotiate=False)
    _expect_class(
        ctx.call(session, ctx.probe_command),
        "CommandNotFound",
        f"{ctx.probe_command} before negotiation",
        "Q10",
    )
    _expect_class(
        ctx.call(session, NO_SUCH_COMMAND),
        "CommandNotFound",
        "an unknown command before negotiation",
        "Q10",
    )
    _expect_return(ctx.call(session, "qmp_capabilities"), "qmp_capabilities afterwards", "Q12")
    _expect_return(
        ctx.call(session, ctx.probe_command), f"{ctx.probe_command} after negotiation", "Q12"
    )
    return "commands refused with CommandNotFound until qmp_capabilities"


@check(
    "negotiation.no-events-before",
    "Q11",
    "a connection still negotiating receives no events",
    QMP_DIALECTS,
)
def no_events_before(ctx: Context) -> str:
    """Make a negotiated session receive events (``stop``, ``cont``) while a second one is
    still negotiating: the second must receive none (Q11).  Raises :class:`Fail` with the
    leaked event, and :class:`Skip` when the target cannot serve two sessions at once,
    lacks ``stop`` or ``cont``, or emits no event."""
    if ctx.target.restarts:
        raise Skip("a spawned target has one stdio monitor: no second connection")
    ctx.require_command("stop")
    ctx.require_command("cont")
    a = ctx.open(negotiate=True)
    try:
        b = ctx.open(negotiate=False, keep_shared=True, greeting_timeout=0.5)
    except Fail:
        raise Skip(
            "the target serves one client at a time (a second connection got no "
            "greeting while the first was open): no second session to watch"
        ) from None
    ctx.call(a, "stop")
    ctx.call(a, "cont")
    if not a.events:
        raise Skip("stop/cont emitted no event on the negotiated session")
    leaked = [m for m in b.collect(quiet=0.3, timeout=1.0) if m.is_event]
    if leaked:
        raise Fail(
            "a connection in negotiation mode received an event (Q11)",
            expected="no events before qmp_capabilities",
            seen=leaked[0].brief(),
        )
    _expect_return(ctx.call(b, "qmp_capabilities"), "qmp_capabilities on the second session", "Q12")
    return f"{len(a.events)} event(s) on the negotiated session, none on the other"


@check(
    "negotiation.repeat-refused",
    "Q12",
    "a second qmp_capabilities fails once in command mode",
    QMP_DIALECTS,
)
def repeat_refused(ctx: Context) -> str:
    """Send ``qmp_capabilities`` again on a negotiated session: it must fail and leave the
    session in command mode (Q12).  Raises :class:`Fail` with the reply when not."""
    session = ctx.open(negotiate=True)
    again = ctx.call(session, "qmp_capabilities")
    if not again.is_error:
        raise Fail(
            "a repeated qmp_capabilities succeeded (Q12)",
            expected="an error (QEMU: CommandNotFound)",
            seen=again.brief(),
        )
    _expect_return(ctx.call(session, ctx.probe_command), "a command afterwards", "Q12")
    return f"repeat refused with {again.error_class}; session still in command mode"


@check(
    "negotiation.unknown-capability",
    "Q14",
    "enabling an unknown capability fails and leaves negotiation open",
    QMP_DIALECTS,
)
def unknown_capability(ctx: Context) -> str:
    """Ask ``qmp_capabilities`` to enable a capability no server offers: it must fail and
    leave the session negotiating, so that a plain ``qmp_capabilities`` then succeeds
    (Q14, Q10, Q12).  Raises :class:`Fail` with the reply that breaks this."""
    session = ctx.open(negotiate=False)
    bad = ctx.call(session, "qmp_capabilities", {"enable": [NO_SUCH_CAPABILITY]})
    if not bad.is_error:
        raise Fail(
            "enabling an unknown capability succeeded (Q14)", expected="an error", seen=bad.brief()
        )
    _expect_class(
        ctx.call(session, ctx.probe_command),
        "CommandNotFound",
        "a command after the failed negotiation (still negotiating)",
        "Q10,Q14",
    )
    _expect_return(ctx.call(session, "qmp_capabilities"), "a plain qmp_capabilities", "Q12")
    _expect_return(ctx.call(session, ctx.probe_command), "a command after negotiation", "Q12")
    return "unknown capability refused; negotiation stayed open and then succeeded"


@check(
    "negotiation.enable-offered",
    "Q12,Q13,Q19",
    "enabling every offered capability returns {} and opens command mode",
    QMP_DIALECTS,
)
def enable_offered(ctx: Context) -> str:
    """Enable exactly the capabilities the greeting offers: ``qmp_capabilities`` must return
    ``{}`` and commands must work afterwards (Q12, Q13, Q19).  Raises :class:`Fail` with
    the reply when not."""
    session = ctx.open(negotiate=False)
    caps = session.capabilities
    reply = ctx.call(session, "qmp_capabilities", {"enable": caps})
    if not (reply.ok and reply.obj.get("return") == {}):
        raise Fail(
            "qmp_capabilities with the offered capabilities did not return {} (Q12, Q19)",
            expected='{"return": {}}',
            seen=reply.brief(),
        )
    _expect_return(ctx.call(session, ctx.probe_command), "a command after negotiation", "Q12")
    return f"enabled {caps}"
