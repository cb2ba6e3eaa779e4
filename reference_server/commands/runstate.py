"""Run state of the imaginary guest: stop, cont, reset, powerdown."""

from __future__ import annotations

from typing import Any

from reference_server.commands import CommandContext, command


@command("query-status")
async def query_status(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-status``: the guest's run state, and whether it is running."""
    state = ctx.machine.run_state
    return {"status": state, "singlestep": False, "running": state == "running"}


@command("stop")
async def stop(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``stop``: pause a running guest and emit STOP; a stopped one stays as it is."""
    if ctx.machine.run_state == "running":
        ctx.machine.run_state = "paused"
        ctx.machine.events.emit("STOP")


@command("cont")
async def cont(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``cont``: resume a stopped guest and emit RESUME; a running one stays as it is."""
    if ctx.machine.run_state != "running":
        ctx.machine.run_state = "running"
        ctx.machine.events.emit("RESUME")


@command("system_reset")
async def system_reset(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``system_reset``: emit RESET; the run state does not change."""
    ctx.machine.events.emit("RESET", {"guest": False, "reason": "host-qmp-system-reset"})


@command("system_powerdown")
async def system_powerdown(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``system_powerdown``: emit POWERDOWN; the imaginary guest takes no notice."""
    ctx.machine.events.emit("POWERDOWN")
