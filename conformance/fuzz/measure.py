"""What a campaign measures: statistics, and the Hypothesis events and
``target()`` metrics that steer its search.

Two moments per example: :meth:`Measure.guide` when it is generated (what
the program itself says: rules broken on purpose, commands, nesting, size)
and :meth:`Measure.account` when it is judged (what the replies say: error
classes, shapes, latency), which for overlapped examples is a few examples
later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import hypothesis

from conformance.fuzz.execute import Observation
from conformance.fuzz.hypothesis_compat import in_example
from conformance.fuzz.program import Program, Step
from conformance.fuzz.progress import Stats

#: The rules the oracles judge on every answered example.
ORACLE_RULES = ("Q1", "Q2", "Q3", "Q7", "Q15", "Q16", "Q20", "Q22", "Q29", "Q37")


#: One example in this many reports target() metrics (see Measure.account).
TARGET_EVERY = 32


class Measure:
    """Counts into ``stats``; appends every judged program to ``record`` when
    given; calls ``on_example`` after each."""

    def __init__(
        self,
        stats: Stats,
        record: list[Program] | None = None,
        on_example: Callable[[Stats], None] | None = None,
    ) -> None:
        self.stats = stats
        self.record = record
        self.on_example = on_example
        self.guided = 0  # examples whose own labels were reported
        #: Report target() metrics (the campaign turns this off in runs that
        #: do not climb: observations cost even when nothing climbs on them).
        self.steering = True

    def guide(self, program: Program) -> None:
        """Hypothesis events and target() metrics that the program itself gives:
        reported on the example's own turn, even when it is judged late."""
        self.guided += 1
        depth = 0
        for step, rule, command in _requests(program):
            if rule:
                hypothesis.event(f"rule:{rule}:{step.meta.get('how', '')}")
            if command:
                hypothesis.event(f"command:{command}")
            # Brackets bound the nesting from above and cost a C scan, not a parse.
            depth = max(depth, step.data.count(b"[") + step.data.count(b"{"))
        # Hypothesis keeps a Pareto front of the examples that maximise the
        # target() metrics and compares every observing example against it,
        # which costs more than running the example.  So the metrics are on a
        # log scale (fewer distinct points) and observed on one example in
        # TARGET_EVERY: the search keeps its direction at a fraction of the cost.
        if self.steering and self.guided % TARGET_EVERY == 0:
            hypothesis.target(float(depth.bit_length()), label="nesting")
            hypothesis.target(float(program.size().bit_length()), label="size")

    def account(self, obs: Observation, *, in_step: bool) -> None:
        """Stats, and the Hypothesis events and metrics the replies give."""
        program = obs.program
        stats = self.stats
        if self.record is not None:
            self.record.append(program)
        stats.examples += 1
        stats.messages += program.messages()
        stats.bytes_sent += program.size()
        for _step, rule, command in _requests(program):
            if rule:
                stats.rules.add(rule)
            if command:
                stats.commands.add(command)
        # Judged late, the replies belong to the example before the running
        # one: their labels still count in the statistics, but outside any
        # example (the last one, judged after the run) they have no home.
        label = hypothesis.event if in_example() else _ignore
        answered = False
        for log in obs.conns.values():
            answered = answered or log.probe_reply is not None
            for msg in log.messages:
                if msg.is_error:
                    cls = msg.error_class or "?"
                    stats.errors[cls] = stats.errors.get(cls, 0) + 1
                    label(f"class:{cls}")
                elif msg.kind == "return":
                    label(f"shape:return-{type(msg.obj['return']).__name__}")
                elif msg.is_event:
                    label(f"shape:event-{msg.obj.get('event')}")
        if answered:
            stats.rules.update(ORACLE_RULES)
        # Latency steers the search only when it is the running example's own.
        if self.steering and in_step and self.guided % TARGET_EVERY == 0:
            hypothesis.target(float(int(obs.latency * 1e6).bit_length()), label="latency")
        if self.on_example is not None:
            self.on_example(stats)


def _requests(program: Program) -> Iterator[tuple[Step, str | None, str | None]]:
    """Each request of ``program`` with the rule it breaks on purpose, if any,
    and the command it runs, if it is a valid request."""
    for step in program.steps:
        if step.kind != "command":
            continue
        rule, name = step.meta.get("rule"), step.meta.get("name")
        yield (
            step,
            rule if isinstance(rule, str) else None,
            name if isinstance(name, str) and step.meta.get("expect") == "any" else None,
        )


def _ignore(label: str) -> None:
    del label
