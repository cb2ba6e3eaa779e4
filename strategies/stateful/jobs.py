"""Block jobs and the job framework as state machines.

Jobs run on ``null-co`` nodes (no disk I/O; a speed limit keeps a mirror
running long enough to pause it).  The machines keep the event history of
every job they start and check, after every step (the job rules of
:data:`conformance.protocol.jobs.JOB_RULES`):

* every ``JOB_STATUS_CHANGE`` follows QEMU's job state machine
  (``conformance.protocol.jobs``, the transition table of QEMU's ``job.c``), J1;
* ``BLOCK_JOB_COMPLETED`` carries ``error`` only for a job that failed
  (went through ``aborting``), J2;
* ``query-block-jobs`` / ``query-jobs`` agree with the events seen: a listed
  job's status is one the events took it through, and a job that is gone
  was dismissed (``null``), J3;
* no job has more than one terminal event (BLOCK_JOB_COMPLETED, _CANCELLED),
  and at teardown every job has ended with exactly one, J5.

Events of jobs the machine did not start (left over on a long-lived target
by an earlier run) are not judged.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, rule

from conformance.protocol.jobs import TERMINAL_EVENTS, transition_allowed
from conformance.protocol.values import as_object
from conformance.session import Message
from strategies.stateful.target import Broken, Refused, TargetMachine, step, wire_broken

SPEEDS = (0, 1, 4096, 1 << 20, 1 << 30)
IMAGE_SIZE = 64 << 20


class JobTracker(TargetMachine):
    """Event bookkeeping and the invariants every job machine shares; no rules.

    Construction opens a session with ``connect`` and negotiates it.  Raises
    :class:`Broken` when the negotiation fails, and ``ReplyTimeout`` or
    ``ConnectionClosed``, there and in any step, when the target stops
    answering.
    """

    #: "block" lists jobs with query-block-jobs, "job" with query-jobs.
    flavour = "block"
    requires: tuple[str, ...] = ("query-block-jobs", "query-jobs")

    #: Shared by every run: node and job names stay unique on a long-lived target.
    names = itertools.count()

    def __init__(self) -> None:
        self.seen = 0
        self.history: dict[str, list[str]] = {}
        self.terminal: dict[str, list[str]] = {}
        #: Jobs this run started (or is starting): only their events are judged.
        self.started: set[str] = set()
        super().__init__()
        reply = self.session.negotiate(timeout=self.reply_timeout)
        if not reply.ok or "return" not in reply.obj:
            raise wire_broken(reply) or Broken(
                "Q12", "negotiation-refused", f"qmp_capabilities failed: {reply.brief()}"
            )

    # -- plumbing -------------------------------------------------------------

    def ask(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run ``name`` and return its reply as an object (a success or an error),
        then take in the events.

        Raises :class:`Broken` for a reply line that is no JSON object (and
        for what the events break), ``ReplyTimeout`` when no reply comes within
        ``reply_timeout`` and ``ConnectionClosed`` when the connection ends.
        """
        reply = self.session.execute(name, arguments, timeout=self.reply_timeout)
        broken = wire_broken(reply)
        if broken is not None:
            raise broken
        value: dict[str, Any] = reply.obj
        self.drain(0.0)
        return value

    def drain(self, quiet: float = 0.05) -> None:
        """Take in events: the ones already read, and any arriving within ``quiet``.

        Raises :class:`Broken` when an event breaks a job rule (J1, J2).
        """
        if quiet:
            self.session.collect(quiet=quiet, timeout=quiet * 4)
        events = self.session.events[self.seen :]
        self.seen = len(self.session.events)
        for event in events:
            self._event(event)

    def _event(self, event: Message) -> None:
        name = str(event.obj.get("event"))
        data = as_object(event.obj.get("data"))
        if name == "JOB_STATUS_CHANGE":
            job, status = str(data.get("id")), str(data.get("status"))
            if job not in self.started:
                return
            steps = self.history.setdefault(job, ["undefined"])
            if not transition_allowed(steps[-1], status):
                raise Broken(
                    "J1",
                    "illegal-transition",
                    f"job {job}: {steps[-1]} -> {status} is no transition of QEMU's job "
                    f"state machine (its statuses so far: {steps}): {event.brief()}",
                    (f"{steps[-1]}->{status}",),
                )
            steps.append(status)
        elif name in TERMINAL_EVENTS and name != "BLOCK_JOB_ERROR":
            job = str(data.get("device"))
            if job not in self.started:
                return
            self.terminal.setdefault(job, []).append(name)
            steps = self.history.get(job, ["undefined"])
            if name == "BLOCK_JOB_COMPLETED" and "error" in data and "aborting" not in steps:
                raise Broken(
                    "J2",
                    "completed-with-error",
                    f"job {job} carries an error in BLOCK_JOB_COMPLETED but did not fail "
                    f"(its statuses: {steps}): {event.brief()}",
                )

    def status(self, job: str) -> str:
        """The last status the events gave ``job`` (``undefined`` before any)."""
        return self.history.get(job, ["undefined"])[-1]

    def listing(self) -> dict[str, dict[str, Any]]:
        """The jobs ``query-block-jobs`` (flavour "block") or ``query-jobs`` lists,
        by name.

        Raises :class:`Broken` when the reply is no list of jobs with names (Q3),
        and what :meth:`ask` raises.
        """
        block = self.flavour == "block"
        key, command = ("device", "query-block-jobs") if block else ("id", "query-jobs")
        reply = self.ask(command)
        listing = reply.get("return")
        if not isinstance(listing, list) or not all(
            isinstance(j, dict) and isinstance(j.get(key), str) for j in listing
        ):
            raise Broken("Q3", "bad-listing", f"{command} returned {str(reply)[:300]}")
        return {j[key]: j for j in listing}

    def _listed(self) -> dict[str, str]:
        return {name: str(job.get("status")) for name, job in self.listing().items()}

    @invariant()
    def listing_agrees_with_events(self) -> None:
        """Invariant (J3): the job listing shows each job of this run in a status
        its events went through, and a job no longer listed was dismissed (``null``).

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer the listing.
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
            if status not in window:
                raise Broken(
                    "J3",
                    "listing-disagrees",
                    f"{job}: listed in status {status!r}, its events say {steps}",
                )
        for job, steps in self.history.items():
            if job in self.started and job not in listed and steps[-1] != "null":
                raise Broken(
                    "J3",
                    "vanished",
                    f"{job} is no longer listed, but was never dismissed: its events say {steps}",
                )

    @invariant()
    def at_most_one_end(self) -> None:
        """Invariant (J5): no job has had more than one terminal event."""
        for job, ends in self.terminal.items():
            if len(ends) > 1:
                raise Broken("J5", "ended-twice", f"{job} ended more than once: {ends}")


class _JobMachine(JobTracker):
    jobs = Bundle("jobs")
    requires: tuple[str, ...] = (
        "blockdev-add",
        "blockdev-mirror",
        "query-block-jobs",
        "query-jobs",
        "block-job-pause",
        "block-job-resume",
        "block-job-set-speed",
        "block-job-cancel",
        "block-job-complete",
        "block-job-dismiss",
        "job-pause",
        "job-resume",
        "job-cancel",
        "job-complete",
        "job-dismiss",
    )

    # -- rules ----------------------------------------------------------------

    @rule(target=jobs, speed=st.sampled_from(SPEEDS))
    @step
    def start(self, speed: int) -> str:
        """Mirror one fresh null-co node into another (auto-dismiss off) at
        ``speed``.  Returns the job.

        Raises :class:`Refused` when the target does not start the mirror.
        """
        n = next(self.names)
        source, target, job = f"src{n}", f"dst{n}", f"job{n}"
        for node in (source, target):
            self.ask("blockdev-add", {"driver": "null-co", "node-name": node, "size": IMAGE_SIZE})
        # Judged from its first event on: they may come before the reply.
        self.started.add(job)
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
        if reply.get("return") != {}:
            raise Refused(f"blockdev-mirror: {str(reply)[:300]}")
        return job

    def _command(self, block: str, generic: str, job: str, **extra: Any) -> dict[str, Any]:
        if self.flavour == "block" or not generic:
            return self.ask(block, {"device": job, **extra})
        return self.ask(generic, {"id": job, **extra})

    @rule(job=jobs)
    @step
    def pause(self, job: str) -> None:
        """Pause ``job`` (any reply goes: the verb may not apply in its status)."""
        self._command("block-job-pause", "job-pause", job)

    @rule(job=jobs)
    @step
    def resume(self, job: str) -> None:
        """Resume ``job``."""
        self._command("block-job-resume", "job-resume", job)

    @rule(job=jobs, speed=st.sampled_from(SPEEDS))
    @step
    def set_speed(self, job: str, speed: int) -> None:
        """Change ``job``'s speed limit."""
        self.ask("block-job-set-speed", {"device": job, "speed": speed})

    @rule(job=jobs, force=st.booleans())
    @step
    def cancel(self, job: str, force: bool) -> None:
        """Cancel ``job`` (``force`` with block-job-cancel only)."""
        if self.flavour == "block":
            self.ask("block-job-cancel", {"device": job, "force": force})
        else:
            self.ask("job-cancel", {"id": job})

    @rule(job=jobs)
    @step
    def complete(self, job: str) -> None:
        """Complete ``job`` (it takes the verb only when ready)."""
        self._command("block-job-complete", "job-complete", job)

    @rule(job=jobs)
    @step
    def dismiss(self, job: str) -> None:
        """Dismiss ``job``: accepted only when it concluded (J1, the verb table),
        and then no longer listed (J3).

        Raises :class:`Broken` when either fails.
        """
        was = self.status(job)
        reply = self._command("block-job-dismiss", "job-dismiss", job)
        if "return" in reply:
            if was != "concluded" and self.status(job) != "null":
                raise Broken(
                    "J1",
                    "dismissed-unconcluded",
                    f"{job} was dismissed in status {was!r} (only a concluded job may be): "
                    f"{str(reply)[:200]}",
                )
            self.drain(0.05)
            listed = self._listed()
            if job in listed:
                raise Broken(
                    "J3",
                    "listed-after-dismiss",
                    f"{job} is still listed after its dismiss, in status {listed[job]!r}",
                )

    @rule()
    @step
    def wait(self) -> None:
        """Let the jobs run for a while (no time when none runs)."""
        if any(self.status(job) not in ("concluded", "null") for job in self.started):
            self.drain(0.2)

    def teardown(self) -> None:
        """Cancel every job still running and check each ended with exactly one
        terminal event (J5); close the connection either way.

        Raises :class:`Broken`, or ``ReplyTimeout`` / ``ConnectionClosed`` when
        the target does not answer.
        """
        try:
            for job in sorted(self.started):
                if self.status(job) not in ("concluded", "null"):
                    self.session.execute(
                        "block-job-cancel",
                        {"device": job, "force": True},
                        timeout=self.reply_timeout,
                    )
            for _ in range(50):
                self.drain(0.1)
                if all(self.status(j) in ("concluded", "null") for j in self.started):
                    break
            for job in sorted(self.started):
                ends = self.terminal.get(job, [])
                if len(ends) != 1:
                    raise Broken(
                        "J5",
                        "terminal-events",
                        f"{job} ended with {ends or 'no terminal event'} "
                        f"(its statuses: {self.history.get(job, ['undefined'])})",
                    )
        finally:
            self.session.close()


class BlockJobMachine(_JobMachine):
    """Mirror jobs driven with ``block-job-*`` and watched via ``query-block-jobs``."""

    flavour = "block"


class JobFrameworkMachine(_JobMachine):
    """The same jobs driven with the generic ``job-*`` commands and ``query-jobs``."""

    flavour = "job"
