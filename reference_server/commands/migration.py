"""OOB-capable migration and yank commands (answers of an idle QEMU 7.2)."""

from __future__ import annotations

from typing import Any

from reference_server.commands import CommandContext, command
from reference_server.errors import QMPError

#: The one yank instance a QEMU with a single -qmp monitor lists.
MONITOR_CHARDEV = {"type": "chardev", "id": "compat_monitor0"}


@command("migrate-pause")
async def migrate_pause(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``migrate-pause``: always GenericError, as no migration ever runs here."""
    raise QMPError("migrate-pause is currently only supported during postcopy-active state")


@command("migrate-recover")
async def migrate_recover(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``migrate-recover``: always GenericError, as no migration is ever paused here."""
    raise QMPError("Migrate recover can only be run when postcopy is paused.")


@command("query-yank")
async def query_yank(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-yank``: the one yank instance there is, the monitor's chardev."""
    return [dict(MONITOR_CHARDEV)]


@command("yank")
async def yank(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``yank``: succeed, doing nothing, when every instance is the monitor's chardev.

    Answers DeviceNotFound when any instance is another one.
    """
    # Check every instance first: yank does all or nothing.
    for instance in args["instances"]:
        if instance != MONITOR_CHARDEV:
            raise QMPError("Instance not found", "DeviceNotFound")
