"""Stateful campaigns: the state machines of :mod:`strategies.stateful` run
against a campaign's target, their failures kept as findings and replayed.

A machine run is one Hypothesis example: it opens one connection (on a
``spawn:`` target, one process), runs up to :data:`STEPS` rules and checks
the machine's invariants after each.  What breaks a rule (the machine's
:class:`~strategies.stateful.Broken`: J1-J8 of
:data:`conformance.protocol.jobs.JOB_RULES`, or a Q-number) or stops
answering (no reply, Q16 ``no-reply``; the connection closed, Q16
``connection-closed``) ends the run.  The first time a campaign sees a
failure it *confirms* it: the run's steps are replayed on a fresh
connection (:meth:`Driver.replay`), and only a failure with the same rule
and signature is a finding.  The finding file holds the steps
(:class:`~conformance.fuzz.program.MachineRun`) and the transcript of the
confirming run; as Hypothesis shrinks the step sequence, every smaller
failing run replaces it (fewer steps, then fewer bytes).  ``qmp-conform
replay`` runs the steps again the same way.

What the target refuses to set up (a node, a job: the machine's
:class:`~strategies.stateful.Refused`) is no finding: the run is discarded
and counted in the summary's errors.  Failures already recorded by an
earlier Hypothesis run of the campaign discard the run too, so that the
search goes on.

The snapshot machine needs a node that holds internal snapshots
(:class:`SnapshotNodes`): a qcow2 node over ``null-co`` on the bundled
reference server, a qcow2 image made with ``qemu-img`` in a scratch folder
for any other target on this host.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

import hypothesis
from hypothesis.database import ExampleDatabase
from hypothesis.errors import Unsatisfiable

from conformance import images
from conformance.confine import confined
from conformance.fuzz.confirm import Confirmer, TargetGone
from conformance.fuzz.database import KEY
from conformance.fuzz.hypothesis_compat import (
    campaign_settings,
    invariants,
    rule_names,
    state_machine_test,
)
from conformance.fuzz.oracles import Violation
from conformance.fuzz.program import MachineRun
from conformance.fuzz.progress import Stats
from conformance.qapi.model import Schema
from conformance.session import ReplyTimeout, Session
from conformance.transport import ConnectionClosed, Target, TargetError
from strategies.stateful import (
    BlockJobMachine,
    Broken,
    JobFrameworkMachine,
    NegotiationMachine,
    Refused,
    SnapshotJobMachine,
    TargetMachine,
    bind,
)

#: ``--stateful``: no machines (the default), machines mixed with protocol
#: programs, machines alone.
MODES = ("off", "mix", "only")
#: Every machine a campaign runs, in the order its turns visit them: the
#: snapshot machine first, as it reaches every job rule it checks in one step.
MACHINES: tuple[type[TargetMachine], ...] = (
    SnapshotJobMachine,
    BlockJobMachine,
    JobFrameworkMachine,
    NegotiationMachine,
)
BY_NAME: dict[str, type[TargetMachine]] = {m.__name__: m for m in MACHINES}
#: Rules a machine run takes at most (Hypothesis's ``stateful_step_count``).
STEPS = 12
#: Seconds Hypothesis may spend shrinking a stateful failure in one turn: each
#: try is a whole run (a connection, a dozen steps), so shrinking is bounded;
#: the finding file holds the smallest run seen by then.
SHRINK_SECONDS = 30.0
#: A new connection's greeting may take this long (a spawned QEMU starts first).
GREETING_TIMEOUT = 5.0
#: What ends a machine run as a failure of the target (or a refusal).
FAILURES: tuple[type[BaseException], ...] = (
    Broken,
    Refused,
    ReplyTimeout,
    ConnectionClosed,
    TimeoutError,
)


class TurnOver(BaseException):
    """The time of a campaign's turn is up (not a test failure): the Hypothesis
    run in progress ends, and the campaign goes on with its next turn."""


class StatefulBug(Exception):
    """A new stateful finding: fails the example so that Hypothesis shrinks it.

    One subclass per finding (see :func:`_bug`): Hypothesis tells failures
    apart by exception type and place, and must shrink each toward itself.
    """


_BUGS: dict[str, type[StatefulBug]] = {}


def _bug(ident: str) -> type[StatefulBug]:
    if ident not in _BUGS:
        _BUGS[ident] = type(f"Found_{ident.replace('-', '_')}", (StatefulBug,), {})
    return _BUGS[ident]


def machine_class(name: str) -> type[TargetMachine]:
    """The machine class called ``name``; :class:`ValueError` for no such machine."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"no stateful machine {name!r} (known: {', '.join(BY_NAME)})") from None


def classify(machine: str, failure: BaseException) -> Violation:
    """The violation a failure of ``machine``'s run stands for (oracle ``stateful``):
    the rule a :class:`Broken` names, else Q16 (the target stopped answering)."""
    if isinstance(failure, Broken):
        return Violation(
            failure.rule, "stateful", failure.slug, failure.detail, (machine, *failure.key)
        )
    if isinstance(failure, ConnectionClosed):
        return Violation(
            "Q16",
            "stateful",
            "connection-closed",
            f"the server closed the connection: {failure}",
            (machine,),
        )
    return Violation(
        "Q16", "stateful", "no-reply", f"the server stopped answering: {failure}", (machine,)
    )


@dataclass
class RunOutcome:
    """How one replayed run of a machine went: what it broke (None: nothing),
    what the target refused (None: nothing), its transcript and steps."""

    violation: Violation | None
    refused: str | None
    transcript: list[str]
    run: MachineRun


def render(session: Session | None, violation: Violation | None = None) -> list[str]:
    """A machine's transcript in a finding's form (``c0``: its one connection),
    with the broken rule noted at the point it was seen."""
    if session is None:
        return []
    transcript = session.transcript
    if violation is not None:
        transcript.note(f"{violation.rule} {violation.slug}: {violation.summary}")
    lines = [f"[{e.t:9.4f}s] c0 {e.render().split('] ', 1)[1]}" for e in transcript.entries]
    if transcript.dropped:
        lines.append(f"... [{transcript.dropped} further bytes not recorded] ...")
    return lines


def sent_bytes(session: Session | None) -> int:
    """Bytes a machine's session sent."""
    if session is None:
        return 0
    return sum(e.size for e in session.transcript.entries if e.direction == "->")


class SnapshotNodes:
    """Nodes that hold internal snapshots, for the snapshot machine: a qcow2 node
    over ``null-co`` on the bundled reference server (it keeps snapshots in
    memory), else a qcow2 image made with ``qemu-img`` in a scratch folder of
    this host, removed when the run ends.  ``reason`` says why there can be
    none (the machine is then skipped)."""

    #: Virtual size of each image: room for a few snapshots of a bare machine.
    IMAGE_SIZE = "16M"

    def __init__(self, target: Target) -> None:
        self.in_memory = target.kind == "reference"
        self.reason: str | None = None
        if not self.in_memory:
            if not target.local:
                self.reason = "the target is not on this host: it cannot open an image made here"
            elif confined(target.spec):
                self.reason = "a confined target sees no folder of the harness's"
            elif shutil.which("qemu-img") is None:
                self.reason = "qemu-img is not installed (Debian's qemu-utils)"
        self.folder: str | None = None
        self.made: list[str] = []
        self._counter = itertools.count()

    def __call__(self, name: str) -> dict[str, Any]:
        """``blockdev-add`` arguments for a fresh snapshot-capable node ``name``.

        Raises :class:`Refused` when no image can be made.
        """
        if self.in_memory:
            return {"driver": "qcow2", "node-name": name, "file": {"driver": "null-co"}}
        if self.reason is not None:
            raise Refused(self.reason)
        if self.folder is None:
            self.folder = tempfile.mkdtemp(prefix="qmp-conform-stateful-")
            os.chmod(self.folder, 0o755)  # QEMU may run as another user
        image = os.path.join(self.folder, f"{name}-{next(self._counter)}.qcow2")
        try:
            images.qemu_img("create", "-q", "-f", "qcow2", image, self.IMAGE_SIZE)
        except images.ImageError as exc:
            raise Refused(str(exc)) from None
        os.chmod(image, 0o666)
        self.made.append(image)
        return {"driver": "qcow2", "node-name": name, "file": {"driver": "file", "filename": image}}

    def cleanup(self) -> None:
        """Remove the images made so far (a run that used them has ended)."""
        for image in self.made:
            with contextlib.suppress(OSError):
                os.unlink(image)
        self.made.clear()

    def close(self) -> None:
        """Remove the images and the scratch folder."""
        self.cleanup()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class Driver:
    """Machines bound to one target: how they connect (``target_of`` gives the
    current target; ``restart``, when given, brings a dead one back once),
    their snapshot nodes, names and reply timeout; and replays of stored runs.

    Names: on a target that outlives the driver (a socket), node and job
    names start from a number of their own, so that they do not clash with
    those of an earlier campaign or replay.
    """

    def __init__(
        self,
        target_of: Callable[[], Target],
        restart: Callable[[], None] | None = None,
        reply_timeout: float = 10.0,
        worker: int = 0,
    ) -> None:
        self.target_of = target_of
        self.restart = restart
        self.reply_timeout = reply_timeout
        target = target_of()
        self.nodes = SnapshotNodes(target)
        fresh = target.kind in ("spawn", "reference", "served")
        start = 0 if fresh else int(time.time() * 1000) % 10**9 * 10
        self.names: Iterator[int] = itertools.count(start + 1_000_000 * worker)
        #: The session the last connect opened (a run that fails while setting
        #: up has none of its own to show).
        self.last: Session | None = None

    def connect(self) -> Session:
        """A new, greeted connection to the target (see the class docstring).

        Raises :class:`Broken` (Q7) when no greeting comes, ConnectionClosed
        when the stream ends first, and TargetError when the target cannot be
        reached (after one restart, when the driver may restart it).
        """
        try:
            conn = self.target_of().connect()
        except TargetError:
            if self.restart is None:
                raise
            self.restart()
            conn = self.target_of().connect()
        session = Session(conn, label="c0")
        self.last = session
        if session.read_greeting(GREETING_TIMEOUT) is None:
            raise Broken("Q7", "no-greeting", "no greeting on a new connection")
        return session

    def plan(
        self,
        schema: Schema,
        capabilities: tuple[str, ...] | list[str],
        wanted: tuple[str, ...] = (),
    ) -> tuple[list[type[TargetMachine]], dict[str, str]]:
        """The machines that can run on a target with ``schema`` whose greeting
        offers ``capabilities`` (only those named in ``wanted``, when given),
        and why each other one cannot."""
        runnable: list[type[TargetMachine]] = []
        skipped: dict[str, str] = {}
        for machine in MACHINES:
            name = machine.__name__
            missing = [c for c in machine.requires if c not in schema.commands]
            lacking = [c for c in machine.offers if c not in capabilities]
            if wanted and name not in wanted:
                continue
            if missing:
                skipped[name] = f"the target has no {', '.join(missing)}"
                if "snapshot-save" in missing:
                    skipped[name] += " (QEMU runs internal snapshots as jobs since 6.0)"
            elif lacking:
                skipped[name] = f"the greeting does not offer {', '.join(lacking)}"
            elif machine is SnapshotJobMachine and self.nodes.reason is not None:
                skipped[name] = self.nodes.reason
            else:
                runnable.append(machine)
        return runnable, skipped

    def bind(self, machine: type[TargetMachine], base: type[TargetMachine] | None = None) -> Any:
        """``machine`` (or ``base``, a subclass of it) bound to this driver's target."""
        return bind(
            base or machine,
            self.connect,
            names=self.names,
            reply_timeout=self.reply_timeout,
            node_arguments=self.nodes,
        )

    def replay(self, machine: str | type[TargetMachine], steps: list[dict[str, Any]]) -> RunOutcome:
        """Run ``machine`` through ``steps`` on a fresh connection, checking its
        invariants after construction and after each step, then its teardown,
        as Hypothesis runs it; a step's argument equal to an earlier step's
        stored return value gets the value this run returned instead.

        Raises :class:`ValueError` for an unknown machine or a step that is
        none of its rules, and :class:`TargetError` when the target cannot be
        reached.
        """
        cls = machine_class(machine) if isinstance(machine, str) else machine
        rules = rule_names(cls)
        for entry in steps:
            name = str(entry.get("step"))
            if name not in rules:
                raise ValueError(f"{cls.__name__} has no rule {name!r}")
            try:
                inspect.signature(getattr(cls, name)).bind(None, **entry.get("args", {}))
            except TypeError as exc:
                raise ValueError(f"{cls.__name__}.{name}: {exc}") from None
        checks = invariants(cls)
        bound = self.bind(cls)
        self.last = None
        instance: TargetMachine | None = None
        failure: BaseException | None = None
        returned: dict[str, Any] = {}
        try:
            instance = bound()
            for check in checks:
                check(instance)
            for entry in steps:
                arguments = {
                    key: returned.get(value, value) if isinstance(value, str) else value
                    for key, value in entry.get("args", {}).items()
                }
                result = getattr(instance, entry["step"])(**arguments)
                if "returns" in entry:
                    returned[entry["returns"]] = result
                for check in checks:
                    check(instance)
        except FAILURES as exc:
            failure = exc
        if instance is not None and failure is None:
            try:
                instance.teardown()
            except FAILURES as exc:
                failure = exc
        session = instance.session if instance is not None else self.last
        if session is not None:
            session.close()
        self.nodes.cleanup()
        journal = list(instance.journal) if instance is not None else []
        run = MachineRun(cls.__name__, journal, sent_bytes(session))
        if isinstance(failure, Refused):
            return RunOutcome(None, str(failure), render(session), run)
        violation = None if failure is None else classify(cls.__name__, failure)
        return RunOutcome(violation, None, render(session, violation), run)

    def close(self) -> None:
        """Remove what the snapshot machine left on this host."""
        self.nodes.close()


@dataclass
class Turns:
    """The stateful turns of one campaign: each runs one machine as a Hypothesis
    test on ``driver``'s target, records confirmed failures through
    ``confirmer`` and counts runs in ``stats``.

    ``before_example`` is the campaign's check before each run (its deadline,
    Ctrl-C, the end of the turn when not shrinking); it raises to stop.
    """

    driver: Driver
    confirmer: Confirmer
    stats: Stats
    before_example: Callable[[bool], None]
    database: ExampleDatabase | None = None
    seed: int | None = None
    worker: int = 0
    db_only: bool = False
    #: When the running turn first failed (shrinking since), else None.
    failed_at: float | None = field(default=None, init=False)

    def run(self, machine: type[TargetMachine], run_index: int, max_examples: int) -> None:
        """One turn of ``machine``: at most ``max_examples`` runs, until a new
        finding is shrunk (raises :class:`StatefulBug`), or the campaign's
        ``before_example`` stops it (what it raises).  Runs that all met
        known findings end the turn quietly.

        Raises :class:`TargetGone` when the target cannot be reached again,
        and whatever a harness error inside a run raises.
        """
        self.failed_at = None
        guarded = self._guarded(machine)
        if self.seed is not None:
            # On the machine, not the test: hypothesis.seed switches the
            # database of what it decorates off, and the test keeps the settings.
            hypothesis.seed(self.seed + 7919 * run_index + 104729 * self.worker)(guarded)
        key = KEY + b".stateful." + machine.__name__.encode()
        test = state_machine_test(guarded, self._settings(max_examples), key)
        with contextlib.suppress(Unsatisfiable):  # every run met a known finding
            test()

    def _settings(self, max_examples: int) -> hypothesis.settings:
        return campaign_settings(
            self.database, max_examples, db_only=self.db_only, stateful_step_count=STEPS
        )

    def _starting(self, name: str) -> None:
        shrinking = self.failed_at is not None
        if self.failed_at is not None and time.monotonic() - self.failed_at > SHRINK_SECONDS:
            raise TurnOver
        self.before_example(shrinking)
        self.stats.stateful_examples += 1
        self.stats.stateful_machines[name] = self.stats.stateful_machines.get(name, 0) + 1

    def _guarded(self, machine: type[TargetMachine]) -> Any:
        """``machine`` bound to the target, with every failure of a run (in its
        construction, a rule, an invariant or its teardown) concluded by
        :meth:`_conclude`: a finding fails the run, anything else discards it."""
        turns = self

        class Guarded(machine):  # type: ignore[valid-type, misc]
            def __init__(self) -> None:
                turns._starting(machine.__name__)
                # A failure already being handled around the run is not the run's.
                self._outer = sys.exc_info()[1]
                failure: BaseException | None = None
                try:
                    super().__init__()
                except FAILURES as exc:
                    failure = exc
                except TargetError as exc:
                    raise TargetGone(str(exc)) from exc
                if failure is not None:
                    session = getattr(self, "session", None) or turns.driver.last
                    if session is not None:
                        session.close()
                    turns._conclude(self, session, failure)

            def teardown(self) -> None:
                # Called in a finally clause: an exception in flight ended the
                # run, and only a run that ended well is judged at its teardown.
                in_flight = sys.exc_info()[1]
                if in_flight is self._outer:
                    in_flight = None
                failure = in_flight if isinstance(in_flight, FAILURES) else None
                if in_flight is None:
                    try:
                        super().teardown()
                    except FAILURES as exc:
                        failure = exc
                self.session.close()
                if failure is not None:
                    turns._conclude(self, self.session, failure)
                turns.driver.nodes.cleanup()

        Guarded.__name__ = Guarded.__qualname__ = machine.__name__
        return self.driver.bind(machine, Guarded)

    def _conclude(
        self, machine: TargetMachine, session: Session | None, failure: BaseException
    ) -> NoReturn:
        """What a failed run comes to: a refusal or a known finding discards the
        run (Hypothesis's ``reject``); a new failure is confirmed by a replay
        of the run's steps the first time the campaign sees it, then written
        to its finding file, and fails the run (:class:`StatefulBug`)."""
        self.driver.nodes.cleanup()
        name = type(machine).__name__
        if isinstance(failure, Refused):
            key = f"stateful:refused:{name}"
            self.stats.errors[key] = self.stats.errors.get(key, 0) + 1
            hypothesis.reject()
        violation = classify(name, failure)
        run = MachineRun(name, list(getattr(machine, "journal", [])), sent_bytes(session))
        transcript = render(session, violation)
        try:
            if violation.rule == "Q16" and self.driver.restart is not None:
                # It died or hangs: what comes next (a confirmation too) needs it back.
                self.driver.restart()
            if self.confirmer.settled(violation):
                hypothesis.reject()
            if violation.ident not in self.stats.findings:
                self.stats.confirmations += 1
                again = self.driver.replay(name, run.steps)
                if again.violation is None or again.violation.ident != violation.ident:
                    self.stats.unconfirmed += 1
                    hypothesis.reject()
                # Steps, names and summary as the transcript shows them.
                violation, run, transcript = again.violation, again.run, again.transcript
        except TargetError as exc:
            # Gone for good: this run's own transcript is the evidence there is.
            self.confirmer.keep(self.confirmer.store.finding(violation, run, transcript))
            raise TargetGone(str(exc)) from exc
        if self.failed_at is None:
            self.failed_at = time.monotonic()
        self.confirmer.seen_this_run.add(violation.ident)
        self.confirmer.keep(self.confirmer.store.finding(violation, run, transcript))
        raise _bug(violation.ident)(violation.summary)
