"""QEMU's job state machine: the wire facts every layer that judges or plays jobs needs.

A job announces each status it enters with ``JOB_STATUS_CHANGE``; which
status may follow which, and which verbs (``job-pause``, ``block-job-cancel``,
...) a status admits, are QEMU's ``JobSTT`` and ``JobVerbTable`` (job.c),
documented with ``JobStatus`` in qapi/job.json.  The reference server runs
its jobs by these tables, the stateful machines and the catalogue's job
checks judge a target's events by them.
"""

from __future__ import annotations

STATUSES = (
    "undefined",
    "created",
    "running",
    "paused",
    "ready",
    "standby",
    "waiting",
    "pending",
    "aborting",
    "concluded",
    "null",
)

#: status -> the statuses a job may move to from it.
LEGAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "undefined": frozenset({"created"}),
    "created": frozenset({"running", "aborting", "null"}),
    "running": frozenset({"paused", "ready", "waiting", "aborting"}),
    "paused": frozenset({"running"}),
    "ready": frozenset({"standby", "waiting", "aborting"}),
    "standby": frozenset({"ready"}),
    "waiting": frozenset({"pending", "aborting"}),
    "pending": frozenset({"concluded", "aborting"}),
    "aborting": frozenset({"concluded", "aborting"}),
    "concluded": frozenset({"null"}),
    "null": frozenset(),
}

#: verb -> the statuses in which a job accepts it.
VERB_STATUSES: dict[str, frozenset[str]] = {
    "cancel": frozenset({"created", "running", "paused", "ready", "standby", "waiting", "pending"}),
    "pause": frozenset({"created", "running", "paused", "ready", "standby"}),
    "resume": frozenset({"created", "running", "paused", "ready", "standby"}),
    "set-speed": frozenset({"created", "running", "paused", "ready", "standby"}),
    "complete": frozenset({"ready"}),
    "finalize": frozenset({"pending"}),
    "dismiss": frozenset({"concluded"}),
    "change": frozenset({"running", "paused", "ready", "standby"}),
}

#: The events that end a block job, one per job.
TERMINAL_EVENTS = ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED", "BLOCK_JOB_ERROR")


def transition_allowed(old: str, new: str) -> bool:
    """Whether a job may go from status ``old`` to ``new``."""
    return new in LEGAL_TRANSITIONS.get(old, frozenset())


def verb_allowed(verb: str, status: str) -> bool:
    """Whether a job in ``status`` accepts ``verb``."""
    return status in VERB_STATUSES.get(verb, frozenset())


#: The job rules the catalogue, the stateful campaigns and the seeded defects
#: cite, drawn from qapi/job.json and qapi/block-core.json (JobStatus, the
#: BLOCK_JOB_* events, the job commands) and the seeds' discussions of
#: block_stream and the snapshot jobs.  The QMP checklist (Q1-Q39) has none.
JOB_RULES: dict[str, str] = {
    "J1": "every JOB_STATUS_CHANGE follows QEMU's job state machine",
    "J2": "BLOCK_JOB_COMPLETED validates and carries 'error' only when the job failed",
    "J3": "query-jobs and query-block-jobs agree with the events: a listed job is in a "
    "status its events went through, and a job stays listed until it is dismissed",
    "J4": "a job with auto-finalize false waits in 'pending' until job-finalize, and one "
    "with auto-dismiss false in 'concluded' until job-dismiss",
    "J5": "a block job ends with exactly one terminal event: BLOCK_JOB_CANCELLED once "
    "cancelled, BLOCK_JOB_COMPLETED otherwise; a mirror is READY before it completes",
    "J6": "a job command naming no job fails: block-job-* with DeviceNotActive, job-* "
    "with GenericError",
    "J7": "once block-stream completes, the top image holds the data of the chain it "
    "streamed and no longer has that backing file",
    "J8": "snapshot-save, -load and -delete run as jobs that conclude, and a saved "
    "snapshot is on the node until deleted",
    "J9": "a paused job pauses as soon as possible (block-job-pause): a job asleep under "
    "its rate limit is woken to pause, not left to finish its sleep",
}
