"""Replaying a finding file: send its stored bytes to a target, judge the
replies with the same oracles, and say whether the same finding (same rule,
same signature) shows up again.

Nothing is regenerated: the program section of the file holds the exact
bytes, connection by connection, so a replay is independent of Hypothesis,
of seeds and of the version of the strategies that found it.

A stateful finding holds a state machine's steps instead: the replay runs
the machine through them on a fresh connection, checks its invariants after
each step as the campaign did (:meth:`conformance.fuzz.stateful.Driver.replay`),
and reproduces when a failure with the same rule and signature shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from conformance.fuzz.execute import Executor, Observation
from conformance.fuzz.findings import Finding, load
from conformance.fuzz.oracles import Judge, Violation
from conformance.fuzz.probe import prepare_schema
from conformance.fuzz.program import MachineRun
from conformance.fuzz.stateful import Driver
from conformance.fuzz.targets import dialect_of, target_factory
from conformance.specs import Specs
from conformance.transport import TargetError


@dataclass
class ReplayResult:
    """How replaying ``finding`` went: whether it reproduced, after how many
    attempts, and what the last attempt saw."""

    finding: Finding
    reproduced: bool
    attempts: int
    violations: list[Violation] = field(default_factory=list)
    observation: Observation | None = None
    #: A stateful finding's last attempt, as transcript lines.
    lines: list[str] = field(default_factory=list)

    def transcript(self) -> list[str]:
        """The last attempt's transcript ([] when none ran)."""
        return self.observation.transcript() if self.observation else self.lines


class Replayer:
    """A target plus the oracles for it; replays any number of findings.

    Construction starts the target and reads its schema: raises
    :class:`TargetError` when it cannot be started or reached (or gives no
    schema and has no fallback), and :class:`QAPIError` when the schema is
    not a valid one.
    """

    def __init__(self, target: str, probe_timeout: float = 3.0) -> None:
        self.executor = Executor(target_factory(target), probe_timeout)
        try:
            schema, _caps, _introspected = prepare_schema(self.executor.target)
        except BaseException:
            self.executor.close()
            raise
        self.judge = Judge(Specs(schema), dialect_of(target))
        self._driver: Driver | None = None

    def replay(self, finding: Finding, attempts: int = 2) -> ReplayResult:
        """Reproduced when any of ``attempts`` fresh runs shows the same rule and
        signature (a second try absorbs timing noise, e.g. a slow start).

        Raises :class:`TargetError` when the target cannot be reached or
        restarted, or cannot run a stateful finding's machine.
        """
        if isinstance(finding.program, MachineRun):
            return self._replay_run(finding, finding.program, attempts)
        result = ReplayResult(finding, False, 0)
        for _ in range(attempts):
            result.attempts += 1
            obs = self.executor.run(finding.program, fresh=True)
            found = self.judge(obs)
            result.violations, result.observation = found, obs
            if any(v.oracle in ("crash", "hang") for v in found):
                self.executor.restart()
            if any(v.ident == finding.ident for v in found):
                result.reproduced = True
                break
        return result

    def _replay_run(self, finding: Finding, run: MachineRun, attempts: int) -> ReplayResult:
        if self._driver is None:
            self._driver = Driver(lambda: self.executor.target, self.executor.restart)
        result = ReplayResult(finding, False, 0)
        for _ in range(attempts):
            result.attempts += 1
            try:
                outcome = self._driver.replay(run.machine, run.steps)
            except ValueError as exc:
                raise TargetError(f"cannot replay {finding.ident}: {exc}") from None
            if outcome.refused is not None:
                raise TargetError(
                    f"cannot replay {finding.ident} on {self.executor.target.spec}: "
                    f"the target refused {outcome.refused}"
                )
            result.violations = [outcome.violation] if outcome.violation else []
            result.lines = outcome.transcript
            if outcome.violation is not None and outcome.violation.rule == "Q16":
                self.executor.restart()  # it died or hung: the next try needs it back
            if any(v.ident == finding.ident for v in result.violations):
                result.reproduced = True
                break
        return result

    def close(self) -> None:
        """Close the connections and stop the target."""
        if self._driver is not None:
            self._driver.close()
        self.executor.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replay_file(path: str | os.PathLike[str], target: str, attempts: int = 2) -> ReplayResult:
    """Load ``path`` and replay it against ``target`` (a target string).

    Raises :class:`FindingFileError` when ``path`` is not a finding file,
    :class:`OSError` when it cannot be read, and :class:`TargetError` or
    :class:`QAPIError` as :class:`Replayer` does.
    """
    finding = load(path)
    with Replayer(target) as replayer:
        return replayer.replay(finding, attempts)
