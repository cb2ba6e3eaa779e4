"""Internal snapshots as jobs (``snapshot-save`` / ``-load`` / ``-delete``).

These commands only start a job: the outcome arrives as the job's status
changes and, on failure, its ``error`` in ``query-jobs``.  Beside the
invariants every job machine checks (legal transitions of QEMU's job state
machine, listings that agree with the events), this machine keeps a model of
which tags exist and checks what a client relies on (J8): each job
concludes, and loading a tag that a successful save created, and that no
delete removed since, succeeds.  A concluded job stays listed until
``job-dismiss`` (J3), which takes it to ``null`` (J4) and out of ``query-jobs``.

The target needs a node that can hold snapshots; ``node_arguments`` gives the
``blockdev-add`` arguments for one (a qcow2 node on the reference server, a
qcow2 image made with qemu-img on real QEMU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, rule

from strategies.stateful.jobs import JobTracker
from strategies.stateful.target import Broken, Refused, step

TAGS = ("t0", "t1", "t2")


class SnapshotJobMachine(JobTracker):
    """Saves, loads and deletes internal snapshots of one node, as jobs, against
    a model of which tags exist (see the module docstring).

    Construction negotiates and adds the node (``node_arguments``).  Raises
    :class:`Refused` when the target does not add the node, and
    ``ReplyTimeout`` or ``ConnectionClosed``, there and in any step, when
    the target stops answering.
    """

    flavour = "job"
    requires: tuple[str, ...] = (
        "blockdev-add",
        "query-jobs",
        "job-dismiss",
        "snapshot-save",
        "snapshot-load",
        "snapshot-delete",
    )
    #: blockdev-add arguments for a fresh snapshot-capable node, by node name.
    node_arguments: Callable[[str], dict[str, Any]]
    #: Seconds a snapshot job may take to conclude (they take milliseconds).
    conclude_timeout: float = 3.0

    concluded = Bundle("concluded")

    def __init__(self) -> None:
        super().__init__()
        self.node = f"snap{next(self.names)}"
        reply = self.ask("blockdev-add", type(self).node_arguments(self.node))
        if reply.get("return") != {}:
            raise Refused(f"blockdev-add of a qcow2 node: {str(reply)[:300]}")
        #: Tags the model says exist, and the job that last saved each.
        self.tags: set[str] = set()
        self.dismissed: set[str] = set()

    def _run(self, verb: str, tag: str) -> tuple[str, str | None]:
        """Start ``snapshot-<verb>``, wait until it concludes; its id and error."""
        job = f"snapjob{next(self.names)}"
        arguments: dict[str, Any] = {"job-id": job, "tag": tag, "devices": [self.node]}
        if verb != "delete":
            arguments["vmstate"] = self.node
        # Judged from its first event on: they may come before the reply.
        self.started.add(job)
        reply = self.ask(f"snapshot-{verb}", arguments)
        if reply.get("return") != {}:
            raise Refused(f"snapshot-{verb}: {str(reply)[:300]}")
        deadline = time.monotonic() + self.conclude_timeout
        while self.status(job) != "concluded" and time.monotonic() < deadline:
            self.drain(0.05)
        if self.status(job) != "concluded":
            raise Broken(
                "J8",
                "never-concluded",
                f"{job} (snapshot-{verb}) did not conclude within {self.conclude_timeout:g} s: "
                f"its statuses are {self.history.get(job, ['undefined'])}",
            )
        listed = self.listing()
        if job not in listed:
            raise Broken(
                "J3",
                "vanished",
                f"{job} is no longer listed, but was never dismissed: "
                f"its events say {self.history.get(job)}",
            )
        error = listed[job].get("error")
        return job, error

    @rule(target=concluded, tag=st.sampled_from(TAGS))
    @step
    def save(self, tag: str) -> str:
        """Run ``snapshot-save`` of ``tag`` until it concludes; a success adds the
        tag to the model.  Returns the job.

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        job, error = self._run("save", tag)
        if error is None:
            self.tags.add(tag)
        return job

    @rule(target=concluded, tag=st.sampled_from(TAGS))
    @step
    def load(self, tag: str) -> str:
        """Run ``snapshot-load`` of ``tag`` until it concludes: it must succeed
        when the model says the tag exists (J8).  Returns the job.

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        job, error = self._run("load", tag)
        if tag in self.tags and error is not None:
            raise Broken("J8", "snapshot-lost", f"loading saved tag {tag!r} failed: {error}")
        return job

    @rule(target=concluded, tag=st.sampled_from(TAGS))
    @step
    def delete(self, tag: str) -> str:
        """Run ``snapshot-delete`` of ``tag`` until it concludes; a success removes
        the tag from the model.  Returns the job.

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        job, error = self._run("delete", tag)
        if error is None:
            self.tags.discard(tag)
        return job

    @rule(job=concluded)
    @step
    def dismiss(self, job: str) -> None:
        """``job-dismiss`` a concluded job (once): it succeeds and takes the job to
        ``null`` (J4), and ``query-jobs`` no longer lists it (J3).

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        if job in self.dismissed:
            return
        reply = self.ask("job-dismiss", {"id": job})
        if reply.get("return") != {}:
            raise Broken("J4", "dismiss-refused", f"job-dismiss of concluded {job}: {reply}")
        self.dismissed.add(job)
        self.drain(0.05)
        if self.status(job) != "null":
            raise Broken(
                "J4",
                "dismissed-not-null",
                f"{job} after job-dismiss: its statuses are {self.history.get(job)}",
            )
        if job in self._listed():
            raise Broken("J3", "listed-after-dismiss", f"{job} still listed after job-dismiss")

    def teardown(self) -> None:
        """Dismiss every job not dismissed yet, then close the connection.

        Raises ``ReplyTimeout`` or ``ConnectionClosed`` when the target does
        not answer a dismiss (the connection is closed anyway).
        """
        try:
            for job in sorted(self.started - self.dismissed):
                self.session.execute("job-dismiss", {"id": job}, timeout=self.reply_timeout)
        finally:
            self.session.close()
