"""Monitor control: negotiation, version, command list, schema, misc queries."""

from __future__ import annotations

import json
from typing import Any

from reference_server.commands import CommandContext, command
from reference_server.errors import QMPError


@command("query-version")
async def query_version(ctx: CommandContext, args: dict[str, Any]) -> Any:
    return json.loads(json.dumps(ctx.version))


@command("query-commands")
async def query_commands(ctx: CommandContext, args: dict[str, Any]) -> Any:
    return [{"name": name} for name in ctx.command_names]


@command("query-qmp-schema")
async def query_qmp_schema(ctx: CommandContext, args: dict[str, Any]) -> Any:
    return ctx.introspection


@command("query-name")
async def query_name(ctx: CommandContext, args: dict[str, Any]) -> Any:
    return {} if ctx.machine.name is None else {"name": ctx.machine.name}


@command("device_add")
async def device_add(ctx: CommandContext, args: dict[str, Any]) -> None:
    # gen: false: nothing checked the arguments, so read them as QEMU's handler does.
    if "driver" not in args:
        raise QMPError("Parameter 'driver' is missing")
    driver = args["driver"]
    text = driver if isinstance(driver, str) else json.dumps(driver)
    raise QMPError(f"'{text}' is not a valid device model name")


@command("human-monitor-command")
async def human_monitor_command(ctx: CommandContext, args: dict[str, Any]) -> Any:
    line = str(args["command-line"]).strip()
    if line == "info version":
        triple = ctx.version["qemu"]
        return f"{triple['major']}.{triple['minor']}.{triple['micro']}{ctx.version['package']}\r\n"
    if not line:
        return ""
    return f"unknown command: '{line.split()[0]}'\r\n"


@command("quit")
async def quit_(ctx: CommandContext, args: dict[str, Any]) -> None:
    ctx.machine.events.emit("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
    ctx.machine.quit_requested.set()
    ctx.session.close_after_reply()
