"""Monitor control: negotiation, version, command list, schema, misc queries."""

from __future__ import annotations

import json
import shlex
from typing import Any

from reference_server.commands import CommandContext, command
from reference_server.commands.block import qemu_io_read
from reference_server.errors import QMPError
from reference_server.refusals import IDENTIFIER


@command("query-version")
async def query_version(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-version``: a copy of the version the greeting announced."""
    # A copy: an outgoing rewrite (a seeded defect) must not change the original.
    return {**ctx.version, "qemu": dict(ctx.version["qemu"])}


@command("query-commands")
async def query_commands(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-commands``: every command the server handles in this dialect."""
    return [{"name": name} for name in ctx.command_names]


@command("query-qmp-schema")
async def query_qmp_schema(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-qmp-schema``: the introspection of the served schema."""
    return ctx.introspection


@command("query-name")
async def query_name(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-name``: the machine's name, or an empty object as none is set here."""
    return {} if ctx.machine.name is None else {"name": ctx.machine.name}


@command("device_add")
async def device_add(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``device_add``: always fails, as this server models no device at all.

    The schema does not check its arguments (``gen: false``), so it reads them
    itself.  Answers GenericError: ``driver`` is missing, ``id`` is no
    identifier, or ``driver`` is no device model.
    """
    # gen: false: nothing checked the arguments, so read them as QEMU's handler does.
    if "driver" not in args:
        raise QMPError("Parameter 'driver' is missing")
    if "id" in args and not IDENTIFIER.match(str(args["id"])):
        raise QMPError("Parameter 'id' expects an identifier")
    driver = args["driver"]
    text = driver if isinstance(driver, str) else json.dumps(driver)
    raise QMPError(f"'{text}' is not a valid device model name")


@command("human-monitor-command")
async def human_monitor_command(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``human-monitor-command``: the text an HMP line prints.

    Known: ``info version``, and ``qemu-io NODE "read [-q] OFFSET LENGTH"`` (how
    a throttled event is triggered, see ``block.qemu_io_read``); an empty line
    prints nothing, anything else an unknown-command message (output, not an
    error reply).
    """
    line = str(args["command-line"]).strip()
    words = _hmp_words(line)
    if words[:1] == ["qemu-io"]:
        return _qemu_io(ctx, words[1:])
    if line == "info version":
        triple = ctx.version["qemu"]
        return f"{triple['major']}.{triple['minor']}.{triple['micro']}{ctx.version['package']}\r\n"
    if not line:
        return ""
    return f"unknown command: '{line.split()[0]}'\r\n"


def _hmp_words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _qemu_io(ctx: CommandContext, words: list[str]) -> str:
    if len(words) != 2:
        return 'Usage: qemu-io [-d] [device] "[command]"\r\n'
    name, command = words
    parts = [p for p in command.split() if p != "-q"]  # quiet: QEMU prints nothing more
    if len(parts) != 3 or parts[0] != "read" or not all(p.isdigit() for p in parts[1:]):
        return f"qemu-io: only 'read [-q] OFFSET LENGTH' is modelled, not {command!r}\r\n"
    return qemu_io_read(ctx.machine, name, int(parts[1]), int(parts[2]))


@command("quit")
async def quit_(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``quit``: emit SHUTDOWN, then close this connection after the reply and stop the server."""
    ctx.machine.events.emit("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
    ctx.machine.quit_requested.set()
    ctx.session.close_after_reply()
