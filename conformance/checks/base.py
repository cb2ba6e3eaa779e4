"""What a check is: a stable id, the rule it enforces, and a function.

A check function takes the run's :class:`~conformance.checks.context.Context`
and returns a short pass message; it raises :class:`Fail` (the target broke
the rule: say what was expected and what was seen) or :class:`Skip` (the
check does not apply to this target: say why).  The runner adds the
transcript of every session the check used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conformance.protocol.dialects import DIALECTS, Dialect

if TYPE_CHECKING:
    from conformance.checks.context import Context

CheckFunction = Callable[["Context"], str]


class Fail(Exception):
    """The target broke the check's rule."""

    def __init__(self, message: str, *, expected: str = "", seen: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.seen = seen

    def text(self) -> str:
        """The message followed by its expected and seen lines: the verdict's text."""
        parts = [self.message]
        if self.expected:
            parts.append(f"expected: {self.expected}")
        if self.seen:
            parts.append(f"seen: {self.seen}")
        return "\n".join(parts)


class Skip(Exception):
    """The check does not apply to this target; the message says why."""


@dataclass(frozen=True)
class Check:
    """One entry of the catalogue."""

    id: str
    rule: str
    title: str
    function: CheckFunction
    #: Dialects the check applies to; others are skipped with the reason.
    dialects: tuple[Dialect, ...] = tuple(DIALECTS.values())
    #: Whether it talks to the target; one that only judges what the run
    #: already received still runs after the target is gone.
    needs_target: bool = True

    def __call__(self, ctx: Context) -> str:
        """Run the check on ``ctx``; its pass message.  :class:`Fail` and :class:`Skip` raised by
        the function pass through for the runner to judge."""
        return self.function(ctx)


REGISTRY: dict[str, Check] = {}


def check(
    id: str,
    rule: str,
    title: str,
    dialects: tuple[Dialect, ...] | None = None,
    *,
    needs_target: bool = True,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as check ``id`` enforcing ``rule``.  Raises
    :class:`ValueError`, when the function is decorated, if ``id`` is already taken."""

    def register(function: CheckFunction) -> CheckFunction:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        kwargs: dict[str, Any] = {"needs_target": needs_target}
        if dialects is not None:
            kwargs["dialects"] = dialects
        REGISTRY[id] = Check(id, rule, title, function, **kwargs)
        return function

    return register
