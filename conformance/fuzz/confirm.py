"""Confirming what the oracles report, and recording what is confirmed.

An example that breaks a rule is run again on fresh connections (after a
restart when the target crashed or hung) and judged again; only what
reproduces is written to its finding file.  The confirmer also remembers
which findings the campaign already has, so that a known bug does not fail
later examples, and how often each was seen in the running Hypothesis run,
so that shrinking a slow failure stops within a budget.
"""

from __future__ import annotations

from collections.abc import Callable

import hypothesis

from conformance.fuzz.execute import Observation
from conformance.fuzz.findings import Finding, FindingStore
from conformance.fuzz.hypothesis_compat import in_example
from conformance.fuzz.oracles import Violation
from conformance.fuzz.program import Program
from conformance.fuzz.progress import Stats
from conformance.transport import TargetError

#: Failing examples per finding and Hypothesis run that keep shrinking going.
SHRINK_BUDGET = 60
SHRINK_BUDGET_SLOW = 8


class TargetGone(BaseException):
    """The target died and cannot be reached again (a socket that nobody
    restarts): the campaign ends with what it has recorded."""


class Confirmer:
    """Confirms violations into finding files (``store``), counting in ``stats``
    and telling ``on_finding`` (ident, path) about each new finding."""

    def __init__(
        self,
        store: FindingStore,
        stats: Stats,
        on_finding: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.on_finding = on_finding
        #: Findings recorded by earlier Hypothesis runs: they no longer fail examples.
        self.known: set[str] = set()
        self.seen_this_run: set[str] = set()
        #: Failing calls per finding in this Hypothesis run: shrinking stops
        #: (the example no longer fails) past SHRINK_BUDGET, so that a slow
        #: failure (a hang costs a probe timeout per try) cannot eat the campaign.
        self.shrink_calls: dict[str, int] = {}

    def settled(self, violation: Violation) -> bool:
        """Whether ``violation`` needs no confirming: recorded by an earlier
        run, or its shrink budget in this run is spent, so that a rerun
        could only fold one more repeat into its file.  A deviation a target
        shows on every other example (QEMU's ``inf``) would otherwise cost a
        fresh connection each time."""
        if violation.ident in self.known:
            return True
        return self.shrink_calls.get(violation.ident, 0) >= _shrink_budget(violation)

    def end_run(self) -> None:
        """A Hypothesis run ended: what it found is known from now on."""
        self.known |= self.seen_this_run
        self.seen_this_run = set()
        self.shrink_calls.clear()

    def confirm(
        self,
        obs: Observation,
        violations: list[Violation],
        rerun: Callable[[Program], Observation],
        restart: Callable[[], None],
        judge: Callable[[Observation], list[Violation]],
    ) -> set[str]:
        """Run ``obs``'s program again (``rerun``, on fresh connections), judge
        it, record what reproduces; the idents new to this run and still
        within their shrink budget.

        Raises :class:`TargetGone` when the target cannot be reached again
        (what the first run showed is then recorded as the evidence), and
        :class:`OSError` when a finding file cannot be written.
        """
        self.stats.confirmations += 1
        try:
            if any(v.oracle in ("crash", "hang") for v in violations):
                restart()
            again = rerun(obs.program)
        except TargetError as exc:
            # Gone for good (a socket nobody restarts): the example's own
            # transcript is all the evidence there is.
            for v in violations:
                self.record(v, obs)
            raise TargetGone(str(exc)) from exc
        confirmed = {v.ident: v for v in judge(again)}
        gone: TargetError | None = None
        if any(v.oracle in ("crash", "hang") for v in confirmed.values()):
            try:
                restart()
            except TargetError as exc:
                gone = exc
        new: set[str] = set()
        for v in violations:
            if v.ident not in confirmed:
                self.stats.unconfirmed += 1
                continue
            self.record(confirmed[v.ident], again)
            if v.ident not in self.known:
                self.seen_this_run.add(v.ident)
                calls = self.shrink_calls[v.ident] = self.shrink_calls.get(v.ident, 0) + 1
                if calls <= _shrink_budget(v):
                    new.add(v.ident)
        if gone is not None:
            raise TargetGone(str(gone)) from gone
        return new

    def record(self, violation: Violation, obs: Observation) -> None:
        """Write (or fold into) the violation's finding file, and say so.

        Raises :class:`OSError` when the finding file cannot be written.
        """
        self.keep(self.store.finding(violation, obs.program, obs.transcript()))

    def keep(self, finding: Finding) -> None:
        """Write (or fold) ``finding`` into its file, and say so.

        Raises :class:`OSError` when the finding file cannot be written.
        """
        path, _first = self.store.keep(finding)
        if finding.ident not in self.stats.findings:
            self.stats.findings[finding.ident] = str(path)
            if self.on_finding is not None:
                self.on_finding(finding.ident, str(path))
        if in_example():
            hypothesis.event(f"finding:{finding.ident}")


def _shrink_budget(violation: Violation) -> int:
    """Failing calls a finding may take to shrink in one run: fewer for a
    crash or hang, each of which costs a restart or a probe timeout."""
    slow = violation.oracle in ("crash", "hang")
    return SHRINK_BUDGET_SLOW if slow else SHRINK_BUDGET
