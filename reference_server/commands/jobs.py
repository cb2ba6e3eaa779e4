"""The generic job-* verbs, query-jobs, and internal snapshots run as jobs."""

from __future__ import annotations

import asyncio
from typing import Any

from conformance import images
from reference_server.commands import CommandContext, command
from reference_server.commands.block import image_file
from reference_server.defects import DefectSet, Flag
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
        if name == "cancel":
            jobs.cancel(job, force=True)  # job-cancel always forces, as QEMU's
        else:
            getattr(jobs, name)(job)


for _name in ("pause", "resume", "cancel", "complete", "dismiss", "finalize"):
    _verb(_name)


def _defects(ctx: CommandContext) -> DefectSet:
    """The seeded defects of the server running the command: the monitor that
    asked belongs to that server (handlers are not given the defects)."""
    found = getattr(getattr(ctx.session, "server", None), "defects", None)
    return found if isinstance(found, DefectSet) else DefectSet()


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


#: qemu-img snapshot's option for each job.
_SNAPSHOT_OPTION = {"save": "-c", "load": "-a", "delete": "-d"}


async def _on_image(kind: str, tag: str, path: str) -> None:
    try:
        await asyncio.to_thread(images.qemu_img, "snapshot", _SNAPSHOT_OPTION[kind], tag, path)
    except images.ImageError as exc:
        raise QMPError(str(exc)) from None


def _snapshot_job(kind: str) -> None:
    @command(f"snapshot-{kind}")
    async def handler(ctx: CommandContext, args: dict[str, Any]) -> None:
        machine = ctx.machine
        tag = args["tag"]
        never_concludes = _defects(ctx).has(Flag.SNAPSHOT_NEVER_CONCLUDES)

        async def body(job: Job) -> None:
            names = _snapshot_nodes(machine, args)
            nodes = [machine.nodes[n] for n in names]
            had = {n.name for n in nodes if tag in n.snapshots}
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
            # The seeded defect: the work is done, the job stays running until cancelled.
            while never_concludes and not job.cancelled:
                job.wake.clear()
                await job.wake.wait()
            # On real images the tool does what the job stands for (vmstate
            # may name a device again: once per node).
            for n in {n.name: n for n in nodes}.values():
                path = image_file(machine, n)
                if path is not None and (kind != "delete" or n.name in had):
                    await _on_image(kind, tag, path)

        job = Job(args["job-id"], f"snapshot-{kind}", 1, auto_dismiss=False)
        machine.jobs.create(job, body)


for _kind in ("save", "load", "delete"):
    _snapshot_job(_kind)
