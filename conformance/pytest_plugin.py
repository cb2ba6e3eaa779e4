"""pytest plugin: ``pytest --qmp-target=T`` runs the check catalogue as test items.

Inert unless ``--qmp-target`` is given: it then adds one item per check (named
``qmp::<check id>``) to whatever else was collected.  The target is started
on the first item and closed at the end of the session; a failing check
fails its item with the same rule, message and transcript the CLI prints.
The built-in known deviations (or ``--qmp-baseline`` files) apply as in the
CLI: an expected failure is an xfail item, a stale entry passes, or fails
with ``--qmp-strict-baseline``.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.baseline import BaselineError, load_all
from conformance.checks import Check, catalogue
from conformance.protocol.dialects import NAMES
from conformance.runner import CheckResult, Runner
from conformance.transport import TargetError

_RUNNER = pytest.StashKey[Runner]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--qmp-*`` options; without ``--qmp-target`` the plugin stays inert."""
    group = parser.getgroup("qmp-conformance")
    group.addoption(
        "--qmp-target",
        metavar="T",
        default=None,
        help="run the QMP conformance checks against T "
        "(unix:PATH, tcp:HOST:PORT, spawn:COMMAND, reference[:OPTS])",
    )
    group.addoption(
        "--qmp-dialect",
        metavar="D",
        default=None,
        choices=NAMES,
        help="force the QMP dialect (default: from the greeting)",
    )
    group.addoption(
        "--qmp-only",
        metavar="GLOB",
        action="append",
        default=None,
        help="only checks whose id matches GLOB (repeatable)",
    )
    group.addoption(
        "--qmp-baseline",
        metavar="FILE",
        action="append",
        default=None,
        help="failures to expect (repeatable; default: the built-in known deviations)",
    )
    group.addoption(
        "--qmp-strict-baseline",
        action="store_true",
        default=False,
        help="a baseline entry whose check now passes fails its item",
    )


class CheckFailed(Exception):
    """A conformance check failed; its text is the evidence block."""


class QMPCheckItem(pytest.Item):
    """One catalogue check, run against the session's target."""

    def __init__(self, *, check: Check, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        """Run the check, starting the target on the first item, and map its verdict onto
        pytest's.  Raises :class:`CheckFailed` with the evidence when the check fails or
        breaks, or the target cannot be used; skip and xfail verdicts end as pytest's own."""
        runner = self.config.stash[_RUNNER]
        if runner.ctx is None:
            try:
                runner.start()
            except TargetError as exc:
                raise CheckFailed(f"cannot use the target: {exc}") from exc
        result = runner.run_check(self.check)
        if result.status == "skip":
            pytest.skip(f"{self.check.id}: {result.message.splitlines()[0]}")
        if result.status == "xfail":
            pytest.xfail(f"{self.check.id}: {result.message.splitlines()[0]}")
        if result.status == "xpass" and not runner.strict:
            return
        if result.status != "pass":
            raise CheckFailed(_evidence(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """The evidence block, as is, for a failed check; pytest's usual report otherwise."""
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        """How pytest names the item: no file, the check id and its rule."""
        return "qmp", None, f"qmp::{self.check.id} [{self.check.rule}]"


def _evidence(result: CheckResult) -> str:
    return "\n".join(
        [
            f"{result.id} ({result.status}), rule {result.rule}",
            result.message,
            "transcript:",
            *result.transcript,
        ]
    )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With ``--qmp-target``, set up the run's :class:`Runner` and append one item per
    selected check.  Raises :class:`pytest.UsageError` when a ``--qmp-baseline`` file
    cannot be used."""
    target = config.getoption("--qmp-target")
    if not target:
        return
    try:
        expected = load_all(config.getoption("--qmp-baseline"))
    except BaselineError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_RUNNER] = Runner(
        target,
        config.getoption("--qmp-dialect"),
        config.getoption("--qmp-only"),
        baseline=expected,
        strict=config.getoption("--qmp-strict-baseline"),
    )
    for check in catalogue(config.getoption("--qmp-only")):
        items.append(QMPCheckItem.from_parent(session, name=f"qmp::{check.id}", check=check))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the target at the end of the session, if the plugin set up a run."""
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()
