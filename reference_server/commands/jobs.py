"""The generic job-* verbs, query-jobs, and internal snapshots run as jobs."""

from __future__ import annotations

from typing import Any

from reference_server.commands import CommandContext, command
from reference_server.errors import QMPError
from reference_server.jobs import Job
from reference_server.machine import Machine


@command("query-jobs")
async def query_jobs(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-jobs``: every job, block job or not, with its status, progress and error."""
    out = []
    for job in ctx.machine.jobs.jobs.values():
        info: dict[str, Any] = {
            "current-progress": job.progress,
            "status": job.status,
            "total-progress": job.total,
            "type": job.type,
            "id": job.id,
        }
        if job.error is not None:
            info["error"] = job.error
        out.append(info)
    return out


def _verb(name: str) -> None:
    @command(f"job-{name}")
    async def handler(ctx: CommandContext, args: dict[str, Any]) -> None:
        jobs = ctx.machine.jobs
        job = jobs.find(args["id"])
        getattr(jobs, name)(job)


for _name in ("pause", "resume", "cancel", "complete", "dismiss", "finalize"):
    _verb(_name)


def _snapshot_nodes(machine: Machine, args: dict[str, Any]) -> list[str]:
    names = list(args["devices"])
    if "vmstate" in args:
        names.append(args["vmstate"])
    for name in names:
        node = machine.node(name)
        if node is None:
            raise QMPError(f"No block device node '{name}'")
        if node.driver != "qcow2":
            raise QMPError(f"Device '{name}' is writable but does not support snapshots")
    return names


def _snapshot_job(kind: str) -> None:
    @command(f"snapshot-{kind}")
    async def handler(ctx: CommandContext, args: dict[str, Any]) -> None:
        machine = ctx.machine
        tag = args["tag"]

        async def body(job: Job) -> None:
            names = _snapshot_nodes(machine, args)
            nodes = [machine.nodes[n] for n in names]
            job.progress = job.total
            if kind == "save":
                if any(tag in n.snapshots for n in nodes):
                    raise QMPError(f"Snapshot '{tag}' already exists in one or more devices")
                for n in nodes:
                    n.snapshots.add(tag)
            elif kind == "load":
                if not all(tag in n.snapshots for n in nodes):
                    raise QMPError(f"Snapshot '{tag}' does not exist in one or more devices")
            else:
                for n in nodes:
                    n.snapshots.discard(tag)

        job = Job(args["job-id"], f"snapshot-{kind}", 1, auto_dismiss=False)
        machine.jobs.create(job, body)


for _kind in ("save", "load", "delete"):
    _snapshot_job(_kind)
