"""Block jobs and the job framework as state machines.

Jobs run on ``null-co`` nodes (no disk I/O; a speed limit keeps a mirror
running long enough to pause it).  The machines keep the event history of
every job and check, after every step:

* every ``JOB_STATUS_CHANGE`` follows QEMU's job state machine
  (``conformance.protocol.jobs``, the transition table of QEMU's ``job.c``);
* ``query-block-jobs`` / ``query-jobs`` agree with the events seen: a listed
  job's status is one the events took it through, and a job that is gone
  was dismissed (``null``);
* no job has more than one terminal event (BLOCK_JOB_COMPLETED, _CANCELLED,
  _ERROR), and at teardown every job has ended with exactly one.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from conformance.protocol.jobs import LEGAL_TRANSITIONS, TERMINAL_EVENTS
from conformance.protocol.values import as_object
from conformance.session import Message, Session
from strategies.stateful.target import Connect

SPEEDS = (0, 1, 4096, 1 << 20, 1 << 30)
IMAGE_SIZE = 64 << 20


class JobTracker(RuleBasedStateMachine):
    """Event bookkeeping and the invariants every job machine shares; no rules.

    Construction opens a session with ``connect`` and negotiates it.  Raises
    :class:`ReplyTimeout` or :class:`ConnectionClosed`, there and in any step,
    when the target stops answering.
    """

    connect: Connect
    #: "block" lists jobs with query-block-jobs, "job" with query-jobs.
    flavour = "block"

    #: Shared by every run: node and job names stay unique on a long-lived target.
    names = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.session: Session = type(self).connect()
        reply = self.session.negotiate()
        assert reply.ok and "return" in reply.obj, reply.brief()
        self.seen = 0
        self.history: dict[str, list[str]] = {}
        self.terminal: dict[str, list[str]] = {}
        self.started: set[str] = set()

    # -- plumbing -------------------------------------------------------------

    def ask(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``name`` and return its reply as an object (a success or an error;
        a line that is no JSON object fails the step); then take in the events.

        Raises :class:`ReplyTimeout` when no reply comes within 10 s and
        :class:`ConnectionClosed` when the connection ends.
        """
        reply = self.session.execute(name, arguments, timeout=10.0)
        assert reply.ok, reply.brief()
        value: dict[str, Any] = reply.obj
        self.drain(0.0)
        return value

    def drain(self, quiet: float = 0.05) -> None:
        """Take in events: the ones already read, and any arriving within ``quiet``."""
        if quiet:
            self.session.collect(quiet=quiet, timeout=quiet * 4)
        for event in self.session.events[self.seen :]:
            self._event(event)
        self.seen = len(self.session.events)

    def _event(self, event: Message) -> None:
        name = str(event.obj.get("event"))
        data = as_object(event.obj.get("data"))
        if name == "JOB_STATUS_CHANGE":
            job, status = str(data.get("id")), str(data.get("status"))
            steps = self.history.setdefault(job, ["undefined"])
            assert status in LEGAL_TRANSITIONS[steps[-1]], (
                f"job {job}: illegal transition {steps[-1]} -> {status}: {event.brief()}"
            )
            steps.append(status)
        elif name in TERMINAL_EVENTS and name != "BLOCK_JOB_ERROR":
            self.terminal.setdefault(str(data.get("device")), []).append(name)

    def status(self, job: str) -> str:
        """The last status the events gave ``job`` (``undefined`` before any)."""
        return self.history.get(job, ["undefined"])[-1]

    def _listed(self) -> dict[str, str]:
        if self.flavour == "block":
            reply = self.ask("query-block-jobs")
            return {j["device"]: j["status"] for j in reply["return"]}
        reply = self.ask("query-jobs")
        return {j["id"]: j["status"] for j in reply["return"]}

    @invariant()
    def listing_agrees_with_events(self) -> None:
        """Invariant: the job listing shows each job of this run in a status its
        events went through, and a job no longer listed was dismissed (``null``).

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer the listing.
        """
        before = {job: len(steps) for job, steps in self.history.items()}
        listed = self._listed()
        self.drain(0.02)
        for job, status in listed.items():
            if job not in self.started:
                continue  # left over from an earlier run on the same target
            steps = self.history.get(job, ["undefined"])
            # The listing was taken between the events read before and after it.
            window = steps[max(before.get(job, 1) - 1, 0) :]
            assert status in window, f"{job}: listed {status}, events say {steps}"
        for job, steps in self.history.items():
            if job in self.started and job not in listed:
                assert steps[-1] == "null", f"{job} vanished in status {steps[-1]}: {steps}"

    @invariant()
    def at_most_one_end(self) -> None:
        """Invariant: no job has had more than one terminal event."""
        for job, ends in self.terminal.items():
            assert len(ends) <= 1, f"{job} ended more than once: {ends}"


class _JobMachine(JobTracker):
    jobs = Bundle("jobs")

    # -- rules ----------------------------------------------------------------

    @rule(target=jobs, speed=st.sampled_from(SPEEDS))
    def start(self, speed: int) -> str:
        n = next(self.names)
        source, target, job = f"src{n}", f"dst{n}", f"job{n}"
        for node in (source, target):
            self.ask("blockdev-add", {"driver": "null-co", "node-name": node, "size": IMAGE_SIZE})
        reply = self.ask(
            "blockdev-mirror",
            {
                "job-id": job,
                "device": source,
                "target": target,
                "sync": "full",
                "speed": speed,
                "auto-dismiss": False,
            },
        )
        assert reply.get("return") == {}, reply
        self.started.add(job)
        return job

    def _command(self, block: str, generic: str, job: str, **extra: Any) -> dict[str, Any]:
        if self.flavour == "block" or not generic:
            return self.ask(block, {"device": job, **extra})
        return self.ask(generic, {"id": job, **extra})

    @rule(job=jobs)
    def pause(self, job: str) -> None:
        self._command("block-job-pause", "job-pause", job)

    @rule(job=jobs)
    def resume(self, job: str) -> None:
        self._command("block-job-resume", "job-resume", job)

    @rule(job=jobs, speed=st.sampled_from(SPEEDS))
    def set_speed(self, job: str, speed: int) -> None:
        self.ask("block-job-set-speed", {"device": job, "speed": speed})

    @rule(job=jobs, force=st.booleans())
    def cancel(self, job: str, force: bool) -> None:
        if self.flavour == "block":
            self.ask("block-job-cancel", {"device": job, "force": force})
        else:
            self.ask("job-cancel", {"id": job})

    @rule(job=jobs)
    def complete(self, job: str) -> None:
        self._command("block-job-complete", "job-complete", job)

    @rule(job=jobs)
    def dismiss(self, job: str) -> None:
        was = self.status(job)
        reply = self._command("block-job-dismiss", "job-dismiss", job)
        if "return" in reply:
            assert was == "concluded" or self.status(job) == "null", (job, was, reply)
            self.drain(0.05)
            listed = self._listed()
            assert job not in listed, f"{job} still listed after dismiss: {listed[job]}"

    @rule()
    def wait(self) -> None:
        self.drain(0.2)

    def teardown(self) -> None:
        try:
            for job in self.started:
                if self.status(job) not in ("concluded", "null"):
                    self.session.execute("block-job-cancel", {"device": job, "force": True})
            for _ in range(50):
                self.drain(0.1)
                if all(self.status(j) in ("concluded", "null") for j in self.started):
                    break
            for job in self.started:
                ends = self.terminal.get(job, [])
                assert len(ends) == 1, f"{job} ended with {ends} (history {self.history[job]})"
        finally:
            self.session.close()


class BlockJobMachine(_JobMachine):
    """Mirror jobs driven with ``block-job-*`` and watched via ``query-block-jobs``."""

    flavour = "block"


class JobFrameworkMachine(_JobMachine):
    """The same jobs driven with the generic ``job-*`` commands and ``query-jobs``."""

    flavour = "job"
