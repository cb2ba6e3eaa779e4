"""Command implementations, one module per area, registered by name.

A handler gets a :class:`CommandContext` and the already checked arguments
and returns the ``return`` value (``None`` for ``{}``), or raises
:class:`~reference_server.errors.QMPError`.  Handlers are coroutines because
some block (``blockdev-add`` of a blkdebug node waiting on its config FIFO)
and the in-band queue must wait for them, as QEMU's main loop does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from conformance.qapi.model import Schema
    from reference_server.machine import Machine
    from reference_server.synth import Synthesizer


class Session(Protocol):
    """What a handler may ask of the monitor that received the command."""

    def close_after_reply(self) -> None:
        """Close the connection once the reply to the running command is written."""


@dataclass
class CommandContext:
    """What a handler sees: the machine, the schema, the asking monitor, what is announced."""

    machine: Machine
    schema: Schema
    session: Session
    introspection: list[dict[str, Any]]
    #: Commands this dialect serves, in schema order (for query-commands, guest-info).
    command_names: list[str]
    #: What the greeting announces; query-version must say the same (Q8).
    version: dict[str, Any]
    #: Smallest valid values of the schema's types, for members a model leaves open.
    synth: Synthesizer


Handler = Callable[[CommandContext, dict[str, Any]], Awaitable[Any]]

HANDLERS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of ``name``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def load_all() -> dict[str, Handler]:
    """Import every handler module (registration is an import side effect)."""
    from reference_server.commands import (  # noqa: F401
        block,
        control,
        guest,
        jobs,
        migration,
        runstate,
    )

    return HANDLERS
