"""How a machine reaches its target, what it records, and how it says what broke.

Every machine runs on one connection that ``connect`` opens, records each rule
it runs in its ``journal`` (so a failing run can be stored and replayed step
by step, see :func:`step`), and reports a rule the target broke as
:class:`Broken`, naming the rule: a job rule (J1-J8,
:data:`conformance.protocol.jobs.JOB_RULES`) or a Q-number of the QMP
checklist.  What the target refuses to set up (a node, a job) is
:class:`Refused`: the machine cannot go on, but no rule is broken.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from hypothesis.stateful import RuleBasedStateMachine

from conformance.protocol.jobs import JOB_RULES
from conformance.session import Message, Session

#: Returns a new session whose greeting has been read (not negotiated).
Connect = Callable[[], Session]

M = TypeVar("M")
F = TypeVar("F", bound=Callable[..., Any])


class Broken(AssertionError):
    """The target broke ``rule`` (a job rule J1-J8 or a Q-number): ``slug`` names
    the failure, ``key`` tells apart failures with one slug (an illegal
    transition's statuses), ``detail`` says what happened."""

    def __init__(self, rule: str, slug: str, detail: str, key: tuple[str, ...] = ()) -> None:
        if rule not in JOB_RULES and not rule.startswith("Q"):
            raise ValueError(f"no such rule {rule!r}")
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.slug = slug
        self.detail = detail
        self.key = key


class Refused(Exception):
    """The target refused something a machine needs to set up (no rule broken)."""


def wire_broken(reply: Message) -> Broken | None:
    """What a line that answers a machine's request breaks (not JSON, not an
    object: the wire rules of :meth:`Message.wire_problems`), or None when it
    is a JSON object."""
    if reply.ok:
        return None
    rule, slug, what = reply.wire_problem() or ("Q37", "invalid-json", "not a JSON object")
    return Broken(rule, slug, f"{what}: {reply.brief()}")


class TargetMachine(RuleBasedStateMachine):
    """A machine on one connection to its target, with a journal of the rules it ran.

    Construction opens the connection with ``connect`` (whatever it raises:
    :class:`Broken`, ``ConnectionClosed``...).
    """

    connect: Connect
    #: Commands the machine sends: a target without one of them cannot run it.
    requires: tuple[str, ...] = ()
    #: Capabilities the greeting must offer for the machine's model to hold.
    offers: tuple[str, ...] = ()
    #: Seconds a request may wait for its reply before the target counts as hung.
    reply_timeout: float = 10.0

    def __init__(self) -> None:
        super().__init__()
        #: One entry per rule run: ``{"step": NAME, "args": {...}, "returns": VALUE}``.
        self.journal: list[dict[str, Any]] = []
        self.session: Session = type(self).connect()


def step(function: F) -> F:
    """Record each call of the rule ``function`` in the machine's journal (before
    it runs, so a failing step is in it too), with the value it returns when it
    returns one (a bundle's value: a replay maps it to the value its own run
    returns)."""

    @functools.wraps(function)
    def recorded(self: TargetMachine, **arguments: Any) -> Any:
        entry: dict[str, Any] = {"step": function.__name__, "args": dict(arguments)}
        self.journal.append(entry)
        result = function(self, **arguments)
        if result is not None:
            entry["returns"] = result
        return result

    return cast(F, recorded)


def bind(machine: type[M], connect: Connect, **attributes: Any) -> type[M]:
    """A subclass of ``machine`` that talks to the target ``connect`` opens."""
    return type(machine.__name__, (machine,), {"connect": staticmethod(connect), **attributes})
