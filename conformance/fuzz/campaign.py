"""The campaign loop: Hypothesis drives generated programs at a target until a
global deadline or an example budget runs out.

Each example is executed (pipelined, on kept-open connections), judged by
every oracle, and, when something looks wrong, executed again on fresh
connections to *confirm* it.  A confirmed violation is written to its
finding file at once (see :mod:`conformance.fuzz.findings`), then the
example fails so Hypothesis shrinks it; every smaller failing variant
rewrites the file, so the stored transcript ends up minimized.

Overlap.  When the target serves several connections at once (or gives
each its own process), examples are judged a few steps late: example N is
sent, then the examples before it that have completed meanwhile (their
replies arrived while Hypothesis generated the ones after them) are read
and judged; see :class:`~conformance.fuzz.execute.Pipeline`.  Generation,
judging and the server's work then run side by side instead of in turn.
An example found wrong that way can no longer fail in place, so its
choice sequence is handed to a *shrink run* of its own: a Hypothesis run
over an in-memory database holding just that example, executed in step
(judged in place), which replays it, fails and shrinks it exactly as if it
had failed on its turn.  What it shrinks
to is saved in the campaign's database for the other machines.

A Hypothesis run ends at the first failure.  The loop then starts another
run (next seed) in which the bugs already recorded no longer fail the
example, so exploration goes on.  The global deadline is enforced from
inside the example with a BaseException, which Hypothesis does not treat as
a failure (no shrinking of a "timeout").
"""

from __future__ import annotations

import time
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy

from conformance.fuzz.database import KEY
from conformance.fuzz.execute import Executor, Observation, Pipeline
from conformance.fuzz.findings import FindingStore
from conformance.fuzz.generate import DEFAULT_COMMANDS, GenConfig, programs
from conformance.fuzz.hypothesis_compat import current_choices, in_example, pin_database_key
from conformance.fuzz.oracles import Judge, Violation
from conformance.fuzz.program import Program, Step
from conformance.fuzz.progress import Stats
from conformance.fuzz.targets import target_factory
from conformance.protocol.dialects import DEFAULT, Dialect
from conformance.qapi import load
from conformance.qapi.model import Schema
from conformance.session import Session, read_schema
from conformance.specs import Specs
from conformance.transport import CONNECT_TIMEOUT, ConnectionClosed, Target, TargetError

#: The rules the oracles judge on every answered example.
ORACLE_RULES = ("Q1", "Q2", "Q3", "Q7", "Q15", "Q16", "Q20", "Q22", "Q29", "Q37")


#: One example in this many reports target() metrics (see _account).
TARGET_EVERY = 32
#: Examples sent and not yet judged, at most, when examples overlap: enough
#: that the server always has one queued while the campaign judges another.
IN_FLIGHT = 3
#: Failing examples per finding and Hypothesis run that keep shrinking going.
SHRINK_BUDGET = 60
SHRINK_BUDGET_SLOW = 8


class CampaignOver(BaseException):
    """The deadline or the example budget is reached (not a test failure)."""


class FoundBug(Exception):
    """A new confirmed finding: makes Hypothesis shrink the example."""


class TargetGone(BaseException):
    """The target died and cannot be reached again (a socket that nobody
    restarts): the campaign ends with what it has recorded."""


class Deferred(BaseException):
    """An example judged late broke a rule: end this run, shrink it in its own."""


@dataclass
class CampaignConfig:
    target: str
    out_dir: str
    duration: float | None = None
    max_examples: int | None = None
    seed: int | None = None
    database: ExampleDatabase | None = None
    commands: tuple[str, ...] = DEFAULT_COMMANDS
    probe_timeout: float = 3.0
    max_steps: int = 24
    worker: int = 0
    dialect: Dialect = DEFAULT
    #: Only replay the examples already in the database (other machines'
    #: failures), generate nothing new.
    db_only: bool = False
    #: A schema (QAPI source or introspection JSON) to fall back on when
    #: ``query-qmp-schema`` fails.
    schema_path: str | None = None
    #: When a list, every executed program is appended (the benchmark replays them).
    record: list[Program] | None = None
    #: Called with each finding's ident and path, the moment it is written.
    on_finding: Callable[[str, str], None] | None = None
    #: Called every example with the running stats (progress display, workers).
    on_example: Callable[[Stats], None] | None = None
    deadline: float = field(init=False, default=0.0)


def detect_concurrency(target: Target) -> int:
    """How many connections the target greets at once (1 or 3): QEMU's socket
    monitor serves one client and leaves the next in the listen backlog."""
    if target.restarts:
        return 1
    sessions = []
    try:
        for _ in range(2):
            session = Session(target.connect(CONNECT_TIMEOUT))
            sessions.append(session)
            if session.read_greeting(1.5) is None:
                return 1
        return 3
    except Exception:
        return 1
    finally:
        for s in sessions:
            s.close()


def introspect(target: Target) -> tuple[Schema, list[str]]:
    """The target's schema (``query-qmp-schema``) and offered capabilities.

    Unlike :func:`conformance.session.fetch_schema` it goes on without a
    greeting: a server that sends none is a finding (Q7), not a reason not
    to fuzz it.
    """
    with Session(target.connect(CONNECT_TIMEOUT)) as session:
        try:
            session.read_greeting()
            # Retried: a faulty server may lose or hold back a reply.
            entries = read_schema(session, timeout=2.5, attempts=3)
        except (TargetError, ConnectionClosed) as exc:
            raise TargetError(f"{target.spec}: {exc}") from exc
        return load(entries), session.capabilities


def fallback_schema(spec: str, schema_path: str | None) -> str | None:
    """Where to read the schema from when introspection fails: the user's
    ``--schema``, else the bundled reference server's own."""
    if schema_path:
        return schema_path
    if spec.split(":", 1)[0] == "reference":
        try:
            from reference_server import DEFAULT_SCHEMA
        except ImportError:
            return None
        return str(DEFAULT_SCHEMA)
    return None


def prepare_schema(target: Target, schema_path: str | None = None
                   ) -> tuple[Schema, list[str], bool]:
    """(schema, capabilities, whether introspection worked).  When the server
    cannot describe itself (its replies are broken), fuzz it from the schema
    it should have, and let the oracles say what is wrong."""
    try:
        schema, caps = introspect(target)
        return schema, caps, True
    except TargetError:
        path = fallback_schema(target.spec, schema_path)
        if path is None:
            raise
        return load(path), greeting_capabilities(target), False


def greeting_capabilities(target: Target) -> list[str]:
    with Session(target.connect(CONNECT_TIMEOUT)) as session:
        try:
            session.read_greeting()
        except ConnectionClosed:
            return []
        return session.capabilities


class Campaign:
    def __init__(self, config: CampaignConfig, stats: Stats | None = None) -> None:
        self.config = config
        self.stats = stats or Stats()
        self.store = FindingStore(config.out_dir, config.target)
        self.known: set[str] = set()  # idents recorded by earlier Hypothesis runs
        self.seen_this_run: set[str] = set()
        #: Failing calls per finding in this Hypothesis run: shrinking stops
        #: (the example no longer fails) past SHRINK_BUDGET, so that a slow
        #: failure (a hang costs a probe timeout per try) cannot eat the campaign.
        self.shrink_calls: dict[str, int] = {}
        self.executor: Executor | None = None
        self.judge: Judge | None = None
        self.gen: GenConfig | None = None
        #: IN_FLIGHT when examples overlap (see the module's docstring), else 1.
        self.lanes = 1
        #: Whether the running Hypothesis test judges its examples in place.
        self.in_step = True
        #: Examples sent and not judged yet, tagged with their choice sequences.
        self.pipeline: Pipeline[bytes] | None = None
        self.guided = 0  # examples whose own labels were reported
        self.stop_requested = False
        #: Examples found wrong late, with the idents they showed, to shrink.
        self.to_shrink: list[tuple[bytes, set[str]]] = []

    # -- setup ------------------------------------------------------------------

    def setup(self) -> None:
        """Start the target, learn its schema and capabilities (TargetError if not)."""
        cfg = self.config
        self.executor = Executor(target_factory(cfg.target), cfg.probe_timeout)
        target = self.executor.target
        schema, caps, introspected = prepare_schema(target, cfg.schema_path)
        if not introspected:
            self.stats.errors["harness:introspection-failed"] = 1
        gen = GenConfig.for_schema(schema, cfg.commands, oob_offered="oob" in caps,
                                   max_connections=detect_concurrency(target),
                                   fresh_one_in=64 if target.restarts else 8,
                                   max_steps=cfg.max_steps)
        if not gen.commands:
            raise TargetError(f"no command of {cfg.target} matches {', '.join(cfg.commands)}")
        self.gen = gen
        self.executor.concurrent = target.restarts or gen.max_connections > 1
        # Overlapping needs a second set of connections: a socket that serves
        # one client at a time (QEMU's) runs its examples in step.
        self.lanes = IN_FLIGHT if self.executor.concurrent and not cfg.db_only else 1
        self.pipeline = Pipeline(self.executor, self.lanes)
        self.judge = Judge(Specs(schema), cfg.dialect)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None

    def __enter__(self) -> Campaign:
        """Set up (start the target, read its schema); closed on leaving."""
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ---------------------------------------------------------------

    def run(self) -> Stats:
        """Run until the deadline/budget (or Ctrl-C); the stats of the campaign."""
        cfg = self.config
        if self.executor is None:
            self.setup()
        assert self.gen is not None
        start = time.monotonic()
        cfg.deadline = start + cfg.duration if cfg.duration else float("inf")
        strategy = programs(self.gen)
        run_index = 0
        failures_in_a_row = 0
        try:
            while not self._over():
                if self.to_shrink:
                    self._shrink_next(strategy, run_index)
                    run_index += 1
                    continue
                test = self._hypothesis_test(strategy, run_index, in_step=self.lanes == 1)
                try:
                    try:
                        test()
                    finally:
                        self._flush()
                    failures_in_a_row = 0
                    if (cfg.duration is None or cfg.db_only) and not self.to_shrink:
                        break  # the budget was spent, or the database replayed
                except (FoundBug, Flaky):
                    # Flaky: shrinking was cut short by the budget below, so
                    # the final replay of the minimal example passed.  The
                    # finding is on disk either way.
                    failures_in_a_row = 0
                except Deferred:
                    # Found late: shrunk by the next turn of the loop, so it
                    # is not "known" yet.
                    self.seen_this_run = set()
                    failures_in_a_row = 0
                except (CampaignOver, KeyboardInterrupt):
                    raise
                except unittest.SkipTest:
                    break  # --db-only with an empty database: nothing to replay
                except Exception as exc:
                    failures_in_a_row += 1
                    name = type(exc).__name__
                    self.stats.errors[f"harness:{name}"] = self.stats.errors.get(
                        f"harness:{name}", 0) + 1
                    if failures_in_a_row >= 5:
                        raise
                self._end_run()
                run_index += 1
        except (CampaignOver, Deferred):
            pass
        except TargetGone as exc:
            self.stats.gone = str(exc)
        return self.stats

    def _end_run(self) -> None:
        self.known |= self.seen_this_run
        self.seen_this_run = set()
        self.shrink_calls.clear()

    def _shrink_next(self, strategy: SearchStrategy[Program], run_index: int) -> None:
        """Replay one example found wrong late, in step, and let Hypothesis shrink it."""
        choices, idents = self.to_shrink.pop(0)
        if idents <= self.known:
            return
        # A secondary entry, not a primary one: Hypothesis takes a primary
        # entry that fails exactly as it was stored for one already shrunk.
        scratch = InMemoryExampleDatabase()
        scratch.save(KEY + b".secondary", choices)
        test = self._hypothesis_test(strategy, run_index, in_step=True, database=scratch,
                                     phases=(Phase.reuse, Phase.shrink))
        try:
            test()
        except (FoundBug, Flaky):
            pass
        finally:
            if self.config.database is not None:
                for value in scratch.fetch(KEY):
                    self.config.database.save(KEY, value)
            # Whatever happened, these findings are on disk: stop chasing them.
            self.seen_this_run |= idents
            self._end_run()

    def request_stop(self) -> None:
        """Ctrl-C: end at the next example.  Raising KeyboardInterrupt from the
        signal handler alone is not enough: a signal that lands while the
        garbage collector runs Hypothesis's gc callback has its exception
        swallowed there."""
        self.stop_requested = True

    def _over(self) -> bool:
        if self.stop_requested:
            raise KeyboardInterrupt
        cfg = self.config
        return time.monotonic() >= cfg.deadline or (
            cfg.max_examples is not None and self.stats.examples >= cfg.max_examples)

    def _hypothesis_test(self, strategy: SearchStrategy[Program], run_index: int, *,
                         in_step: bool, database: ExampleDatabase | None = None,
                         phases: tuple[Phase, ...] | None = None) -> Callable[[], None]:
        cfg = self.config
        remaining = (cfg.max_examples - self.stats.examples) if cfg.max_examples else 10**9
        example = self._example if in_step else self._example_overlapped

        def fuzz_qmp_target(program: Program) -> None:
            example(program)

        wrapped: Callable[[], None] = given(strategy)(fuzz_qmp_target)
        if cfg.seed is not None:
            # Before settings: hypothesis.seed() switches the database off, and
            # the settings applied after it switch it back on.
            seeded: Callable[[Callable[[], None]], Callable[[], None]] = hypothesis.seed(
                cfg.seed + 7919 * run_index + 104729 * cfg.worker)
            wrapped = seeded(wrapped)
        if phases is None:
            phases = ((Phase.reuse, Phase.shrink) if cfg.db_only else
                      (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink))
        test: Callable[[], None] = settings(
            database=cfg.database if database is None else database,
            max_examples=max(1, remaining), deadline=None,
            suppress_health_check=list(HealthCheck), derandomize=False, print_blob=False,
            report_multiple_bugs=False, verbosity=Verbosity.quiet,
            phases=phases,
        )(wrapped)
        # One key for every campaign, worker and machine, whatever the code's
        # digest: that is what lets them replay each other's examples.
        pin_database_key(test, KEY)
        self.in_step = in_step
        return test

    # -- one example --------------------------------------------------------------

    def _example(self, program: Program) -> None:
        """Judged in place: a confirmed new violation fails the example."""
        if self._over():
            raise CampaignOver
        assert self.executor is not None and self.judge is not None
        self._guide(program)
        obs = self._execute(program, fresh=False)
        violations = self.judge(obs)
        self._account(obs)
        # Bugs recorded by an earlier run are not confirmed again: they no
        # longer fail the example, and confirming costs a fresh connection.
        violations = [v for v in violations if v.ident not in self.known]
        if not violations:
            return
        new = self._confirm(obs, violations)
        if new:
            raise FoundBug(", ".join(sorted(new)))

    def _example_overlapped(self, program: Program) -> None:
        """Send this example, then judge those that completed meanwhile (see the
        module docstring)."""
        if self._over():
            raise CampaignOver
        assert self.pipeline is not None
        self._guide(program)
        choices = current_choices()
        try:
            done = self.pipeline.push(program, choices)
        except TargetError:
            # The target went away between examples: judge what was in flight
            # (a crash shows there), bring it back and send this one again.
            self._judge_late(self.pipeline.drain())
            self._restart()
            done = self.pipeline.push(program, choices, fresh=True)
        self._judge_late(done)

    def _flush(self) -> None:
        """Judge every example still in flight."""
        if self.pipeline is not None:
            self._judge_late(self.pipeline.drain())

    def _judge_late(self, done: list[tuple[bytes, Observation]]) -> None:
        judged = [(choices, obs, self._judged(obs)) for choices, obs in done]
        if not any(violations for _c, _o, violations in judged):
            return
        # Confirming needs fresh connections: first read what the examples
        # still in flight are owed, then confirm each one that broke a rule.
        assert self.pipeline is not None
        judged += [(choices, obs, self._judged(obs)) for choices, obs in self.pipeline.drain()]
        found: set[str] = set()
        for index, (choices, obs, violations) in enumerate(judged):
            try:
                new = self._confirm(obs, violations) if violations else set()
            except TargetGone:
                # Whichever example killed it, its own transcript is the evidence.
                for _choices, other, other_violations in judged[index + 1:]:
                    for v in other_violations:
                        self._record(v, other)
                raise
            if new:
                self.to_shrink.append((choices, new))
                found |= new
        if found:
            raise Deferred(", ".join(sorted(found)))

    def _judged(self, obs: Observation) -> list[Violation]:
        """Account for ``obs``; its violations of bugs not recorded before."""
        assert self.judge is not None
        self._account(obs)
        return [v for v in self.judge(obs) if v.ident not in self.known]

    def _execute(self, program: Program, fresh: bool) -> Observation:
        assert self.executor is not None
        try:
            return self.executor.run(program, fresh=fresh)
        except TargetError:
            # The target went away between examples (killed from outside, or a
            # crash after the last probe): bring it back and run again.
            self._restart()
            return self.executor.run(program, fresh=True)

    def _restart(self) -> None:
        assert self.executor is not None
        self.stats.restarts += 1
        self.executor.restart()

    def _confirm(self, obs: Observation, violations: list[Violation]) -> set[str]:
        """Re-run on fresh connections; record what reproduces; the idents new to this run."""
        assert self.judge is not None
        self.stats.confirmations += 1
        try:
            if any(v.oracle in ("crash", "hang") for v in violations):
                self._restart()
            again = self._execute(obs.program, fresh=True)
        except TargetError as exc:
            # Gone for good (a socket nobody restarts): the example's own
            # transcript is all the evidence there is.
            for v in violations:
                self._record(v, obs)
            raise TargetGone(str(exc)) from exc
        confirmed = {v.ident: v for v in self.judge(again)}
        gone: TargetError | None = None
        if any(v.oracle in ("crash", "hang") for v in confirmed.values()):
            try:
                self._restart()
            except TargetError as exc:
                gone = exc
        new: set[str] = set()
        for v in violations:
            if v.ident not in confirmed:
                self.stats.unconfirmed += 1
                continue
            self._record(confirmed[v.ident], again)
            if v.ident not in self.known:
                self.seen_this_run.add(v.ident)
                calls = self.shrink_calls[v.ident] = self.shrink_calls.get(v.ident, 0) + 1
                slow = v.oracle in ("crash", "hang")
                if calls <= (SHRINK_BUDGET_SLOW if slow else SHRINK_BUDGET):
                    new.add(v.ident)
        if gone is not None:
            raise TargetGone(str(gone)) from gone
        return new

    def _record(self, violation: Violation, obs: Observation) -> None:
        """Write (or fold into) the violation's finding file, and say so."""
        path, _first = self.store.record(violation, obs)
        if violation.ident not in self.stats.findings:
            self.stats.findings[violation.ident] = str(path)
            if self.config.on_finding is not None:
                self.config.on_finding(violation.ident, str(path))
        if in_example():
            hypothesis.event(f"finding:{violation.ident}")

    def _guide(self, program: Program) -> None:
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
        if self.guided % TARGET_EVERY == 0:
            hypothesis.target(float(depth.bit_length()), label="nesting")
            hypothesis.target(float(program.size().bit_length()), label="size")

    def _account(self, obs: Observation) -> None:
        """Stats, and the Hypothesis events and metrics the replies give."""
        program = obs.program
        stats = self.stats
        if self.config.record is not None:
            self.config.record.append(program)
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
        if self.in_step and self.guided % TARGET_EVERY == 0:
            hypothesis.target(float(int(obs.latency * 1e6).bit_length()), label="latency")
        if self.config.on_example is not None:
            self.config.on_example(stats)


def _requests(program: Program) -> Iterator[tuple[Step, str | None, str | None]]:
    """Each request of ``program`` with the rule it breaks on purpose, if any,
    and the command it runs, if it is a valid request."""
    for step in program.steps:
        if step.kind != "command":
            continue
        rule, name = step.meta.get("rule"), step.meta.get("name")
        yield (step, rule if isinstance(rule, str) else None,
               name if isinstance(name, str) and step.meta.get("expect") == "any" else None)


def _ignore(label: str) -> None:
    del label
