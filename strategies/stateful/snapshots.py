"""Internal snapshots as jobs (``snapshot-save`` / ``-load`` / ``-delete``).

These commands only start a job: the outcome arrives as the job's status
changes and, on failure, its ``error`` in ``query-jobs``.  Beside the
invariants every job machine checks (legal transitions of QEMU's job state
machine, listings that agree with the events), this machine keeps a model of
which tags exist and checks the one thing a client relies on: loading a tag
that a successful save created, and that no delete removed since, succeeds.
``job-dismiss`` of a concluded job removes it from ``query-jobs``.

The target needs a node that can hold snapshots; ``node_arguments`` gives the
``blockdev-add`` arguments for one (a qcow2 node on the reference server, a
qcow2 image made with qemu-img on real QEMU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, rule

from strategies.stateful.jobs import JobTracker

TAGS = ("t0", "t1", "t2")


class SnapshotJobMachine(JobTracker):
    """Saves, loads and deletes internal snapshots of one node, as jobs, against
    a model of which tags exist (see the module docstring).

    Construction negotiates and adds the node (``node_arguments``).  Raises
    :class:`ReplyTimeout` or :class:`ConnectionClosed`, there and in any step,
    when the target stops answering.
    """

    flavour = "job"
    #: blockdev-add arguments for a fresh snapshot-capable node, by node name.
    node_arguments: Callable[[str], dict[str, Any]]

    concluded = Bundle("concluded")

    def __init__(self) -> None:
        super().__init__()
        self.node = f"snap{next(self.names)}"
        self.ask("blockdev-add", type(self).node_arguments(self.node))
        #: Tags the model says exist, and the job that last saved each.
        self.tags: set[str] = set()
        self.dismissed: set[str] = set()

    def _run(self, verb: str, tag: str) -> tuple[str, str | None]:
        """Start ``snapshot-<verb>``, wait until it concludes; its id and error."""
        job = f"snapjob{next(self.names)}"
        arguments: dict[str, Any] = {"job-id": job, "tag": tag, "devices": [self.node]}
        if verb != "delete":
            arguments["vmstate"] = self.node
        reply = self.ask(f"snapshot-{verb}", arguments)
        assert reply.get("return") == {}, reply
        self.started.add(job)
        for _ in range(100):
            if self.status(job) == "concluded":
                break
            self.drain(0.05)
        assert self.status(job) == "concluded", f"{job} never concluded: {self.history.get(job)}"
        listed = {j["id"]: j for j in self.ask("query-jobs")["return"]}
        assert job in listed, f"concluded {job} is not in query-jobs"
        error = listed[job].get("error")
        return job, error

    @rule(target=concluded, tag=st.sampled_from(TAGS))
    def save(self, tag: str) -> str:
        """Run ``snapshot-save`` of ``tag`` until it concludes; a success adds the
        tag to the model.  Returns the job.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        job, error = self._run("save", tag)
        if error is None:
            self.tags.add(tag)
        return job

    @rule(target=concluded, tag=st.sampled_from(TAGS))
    def load(self, tag: str) -> str:
        """Run ``snapshot-load`` of ``tag`` until it concludes: it must succeed
        when the model says the tag exists.  Returns the job.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        job, error = self._run("load", tag)
        if tag in self.tags:
            assert error is None, f"loading saved tag {tag!r} failed: {error}"
        return job

    @rule(target=concluded, tag=st.sampled_from(TAGS))
    def delete(self, tag: str) -> str:
        """Run ``snapshot-delete`` of ``tag`` until it concludes; a success removes
        the tag from the model.  Returns the job.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        job, error = self._run("delete", tag)
        if error is None:
            self.tags.discard(tag)
        return job

    @rule(job=concluded)
    def dismiss(self, job: str) -> None:
        """``job-dismiss`` a concluded job (once): its status becomes ``null`` and
        ``query-jobs`` no longer lists it.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        if job in self.dismissed:
            return
        reply = self.ask("job-dismiss", {"id": job})
        assert reply.get("return") == {}, reply
        self.dismissed.add(job)
        self.drain(0.05)
        assert self.status(job) == "null", f"{job} after dismiss: {self.history.get(job)}"
        assert job not in self._listed(), f"{job} still listed after job-dismiss"

    def teardown(self) -> None:
        """Dismiss every job not dismissed yet, then close the connection.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer a dismiss (the connection is closed anyway).
        """
        try:
            for job in self.started - self.dismissed:
                self.session.execute("job-dismiss", {"id": job})
        finally:
            self.session.close()
