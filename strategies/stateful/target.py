"""How a machine reaches its target: a factory of greeted sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from conformance.session import Session

#: Returns a new session whose greeting has been read (not negotiated).
Connect = Callable[[], Session]

M = TypeVar("M")


def bind(machine: type[M], connect: Connect, **attributes: Any) -> type[M]:
    """A subclass of ``machine`` that talks to the target ``connect`` opens."""
    return type(machine.__name__, (machine,), {"connect": staticmethod(connect), **attributes})
