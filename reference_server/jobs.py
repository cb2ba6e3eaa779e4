"""QEMU's job framework: the status state machine, verbs, and job lifetimes.

The transition and verb tables are QEMU's (``job.c``); every status change
emits JOB_STATUS_CHANGE, and block jobs add the BLOCK_JOB_* events at the
points QEMU does.  Jobs progress in asyncio tasks, so commands return while
jobs run, as in QEMU.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol.jobs import transition_allowed, verb_allowed
from reference_server.errors import QMPError
from reference_server.events import EventBus
from reference_server.refusals import IDENTIFIER


def _cancelled(job: Job) -> bool:
    return job.cancelled


@dataclass
class Job:
    """One job; ``device`` is set for block jobs (they answer block-job-*)."""

    id: str
    type: str
    total: int
    block: bool = False
    auto_finalize: bool = True
    auto_dismiss: bool = True
    speed: int = 0
    status: str = "undefined"
    progress: int = 0
    error: str | None = None
    user_paused: bool = False
    cancelled: bool = False
    force_cancel: bool = False
    #: Mirror-like jobs wait in "ready" for block-job-complete.
    needs_complete: bool = False
    completed_by_user: bool = False
    io_status: str = "ok"
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


class JobManager:
    """Owns every job, runs them, and answers the job-* verbs."""

    def __init__(self, events: EventBus, *, step_delay: float = 0.002) -> None:
        self.events = events
        self.jobs: dict[str, Job] = {}
        self.step_delay = step_delay

    # -- lifecycle -----------------------------------------------------------

    def _set(self, job: Job, status: str) -> None:
        if not transition_allowed(job.status, status):
            raise AssertionError(f"job {job.id}: {job.status} -> {status}")
        job.status = status
        self.events.emit("JOB_STATUS_CHANGE", {"status": status, "id": job.id})
        job.wake.set()

    def create(self, job: Job, body: Callable[[Job], Awaitable[None]] | None = None) -> Job:
        """Register and start ``job``; ``body`` does the work (default: copy data).

        Raises :class:`QMPError` when the job id is not a valid identifier or is
        already taken.
        """
        if not IDENTIFIER.match(job.id):
            raise QMPError(f"Invalid job ID '{job.id}'")
        if job.id in self.jobs:
            raise QMPError(f"Job ID '{job.id}' already in use")
        self.jobs[job.id] = job
        self._set(job, "created")
        self._set(job, "running")
        job.task = asyncio.get_running_loop().create_task(self._run(job, body))
        return job

    async def _run(self, job: Job, body: Callable[[Job], Awaitable[None]] | None) -> None:
        try:
            await (body or self._copy)(job)
        except QMPError as exc:
            job.error = exc.desc
        if job.cancelled and job.status != "ready":
            job.error = job.error or "Operation canceled"
        self._finish(job)

    async def _copy(self, job: Job) -> None:
        """Move ``total`` bytes in a few steps, honouring pause, speed and cancel."""
        step = max(job.total // 4, 1)
        while job.progress < job.total and not job.cancelled:
            await self._checkpoint(job)
            if _cancelled(job):  # may have changed while we waited
                break
            job.progress = min(job.total, job.progress + step)
            if job.speed:
                # As QEMU's rate-limit sleep, a cancel or a pause cuts it short.
                job.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.wake.wait(), min(step / job.speed, 0.5))
            else:
                await asyncio.sleep(0)
        if job.needs_complete and not job.cancelled:
            self._set(job, "ready")
            self.events.emit("BLOCK_JOB_READY", self._block_info_event(job))
            while not job.completed_by_user and not job.cancelled:
                job.wake.clear()
                await job.wake.wait()

    async def _checkpoint(self, job: Job) -> None:
        while job.user_paused and not job.cancelled:
            if job.status == "running":
                self._set(job, "paused")
            job.wake.clear()
            await job.wake.wait()
        if job.status == "paused":
            self._set(job, "running")

    def _block_info_event(self, job: Job) -> dict[str, Any]:
        return {
            "device": job.id,
            "len": job.total,
            "offset": job.progress,
            "speed": job.speed,
            "type": job.type,
        }

    def _finish(self, job: Job) -> None:
        """QEMU's completion path: waiting, pending, finalize, conclude, dismiss."""
        if job.status in ("paused", "standby"):
            self._set(job, "running" if job.status == "paused" else "ready")
        aborted = job.error is not None or (
            job.cancelled
            and not job.completed_by_user
            and (job.force_cancel or job.status != "ready")
        )
        if aborted:
            if job.cancelled and job.error is None:
                job.error = "Operation canceled"  # so it ends CANCELLED, as QEMU's does
            self._set(job, "aborting")
        else:
            self._set(job, "waiting")
            self._set(job, "pending")
            if not job.auto_finalize:
                if job.block:
                    self.events.emit("BLOCK_JOB_PENDING", {"type": job.type, "id": job.id})
                return
        self._finalize(job, aborted)

    def _finalize(self, job: Job, aborted: bool) -> None:
        if job.block:
            data = self._block_info_event(job)
            if aborted and job.cancelled and job.error == "Operation canceled":
                self.events.emit("BLOCK_JOB_CANCELLED", data)
            else:
                if job.error is not None:
                    data["error"] = job.error
                self.events.emit("BLOCK_JOB_COMPLETED", data)
        self._set(job, "concluded")
        if job.auto_dismiss:
            self._dismiss(job)

    def _dismiss(self, job: Job) -> None:
        self._set(job, "null")
        del self.jobs[job.id]

    # -- verbs -----------------------------------------------------------------

    def find(self, job_id: str) -> Job:
        """The job with id ``job_id``, block job or not.

        Raises :class:`QMPError` (GenericError) when there is none.
        """
        job = self.jobs.get(job_id)
        if job is None:
            raise QMPError("Job not found")
        return job

    def find_block(self, device: str) -> Job:
        """The block job with id ``device`` (the block-job-* commands' name for it).

        Raises :class:`QMPError` with class DeviceNotActive when no block job has it.
        """
        job = self.jobs.get(device)
        if job is None or not job.block:
            raise QMPError(f"Block job '{device}' not found", "DeviceNotActive")
        return job

    @staticmethod
    def _verb(job: Job, verb: str) -> None:
        if not verb_allowed(verb, job.status):
            raise QMPError(
                f"Job '{job.id}' in state '{job.status}' cannot accept command verb '{verb}'"
            )

    def pause(self, job: Job) -> None:
        """Pause ``job`` for the user: running becomes paused, ready becomes standby.

        Raises :class:`QMPError` when its status does not take the pause verb or the
        user has paused it already.
        """
        self._verb(job, "pause")
        if job.user_paused:
            raise QMPError("Job is already paused")
        job.user_paused = True
        if job.status == "running":
            self._set(job, "paused")
        elif job.status == "ready":
            self._set(job, "standby")

    def resume(self, job: Job) -> None:
        """Undo a user's pause: paused goes back to running, standby to ready.

        Raises :class:`QMPError` when its status does not take the resume verb or the
        user did not pause it.
        """
        self._verb(job, "resume")
        if not job.user_paused:
            raise QMPError("Can't resume a job that was not paused")
        job.user_paused = False
        if job.status == "paused":
            self._set(job, "running")
        elif job.status == "standby":
            self._set(job, "ready")
        job.wake.set()

    def set_speed(self, job: Job, speed: int) -> None:
        """Set ``job``'s rate limit in bytes per second (0: unlimited).

        Raises :class:`QMPError` when its status does not take the verb or ``speed`` is
        negative.
        """
        self._verb(job, "set-speed")
        if speed < 0:
            raise QMPError("Parameter 'speed' expects a non-negative value")
        job.speed = speed

    def cancel(self, job: Job, force: bool = False) -> None:
        """Cancel ``job``: at once when created or pending, else at its next step.

        A ready job cancelled without ``force`` completes instead of aborting, as a
        mirror does.  Raises :class:`QMPError` when its status does not take the verb.
        """
        self._verb(job, "cancel")
        if job.status == "pending":
            job.cancelled = job.force_cancel = True
            job.error = "Operation canceled"
            self._set(job, "aborting")
            self._finalize(job, True)
            return
        if job.status == "created":
            job.cancelled = job.force_cancel = True
            if job.task is not None:
                job.task.cancel()
            job.error = "Operation canceled"
            self._set(job, "null")
            del self.jobs[job.id]
            return
        job.cancelled = True
        job.force_cancel = force
        job.user_paused = False
        job.wake.set()

    def complete(self, job: Job) -> None:
        """Let a job waiting in ready finish.

        Raises :class:`QMPError` unless the job is ready.
        """
        self._verb(job, "complete")
        job.completed_by_user = True
        job.wake.set()

    def finalize(self, job: Job) -> None:
        """Finalize a pending job (``auto-finalize`` off): emit its end and conclude it.

        Raises :class:`QMPError` unless the job is pending.
        """
        self._verb(job, "finalize")
        self._finalize(job, False)

    def dismiss(self, job: Job) -> None:
        """Drop a concluded job (``auto-dismiss`` off) from the job list.

        Raises :class:`QMPError` unless the job is concluded.
        """
        self._verb(job, "dismiss")
        self._dismiss(job)

    async def shutdown(self) -> None:
        """Cancel every job's task and wait for it, without the events a normal end emits."""
        for job in list(self.jobs.values()):
            if job.task is not None:
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job.task
