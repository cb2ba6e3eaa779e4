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

Stateful turns (``stateful`` "mix" or "only", see
:mod:`conformance.fuzz.stateful`).  The loop then takes turns: with "mix",
a protocol run of :data:`PROTOCOL_SLICE` seconds, then a run of the next
state machine (:data:`FIRST_STATEFUL_SLICE` seconds on its first turn,
:data:`STATEFUL_SLICE` after), and so on; with "only", the machines in
turn.  A turn ends at its first new finding (once shrunk) or when its time
is up; a turn that is shrinking a finding may go on for
:data:`~conformance.fuzz.stateful.SHRINK_SECONDS` past its time.
"""

from __future__ import annotations

import time
import unittest
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hypothesis
from hypothesis import Phase, given
from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase
from hypothesis.errors import Flaky
from hypothesis.strategies import SearchStrategy

from conformance.fuzz.confirm import Confirmer, TargetGone
from conformance.fuzz.database import KEY
from conformance.fuzz.execute import Executor, Observation, Pipeline
from conformance.fuzz.findings import FindingStore
from conformance.fuzz.generate import DEFAULT_COMMANDS, GenConfig, programs
from conformance.fuzz.hypothesis_compat import (
    campaign_settings,
    current_choices,
    pin_database_key,
)
from conformance.fuzz.measure import Measure
from conformance.fuzz.oracles import Judge, Violation
from conformance.fuzz.probe import TargetProfile, probe
from conformance.fuzz.program import Program
from conformance.fuzz.progress import Stats
from conformance.fuzz.stateful import SHRINK_SECONDS, Driver, StatefulBug, TurnOver, Turns
from conformance.fuzz.targets import target_factory
from conformance.protocol.dialects import DEFAULT, Dialect
from conformance.specs import Specs
from conformance.transport import TargetError
from strategies.stateful import TargetMachine

#: Examples sent and not yet judged, at most, when examples overlap: enough
#: that the server always has one queued while the campaign judges another.
IN_FLIGHT = 3
#: Examples per Hypothesis run; the loop then starts a fresh run (another
#: seed).  Once it has target() metrics, Hypothesis spends up to half of a
#: run hill-climbing on them, a quarter of what is left each time a score
#: improves; latency and size always improve a little, so one endless run
#: ended up climbing and no longer exploring (a seeded defect one label
#: away went unfound for minutes).  Bounded runs, and metrics reported in
#: one run out of STEER_EVERY only, keep climbing to about a tenth of a
#: campaign.
RUN_EXAMPLES = 2000
STEER_EVERY = 4
#: Seconds of a protocol turn and of a state machine's turn when a campaign
#: mixes them (``--stateful mix``; alone, ``only``, the machines take turns).
#: A machine's first turn is shorter and a protocol turn lasts an eighth of a
#: shorter campaign, so that every campaign visits every machine early: a
#: 60 s one with the four machines runs protocol programs for about 45 s.
PROTOCOL_SLICE = 10.0
STATEFUL_SLICE = 5.0
FIRST_STATEFUL_SLICE = 2.0
#: Machine runs a stateful turn takes at most (a turn is a Hypothesis run).
STATEFUL_RUN_EXAMPLES = 200


class CampaignOver(BaseException):
    """The deadline or the example budget is reached (not a test failure)."""


class FoundBug(Exception):
    """A new confirmed finding: makes Hypothesis shrink the example."""


class Deferred(BaseException):
    """An example judged late broke a rule: end this run, shrink it in its own."""


@dataclass
class CampaignConfig:
    """What one campaign runs: the target string, the output folder, the budget
    (``duration`` in seconds, ``max_examples``) and what to generate;
    ``deadline`` is set by :meth:`Campaign.run`."""

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
    #: The stateful machines: "off", "mix" (turns with the protocol programs)
    #: or "only" (see conformance.fuzz.stateful).
    stateful: str = "off"
    #: The machines to run (class names), when not every one the target can run.
    machines: tuple[str, ...] = ()
    deadline: float = field(init=False, default=0.0)


@dataclass(frozen=True)
class Rig:
    """What a set-up campaign runs on: built once from the probed target."""

    profile: TargetProfile
    gen: GenConfig
    executor: Executor
    judge: Judge
    #: Examples sent and not judged yet, tagged with their choice sequences.
    pipeline: Pipeline[bytes]
    #: IN_FLIGHT when examples overlap (see the module's docstring), else 1.
    lanes: int

    @classmethod
    def build(cls, executor: Executor, cfg: CampaignConfig) -> Rig:
        """Probe the executor's target and build the rest on what it is.

        Raises :class:`TargetError` or :class:`QAPIError` (see
        :meth:`Campaign.setup`).
        """
        profile = probe(executor.target, cfg.schema_path)
        gen = GenConfig.for_schema(
            profile.schema,
            cfg.commands,
            oob_offered="oob" in profile.capabilities,
            max_connections=profile.connections,
            fresh_one_in=64 if profile.restarts else 8,
            max_steps=cfg.max_steps,
        )
        if not gen.commands:
            raise TargetError(f"no command of {cfg.target} matches {', '.join(cfg.commands)}")
        executor.concurrent = profile.restarts or gen.max_connections > 1
        # Overlapping needs a second set of connections: a socket that serves
        # one client at a time (QEMU's) runs its examples in step.
        lanes = IN_FLIGHT if executor.concurrent and not cfg.db_only else 1
        return cls(
            profile,
            gen,
            executor,
            Judge(Specs(profile.schema), cfg.dialect),
            Pipeline(executor, lanes),
            lanes,
        )


class Campaign:
    """A fuzzing campaign against one target (see the module docstring).

    Construction only creates the findings folder under ``config.out_dir``
    (raises :class:`OSError` when it cannot); the target is started by
    :meth:`setup`, or by entering the campaign as a context manager.
    """

    def __init__(self, config: CampaignConfig, stats: Stats | None = None) -> None:
        self.config = config
        self.stats = stats or Stats()
        self.confirmer = Confirmer(
            FindingStore(config.out_dir, config.target), self.stats, self._found
        )
        #: What the campaign runs on, once set up (see :class:`Rig`).
        self._rig: Rig | None = None
        #: Whether the running Hypothesis test judges its examples in place.
        self.in_step = True
        self.measure = Measure(self.stats, config.record, config.on_example)
        self.stop_requested = False
        #: Examples found wrong late, with the idents they showed, to shrink.
        self.to_shrink: list[tuple[bytes, set[str]]] = []
        #: The stateful machines the target can run, and their turns (set up
        #: when the campaign runs them).
        self.machines: list[type[TargetMachine]] = []
        self.stateful: Turns | None = None
        self._driver: Driver | None = None
        #: When the running turn's time is up.
        self.slice_end = float("inf")
        #: Whether a protocol run found nothing left to generate (mixed turns skip it).
        self._protocol_spent = False

    # -- setup ------------------------------------------------------------------

    def setup(self) -> None:
        """Start the target, probe it once and build what the examples run on.

        Raises :class:`TargetError` when the target cannot be started or
        probed, or when no command matches ``--commands``, and
        :class:`QAPIError` when the schema it gives (or the fallback) is invalid.
        """
        cfg = self.config
        executor = Executor(target_factory(cfg.target), cfg.probe_timeout)
        try:
            self._rig = Rig.build(executor, cfg)
        except BaseException:
            executor.close()
            raise
        if not self._rig.profile.introspected:
            self.stats.errors["harness:introspection-failed"] = 1
        if cfg.stateful != "off":
            self._setup_stateful()

    def _setup_stateful(self) -> None:
        """Bind the machines to the target and plan which can run.

        Raises :class:`TargetError` when the campaign runs machines only and
        the target can run none of them.
        """
        cfg = self.config
        profile = self.rig.profile
        self._driver = Driver(
            lambda: self.rig.executor.target,
            self._restart,
            reply_timeout=max(5.0, 2 * cfg.probe_timeout),
            worker=cfg.worker,
        )
        self.machines, skipped = self._driver.plan(
            profile.schema, profile.capabilities, cfg.machines
        )
        self.stats.stateful_skipped.update(skipped)
        if not self.machines and cfg.stateful == "only":
            why = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
            raise TargetError(f"no stateful machine can run on {cfg.target}: {why or 'none named'}")
        self.stateful = Turns(
            self._driver,
            self.confirmer,
            self.stats,
            self._before_stateful,
            database=cfg.database,
            seed=cfg.seed,
            worker=cfg.worker,
            db_only=cfg.db_only,
        )

    @property
    def rig(self) -> Rig:
        """What the campaign runs on; raises RuntimeError before :meth:`setup`."""
        if self._rig is None:
            raise RuntimeError("the campaign is not set up: use it as a context manager")
        return self._rig

    @property
    def lanes(self) -> int:
        """Examples in flight at once (1: judged in step); raises
        :class:`RuntimeError` before :meth:`setup`."""
        return self.rig.lanes

    def close(self) -> None:
        """Stop the target and close every connection (idempotent)."""
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        if self._rig is not None:
            self._rig.executor.close()
            self._rig = None

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
        """Run until the deadline/budget (or Ctrl-C); the stats of the campaign.

        Sets the campaign up first when that was not done, raising what
        :meth:`setup` raises.  Raises :class:`KeyboardInterrupt` on Ctrl-C or
        after :meth:`request_stop`, and the harness's own exception when five
        Hypothesis runs in a row end with one.  A target that cannot be reached
        again ends the run normally, with ``stats.gone`` set.
        """
        cfg = self.config
        if self._rig is None:
            self.setup()
        start = time.monotonic()
        cfg.deadline = start + cfg.duration if cfg.duration else float("inf")
        strategy = programs(self.rig.gen)
        run_index = 0
        failures_in_a_row = 0
        schedule = self._schedule()
        protocol_turn = False
        try:
            while not self._over():
                # Examples found wrong late are shrunk in protocol turns: when
                # mixing, in the turn's time (the one in progress is not cut).
                if self.to_shrink and protocol_turn and time.monotonic() < self.slice_end:
                    self._shrink_next(strategy, run_index)
                    run_index += 1
                    continue
                turn = next(schedule, None)
                if turn is None:
                    break  # a single pass (--db-only, no budget) is over
                machine, seconds = turn
                protocol_turn = machine is None
                self.slice_end = time.monotonic() + seconds if seconds else float("inf")
                if protocol_turn and self.to_shrink:
                    continue
                before = self.stats.examples
                try:
                    try:
                        if machine is None:
                            self._hypothesis_test(strategy, run_index, in_step=self.lanes == 1)()
                        else:
                            self._stateful_turn(machine, run_index)
                    finally:
                        self._flush()
                    failures_in_a_row = 0
                    unbounded = cfg.duration is None and cfg.max_examples is None
                    # The search space is exhausted.
                    spent = machine is None and self.stats.examples == before
                    if cfg.stateful == "off":
                        if (cfg.db_only or unbounded or spent) and not self.to_shrink:
                            break
                    elif spent:
                        self._protocol_spent = True
                except (FoundBug, StatefulBug, Flaky, TurnOver):
                    # Flaky: shrinking was cut short by the budget below, so
                    # the final replay of the minimal example passed.  The
                    # finding is on disk either way.
                    failures_in_a_row = 0
                except Deferred:
                    # Found late: shrunk by the next turn of the loop, so it
                    # is not "known" yet.
                    self.confirmer.seen_this_run = set()
                    failures_in_a_row = 0
                except (CampaignOver, KeyboardInterrupt):
                    raise
                except unittest.SkipTest:
                    # --db-only with an empty database: nothing to replay
                    if cfg.stateful == "off":
                        break
                except Exception as exc:
                    failures_in_a_row += 1
                    name = type(exc).__name__
                    self.stats.errors[f"harness:{name}"] = (
                        self.stats.errors.get(f"harness:{name}", 0) + 1
                    )
                    if failures_in_a_row >= 5:
                        raise
                self._end_run()
                run_index += 1
        except (CampaignOver, Deferred):
            pass
        except TargetGone as exc:
            self.stats.gone = str(exc)
        return self.stats

    def _schedule(self) -> Iterator[tuple[type[TargetMachine] | None, float | None]]:
        """The campaign's turns: (a machine, or None for protocol programs; the
        turn's seconds, None for no limit).  See the module docstring."""
        cfg = self.config
        if cfg.stateful == "off":
            while True:
                yield None, None
        mixed = cfg.stateful == "mix"
        if cfg.db_only or (cfg.duration is None and cfg.max_examples is None):
            # One pass: every kind of example once, each run to its end.
            if mixed:
                yield None, None
            for each in self.machines:
                yield each, None
            return
        turns: list[type[TargetMachine] | None] = [*self.machines] or [None]
        protocol = min(PROTOCOL_SLICE, cfg.duration / 8) if cfg.duration else PROTOCOL_SLICE
        seconds = FIRST_STATEFUL_SLICE
        while self.machines or mixed:
            for turn in turns:
                if mixed and not self._protocol_spent:
                    yield None, protocol
                if turn is not None:
                    yield turn, seconds
            seconds = STATEFUL_SLICE
            if mixed and self._protocol_spent and not self.machines:
                return

    def _stateful_turn(self, machine: type[TargetMachine], run_index: int) -> None:
        """One turn of ``machine`` (see :meth:`Turns.run`)."""
        if self.stateful is None:
            raise RuntimeError("the campaign runs no stateful machines")
        # A socket that serves one client at a time must be free for the machine.
        self.rig.executor.drop_all()
        cfg = self.config
        budget = STATEFUL_RUN_EXAMPLES
        if cfg.max_examples is not None:
            budget = min(budget, cfg.max_examples - self._examples())
        self.stateful.run(machine, run_index, budget)

    def _before_stateful(self, shrinking: bool) -> None:
        """Before each machine run: stop at the deadline, the budget or Ctrl-C, and
        at the end of the turn unless a finding is being shrunk."""
        if self._over():
            raise CampaignOver
        if not shrinking and time.monotonic() >= self.slice_end:
            raise TurnOver
        if self.config.on_example is not None:
            self.config.on_example(self.stats)

    def _examples(self) -> int:
        """Examples run so far: protocol programs and machine runs."""
        return self.stats.examples + self.stats.stateful_examples

    def _found(self, ident: str, path: str) -> None:
        # Read at each finding: callers may set ``on_finding`` after construction.
        if self.config.on_finding is not None:
            self.config.on_finding(ident, path)

    def _end_run(self) -> None:
        self.confirmer.end_run()

    @property
    def known(self) -> set[str]:
        """Findings recorded by earlier Hypothesis runs of this campaign."""
        return self.confirmer.known

    def _shrink_next(self, strategy: SearchStrategy[Program], run_index: int) -> None:
        """Replay one example found wrong late, in step, and let Hypothesis shrink it."""
        choices, idents = self.to_shrink.pop(0)
        if idents <= self.known:
            return
        # A secondary entry, not a primary one: Hypothesis takes a primary
        # entry that fails exactly as it was stored for one already shrunk.
        scratch = InMemoryExampleDatabase()
        scratch.save(KEY + b".secondary", choices)
        test = self._hypothesis_test(
            strategy, run_index, in_step=True, database=scratch, phases=(Phase.reuse, Phase.shrink)
        )
        try:
            test()
        except (FoundBug, Flaky, TurnOver):
            pass
        finally:
            if self.config.database is not None:
                for value in scratch.fetch(KEY):
                    self.config.database.save(KEY, value)
            # Whatever happened, these findings are on disk: stop chasing them.
            self.confirmer.seen_this_run |= idents
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
            cfg.max_examples is not None and self._examples() >= cfg.max_examples
        )

    def _turn_over(self) -> bool:
        """Whether the time of the running turn is up: a run that shrinks a
        finding it made may go on for SHRINK_SECONDS past it."""
        now = time.monotonic()
        if now < self.slice_end:
            return False
        return not self.confirmer.seen_this_run or now >= self.slice_end + SHRINK_SECONDS

    def _hypothesis_test(
        self,
        strategy: SearchStrategy[Program],
        run_index: int,
        *,
        in_step: bool,
        database: ExampleDatabase | None = None,
        phases: tuple[Phase, ...] | None = None,
    ) -> Callable[[], None]:
        cfg = self.config
        remaining = (cfg.max_examples - self._examples()) if cfg.max_examples else 10**9
        if cfg.duration is not None or cfg.max_examples is not None:
            remaining = min(remaining, RUN_EXAMPLES)
        example = self._example if in_step else self._example_overlapped

        def fuzz_qmp_target(program: Program) -> None:
            example(program)

        wrapped: Callable[[], None] = given(strategy)(fuzz_qmp_target)
        if cfg.seed is not None:
            # Before settings: hypothesis.seed() switches the database off, and
            # the settings applied after it switch it back on.
            seeded: Callable[[Callable[[], None]], Callable[[], None]] = hypothesis.seed(
                cfg.seed + 7919 * run_index + 104729 * cfg.worker
            )
            wrapped = seeded(wrapped)
        db = cfg.database if database is None else database
        if phases is None:
            # The last of every STEER_EVERY runs climbs: a short campaign explores first.
            steered = run_index % STEER_EVERY == STEER_EVERY - 1
            self.measure.steering = steered
            chosen = campaign_settings(db, remaining, db_only=cfg.db_only, steered=steered)
        else:
            chosen = campaign_settings(db, remaining, db_only=cfg.db_only, phases=phases)
        test: Callable[[], None] = chosen(wrapped)
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
        if self._turn_over():
            raise TurnOver
        self.measure.guide(program)
        obs = self._execute(program, fresh=False)
        violations = self.rig.judge(obs)
        self.measure.account(obs, in_step=self.in_step)
        # Bugs recorded by an earlier run, or shrunk as far as this run
        # allows, are not confirmed again: they no longer fail the example,
        # and confirming costs a fresh connection.
        violations = [v for v in violations if not self.confirmer.settled(v)]
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
        if self._turn_over():
            raise TurnOver
        self.measure.guide(program)
        choices = current_choices()
        try:
            done = self.rig.pipeline.push(program, choices)
        except TargetError:
            # The target went away between examples: judge what was in flight
            # (a crash shows there), bring it back and send this one again.
            self._judge_late(self.rig.pipeline.drain())
            self._restart()
            done = self.rig.pipeline.push(program, choices, fresh=True)
        self._judge_late(done)

    def _flush(self) -> None:
        """Judge every example still in flight."""
        if self._rig is not None:
            self._judge_late(self._rig.pipeline.drain())

    def _judge_late(self, done: list[tuple[bytes, Observation]]) -> None:
        judged = [(choices, obs, self._judged(obs)) for choices, obs in done]
        if not any(violations for _c, _o, violations in judged):
            return
        # Confirming needs fresh connections: first read what the examples
        # still in flight are owed, then confirm each one that broke a rule.
        judged += [(choices, obs, self._judged(obs)) for choices, obs in self.rig.pipeline.drain()]
        found: set[str] = set()
        for index, (choices, obs, violations) in enumerate(judged):
            try:
                new = self._confirm(obs, violations) if violations else set()
            except TargetGone:
                # Whichever example killed it, its own transcript is the evidence.
                for _choices, other, other_violations in judged[index + 1 :]:
                    for v in other_violations:
                        self.confirmer.record(v, other)
                raise
            if new:
                self.to_shrink.append((choices, new))
                found |= new
        if found:
            raise Deferred(", ".join(sorted(found)))

    def _judged(self, obs: Observation) -> list[Violation]:
        """Account for ``obs``; its violations of bugs not recorded before."""
        self.measure.account(obs, in_step=self.in_step)
        return [v for v in self.rig.judge(obs) if not self.confirmer.settled(v)]

    def _execute(self, program: Program, fresh: bool) -> Observation:
        try:
            return self.rig.executor.run(program, fresh=fresh)
        except TargetError:
            # The target went away between examples (killed from outside, or a
            # crash after the last probe): bring it back and run again.
            self._restart()
            return self.rig.executor.run(program, fresh=True)

    def _restart(self) -> None:
        self.stats.restarts += 1
        self.rig.executor.restart()

    def _confirm(self, obs: Observation, violations: list[Violation]) -> set[str]:
        """See :meth:`Confirmer.confirm`; raises TargetGone."""
        return self.confirmer.confirm(obs, violations, self._rerun, self._restart, self.rig.judge)

    def _rerun(self, program: Program) -> Observation:
        return self._execute(program, fresh=True)
