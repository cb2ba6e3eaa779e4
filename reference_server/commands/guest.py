"""The guest agent dialect's commands (qemu-ga 7.2 behaviour)."""

from __future__ import annotations

from typing import Any

from reference_server.commands import CommandContext, command

GUEST_AGENT_VERSION = "7.2.22"


@command("guest-sync")
async def guest_sync(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``guest-sync``: ``id`` echoed back, so a client knows which reply is the fresh one."""
    return args["id"]


@command("guest-sync-delimited")
async def guest_sync_delimited(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``guest-sync-delimited``: ``id`` echoed back, as ``guest-sync`` does."""
    # The 0xFF sentinel before the reply is the dialect's framing, not ours.
    return args["id"]


@command("guest-ping")
async def guest_ping(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``guest-ping``: an empty success, which shows the agent is alive."""
    return None


@command("guest-info")
async def guest_info(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``guest-info``: the agent's version and every command it serves, all enabled."""
    return {
        "version": GUEST_AGENT_VERSION,
        "supported_commands": [
            {
                "enabled": True,
                "name": name,
                "success-response": ctx.schema.commands[name].success_response,
            }
            for name in ctx.command_names
        ],
    }


@command("guest-shutdown")
async def guest_shutdown(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``guest-shutdown``: no reply; the connection closes, as when the guest goes down."""
    # success-response: false, so the dispatcher sends nothing back; the
    # guest "going away" is the connection closing.
    ctx.session.close_after_reply()
