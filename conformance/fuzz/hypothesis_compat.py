"""The Hypothesis internals a campaign needs, behind one small interface.

Campaigns use a few things no public Hypothesis API offers: the choice
sequence of the example being run (an overlapped example is judged after
Hypothesis has moved on, and its choices are what a late finding is shrunk
from), the byte form the example database stores them in, a fixed
database key (so every worker and machine files examples in one place,
whatever the test function's digest), and, for stateful campaigns, a state
machine's test function before it runs (to pin its key) and the rules and
invariants of a machine class (a stored run is replayed step by step
without Hypothesis).  They are used nowhere else, so a Hypothesis release
that moves them breaks this module only.

Supported: Hypothesis :data:`MINIMUM` (the first release with both
``ConjectureData.choices`` and ``hypothesis.database.choices_to_bytes``)
up to, not including, 7.  ``tests/fuzz/test_hypothesis_range.py`` runs a
campaign on :data:`MINIMUM` itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import hypothesis
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine

#: The oldest Hypothesis release campaigns run on (pyproject.toml says the same).
MINIMUM = (6, 125, 0)

if tuple(hypothesis.__version_info__) < MINIMUM:  # pragma: no cover
    raise ImportError(
        f"qmp-conform fuzz needs Hypothesis >= {'.'.join(map(str, MINIMUM))}, "
        f"not {hypothesis.__version__}"
    )

from hypothesis.database import choices_to_bytes  # noqa: E402 (after the version check)
from hypothesis.stateful import get_state_machine_test  # noqa: E402

#: The attributes the @rule and @invariant decorators mark functions with.
_RULE_MARKER = "hypothesis_stateful_rule"
_INVARIANT_MARKER = "hypothesis_stateful_invariant"


def in_example() -> bool:
    """Whether the caller runs inside a Hypothesis example (where ``event``
    and ``target`` may be called)."""
    try:
        current_build_context()
    except InvalidArgument:
        return False
    return True


def current_choices() -> bytes:
    """The choices of the example being run, as the example database stores them.

    Raises :class:`~hypothesis.errors.InvalidArgument` outside an example (see
    :func:`in_example`).
    """
    return choices_to_bytes(current_build_context().data.choices)


def pin_database_key(test: Callable[..., Any], key: bytes) -> None:
    """File every example of ``test`` under ``key`` in the example database."""
    test._hypothesis_internal_database_key = key  # type: ignore[attr-defined]


def state_machine_test(
    machine: type[RuleBasedStateMachine], settings: hypothesis.settings, key: bytes
) -> Callable[[], None]:
    """The Hypothesis test that runs ``machine`` under ``settings``, filing its
    examples under ``key``; ``hypothesis.seed`` applied to ``machine`` carries
    over."""
    test = get_state_machine_test(machine, settings=settings)
    pin_database_key(test, key)
    if "factory" in inspect.signature(test).parameters:
        # Before 6.1xx the test took the machine as its argument.
        return functools.partial(test, machine)
    run: Callable[[], None] = test
    return run


def _marked(machine: type[RuleBasedStateMachine], marker: str) -> list[Any]:
    return [
        found
        for _name, member in inspect.getmembers(machine)
        if (found := getattr(member, marker, None)) is not None
    ]


def rule_names(machine: type[RuleBasedStateMachine]) -> set[str]:
    """The names of the methods of ``machine`` that are rules."""
    return {rule.function.__name__ for rule in _marked(machine, _RULE_MARKER)}


def invariants(machine: type[RuleBasedStateMachine]) -> list[Callable[[Any], None]]:
    """The invariants of ``machine``, as functions of a machine, in the order
    Hypothesis checks them (by name)."""
    return [invariant.function for invariant in _marked(machine, _INVARIANT_MARKER)]


def campaign_settings(
    database: Any,
    max_examples: int,
    *,
    db_only: bool,
    steered: bool = False,
    phases: tuple[hypothesis.Phase, ...] | None = None,
    **extra: Any,
) -> hypothesis.settings:
    """The settings of every campaign run, protocol or stateful: quiet, no
    deadline or health checks, one bug at a time; ``db_only`` replays the
    database and shrinks, ``steered`` adds target-directed search, and
    ``phases`` overrides both."""
    generate = (
        hypothesis.Phase.explicit,
        hypothesis.Phase.reuse,
        hypothesis.Phase.generate,
        hypothesis.Phase.shrink,
    )
    if phases is None:
        phases = (
            (hypothesis.Phase.reuse, hypothesis.Phase.shrink)
            if db_only
            else generate + ((hypothesis.Phase.target,) if steered else ())
        )
    return hypothesis.settings(
        database=database,
        max_examples=max(1, max_examples),
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=hypothesis.Verbosity.quiet,
        phases=phases,
        **extra,
    )
