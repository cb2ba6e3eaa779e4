"""Block nodes (blockdev-add/-del, query-block) and block jobs."""

from __future__ import annotations

import asyncio
import copy
import os
import threading
from typing import Any

from conformance import images
from reference_server.commands import CommandContext, command
from reference_server.errors import QMPError
from reference_server.jobs import Job
from reference_server.machine import BlockNode, Machine

#: Drivers the reference server can open; the schema lists all of QEMU's.
_PROTOCOL_SIZES = {"null-co": 1 << 30, "null-aio": 1 << 30}
_FILTERS = {
    "blkdebug": "image",
    "copy-on-read": "file",
    "raw": "file",
    "qcow2": "file",
    "throttle": "file",
}
_SUPPORTED = set(_PROTOCOL_SIZES) | set(_FILTERS) | {"file", "quorum"}
#: What a read that fails on an injected error reports, as QEMU words it.
_EIO = "Input/output error"


def _blocking_read(path: str) -> bytes:
    """Open and read ``path``; on a FIFO, open() waits for a writer (the point)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


async def read_config(path: str) -> bytes:
    """Read a blkdebug config without blocking the event loop.

    A daemon thread does the open() so a FIFO nobody ever opens cannot keep
    the process alive at exit; the awaiting command blocks, OOB does not.
    Raises :class:`QMPError` (GenericError) when the file cannot be opened or read.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()

    def worker() -> None:
        try:
            data = _blocking_read(path)
        except OSError as exc:
            err = QMPError(f"Could not read blkdebug config file: {exc.strerror}")
            loop.call_soon_threadsafe(_settle, done, None, err)
        else:
            loop.call_soon_threadsafe(_settle, done, data, None)

    threading.Thread(target=worker, name="blkdebug-config", daemon=True).start()
    return await done


def _settle(fut: asyncio.Future[bytes], data: bytes | None, err: Exception | None) -> None:
    if fut.done():
        return
    if err is not None:
        fut.set_exception(err)
    else:
        fut.set_result(data or b"")


class _Opener:
    """Opens a node tree from BlockdevOptions, committing only if all of it opens."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.new: dict[str, BlockNode] = {}

    def _lookup(self, name: str) -> BlockNode | None:
        return self.new.get(name) or self.machine.node(name)

    async def open(self, options: dict[str, Any], root: bool) -> BlockNode:
        driver = options["driver"]
        name = options.get("node-name")
        if name is None:
            if root:
                raise QMPError("'node-name' must be specified for the root node")
            name = self.machine.auto_node_name()
        if self._lookup(name) is not None:
            raise QMPError(f"Duplicate nodes with node-name='{name}'")
        if driver not in _SUPPORTED:
            raise QMPError(f"Driver '{driver}' is not supported by the reference server")
        node = BlockNode(
            name,
            driver,
            0,
            options,
            read_only=bool(options.get("read-only")),
            auto_named="node-name" not in options,
        )
        if driver in _PROTOCOL_SIZES:
            node.size = int(options.get("size", _PROTOCOL_SIZES[driver]))
            if options.get("latency-ns", 0) < 0:
                raise QMPError("latency-ns is invalid")
        elif driver == "file":
            filename = options["filename"]
            try:
                node.size = os.stat(filename).st_size
            except OSError as exc:
                raise QMPError(f"Could not open '{filename}': {exc.strerror}") from None
        elif driver == "quorum":
            refs = options["children"]
            threshold = options["vote-threshold"]
            if threshold < 1:
                raise QMPError("Quorum 'vote-threshold' must be at least 1")
            if len(refs) < threshold:
                raise QMPError("threshold may not exceed children count")
            opened = [await self.child(ref) for ref in refs]
            node.children.update({f"children.{i}": c.name for i, c in enumerate(opened)})
            node.size = min(c.size for c in opened)
        else:
            child_key = _FILTERS[driver]
            child = await self.child(options[child_key])
            node.children[child_key] = child.name
            node.size = child.size
            if driver == "qcow2":
                path = _file_of(child)
                if path is not None:  # the guest sees the virtual size, not the file's
                    try:
                        info = await asyncio.to_thread(images.info, path)
                    except images.ImageError as exc:
                        raise QMPError(f"Could not open '{path}': {exc}") from None
                    if info.get("format") != "qcow2":
                        raise QMPError("Image is not in qcow2 format")
                    node.size = int(info["virtual-size"])
            if driver == "qcow2" and options.get("backing") is not None:
                node.children["backing"] = (await self.child(options["backing"])).name
            if driver == "blkdebug":
                node.inject_errors = list(options.get("inject-error", []))
                if "config" in options:
                    await read_config(options["config"])
        self.new[name] = node
        return node

    async def child(self, ref: Any) -> BlockNode:
        if isinstance(ref, str):
            node = self._lookup(ref)
            if node is None:
                raise QMPError(f"Cannot find device='' nor node-name='{ref}'")
            return node
        return await self.open(ref, root=False)


@command("blockdev-add")
async def blockdev_add(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``blockdev-add``: open the node tree in ``args``; keep it only if all of it opens.

    Answers GenericError for a root without ``node-name``, a name in use, a driver
    not modelled here, a file that cannot be stat'd, an unknown child reference, a
    negative ``latency-ns`` or an unreadable blkdebug config (a FIFO config waits
    for a writer, holding up in-band commands).
    """
    opener = _Opener(ctx.machine)
    await opener.open(args, root=True)
    ctx.machine.nodes.update(opener.new)


@command("blockdev-del")
async def blockdev_del(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``blockdev-del``: remove a user-named node and the auto-named children only it used.

    Answers GenericError when no user-named node has that name, or the node is
    another node's child, the device a block job runs on, or a job's target.
    """
    name = args["node-name"]
    machine = ctx.machine
    node = machine.node(name)
    if node is None or node.auto_named:
        raise QMPError(f"Failed to find node with node-name='{name}'")
    for job_id, (device, *others) in machine.job_nodes.items():
        job = machine.jobs.jobs.get(job_id)
        if job is not None and name == device:
            raise QMPError(
                f"Node '{name}' is busy: block device is in use by block job: {job.type}"
            )
        if job is not None and name in others:
            raise QMPError(f"Node {name} is in use")
    if machine.parents_of(name) or name in machine.jobs.jobs:
        raise QMPError(f"Node {name} is in use")
    _drop_tree(machine, node)


def _drop_tree(machine: Machine, node: BlockNode) -> None:
    machine.nodes.pop(node.name, None)
    for child_name in node.children.values():
        child = machine.nodes.get(child_name)
        if child is not None and child.auto_named and not machine.parents_of(child_name):
            _drop_tree(machine, child)


@command("query-block")
async def query_block(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-block``: always empty; nodes from blockdev-add are not block devices."""
    # Like QEMU with -nodefaults: blockdev-add makes nodes, not block devices.
    return []


def _protocol_filename(machine: Machine, node: BlockNode) -> str:
    """What QEMU shows as a node's filename: its protocol node's."""
    seen: set[str] = set()
    while node.name not in seen:
        seen.add(node.name)
        if node.driver == "file":
            return str(node.options.get("filename", ""))
        if node.driver in _PROTOCOL_SIZES:
            return f"{node.driver}://"
        child = machine.node(node.children.get("file") or node.children.get("image") or "")
        if child is None:
            break
        node = child
    return ""


@command("query-named-block-nodes")
async def query_named_block_nodes(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-named-block-nodes``: the nodes blockdev-add made, newest first, as QEMU
    describes them (members the model has no value for take their smallest value)."""
    ret = ctx.schema.commands["query-named-block-nodes"].ret_type
    array = ctx.schema.type(ret) if ret else None
    element = getattr(array, "element_type", "")
    if not element:
        return []
    out = []
    for node in reversed(ctx.machine.nodes.values()):
        info = copy.deepcopy(ctx.synth.value(element))
        filename = _protocol_filename(ctx.machine, node)
        known = {
            "node-name": node.name,
            "drv": node.driver,
            "ro": node.read_only,
            "file": filename,
            "backing_file_depth": len(ctx.machine.backing_chain(node.name)) - 1,
            "detect_zeroes": "off",
        }
        info.update({k: v for k, v in known.items() if k in info or k == "node-name"})
        if isinstance(info.get("image"), dict):
            info["image"].update(
                {"filename": filename, "format": node.driver, "virtual-size": node.size}
            )
        if isinstance(info.get("cache"), dict):
            info["cache"]["writeback"] = True
        out.append(info)
    return out


def _file_of(node: BlockNode | None) -> str | None:
    """The host file of a ``file`` node, when QEMU's image tools can work on it."""
    if node is None or node.driver != "file" or not images.available():
        return None
    return str(node.options["filename"])


def image_file(machine: Machine, node: BlockNode) -> str | None:
    """The host file holding a qcow2 node's image, when the image tools can work on
    it: the reference server has no block layer, so what its jobs do to real
    images (a stream, a snapshot) those tools do."""
    if node.driver != "qcow2":
        return None
    return _file_of(machine.node(node.children.get("file", "")))


async def _detach_streamed(machine: Machine, top: BlockNode, base: BlockNode | None) -> None:
    """After a stream: the top's data no longer needs what was streamed, so its
    backing becomes ``base`` (none without one), in the image file too."""
    path = image_file(machine, top)
    if path is not None:
        keep = _file_of(machine.node(base.children.get("file", ""))) if base else None
        fmt = ["-F", base.driver] if base is not None and keep else []
        try:  # safe mode: the data above the new backing is copied into the top
            await asyncio.to_thread(
                images.qemu_img, "rebase", "-f", "qcow2", "-b", keep or "", *fmt, path
            )
        except images.ImageError as exc:
            raise QMPError(str(exc)) from None
    if base is None:
        top.children.pop("backing", None)
    else:
        top.children["backing"] = base.name


def _find_node(machine: Machine, device: str) -> BlockNode:
    node = machine.node(device)
    if node is None:
        raise QMPError(f"Cannot find device='{device}' nor node-name='{device}'")
    return node


def _injects_read_error(machine: Machine, node: BlockNode) -> bool:
    for n in machine.backing_chain(node.name):
        for name in [n.name, *n.children.values()]:
            candidate = machine.node(name)
            if candidate is not None and any(
                e.get("event") == "read_aio" for e in candidate.inject_errors
            ):
                return True
    return False


@command("block-stream")
async def block_stream(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``block-stream``: start a stream job on ``device`` (nothing to copy without a backing).

    A blkdebug node injecting read errors in the chain makes the job emit
    BLOCK_JOB_ERROR (then, for ``on-error`` stop, pause until resumed) and fail
    with an I/O error.  Answers GenericError for an unknown node, both ``base`` and
    ``base-node``, a base outside the backing chain, a negative speed, or a job id
    that is invalid or taken.
    """
    machine = ctx.machine
    node = _find_node(machine, args["device"])
    if "base" in args and "base-node" in args:
        raise QMPError("'base' and 'base-node' cannot be specified at the same time")
    chain = machine.backing_chain(node.name)
    base_node: BlockNode | None = None
    if "base" in args:
        base = args["base"]
        named = [n for n in chain[1:] if n.options.get("filename") == base or n.name == base]
        if not named:
            raise QMPError(f"Can't find '{base}' in the backing chain")
        base_node = named[0]
    if "base-node" in args:
        base_node = _find_node(machine, args["base-node"])
        if base_node not in chain[1:]:
            raise QMPError(f"Node '{base_node.name}' is not a backing image of '{node.name}'")
    job = Job(
        args.get("job-id", ""),
        "stream",
        node.size if len(chain) > 1 else 0,
        block=True,
        speed=args.get("speed", 0),
        auto_finalize=args.get("auto-finalize", True),
        auto_dismiss=args.get("auto-dismiss", True),
    )
    failing = _injects_read_error(machine, node)
    action = {"stop": "stop", "enospc": "stop", "ignore": "ignore"}.get(
        args.get("on-error", "report"), "report"
    )

    async def body(j: Job) -> None:
        if failing and action != "ignore":
            machine.events.emit(
                "BLOCK_JOB_ERROR", {"device": j.id, "operation": "read", "action": action}
            )
            if action == "stop":
                j.io_status = "failed"
                machine.jobs.pause(j)
                await machine.jobs._checkpoint(j)
                if not j.cancelled:
                    j.io_status = "ok"
            raise QMPError("Input/output error")
        await machine.jobs._copy(j)
        if not j.cancelled and len(chain) > 1:
            await _detach_streamed(machine, node, base_node)

    if job.speed < 0:
        raise QMPError("Parameter 'speed' expects a non-negative value")
    machine.jobs.create(job, body)
    machine.job_nodes[job.id] = tuple(n.name for n in chain)


@command("blockdev-mirror")
async def blockdev_mirror(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``blockdev-mirror``: start a mirror job that waits in ready for block-job-complete.

    Answers GenericError for an unknown node, a node mirrored into itself, a
    negative speed, or a job id that is invalid or taken.
    """
    source = _find_node(ctx.machine, args["device"])
    target = _find_node(ctx.machine, args["target"])
    if source is target:
        raise QMPError("Can't mirror node into itself")
    job = Job(
        args.get("job-id", ""),
        "mirror",
        source.size,
        block=True,
        speed=args.get("speed", 0),
        needs_complete=True,
        auto_finalize=args.get("auto-finalize", True),
        auto_dismiss=args.get("auto-dismiss", True),
    )
    if job.speed < 0:
        raise QMPError("Parameter 'speed' expects a non-negative value")
    ctx.machine.jobs.create(job)
    ctx.machine.job_nodes[job.id] = (source.name, target.name)


def _block_job_info(job: Job) -> dict[str, Any]:
    info: dict[str, Any] = {
        "auto-finalize": job.auto_finalize,
        "io-status": job.io_status,
        "device": job.id,
        "auto-dismiss": job.auto_dismiss,
        "busy": job.status == "running",
        "len": job.total,
        "offset": job.progress,
        "status": job.status,
        "paused": job.user_paused,
        "speed": job.speed,
        "ready": job.status == "ready",
        "type": job.type,
    }
    if job.error is not None:
        info["error"] = job.error
    return info


@command("query-block-jobs")
async def query_block_jobs(ctx: CommandContext, args: dict[str, Any]) -> Any:
    """``query-block-jobs``: every block job with its status, progress, speed and error."""
    return [_block_job_info(j) for j in ctx.machine.jobs.jobs.values() if j.block]


@command("block-job-set-speed")
async def block_job_set_speed(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``block-job-set-speed``: change a block job's rate limit.

    Answers DeviceNotActive when no block job has that name, GenericError when its
    status does not allow it or the speed is negative.
    """
    jobs = ctx.machine.jobs
    jobs.set_speed(jobs.find_block(args["device"]), args["speed"])


@command("block-job-cancel")
async def block_job_cancel(ctx: CommandContext, args: dict[str, Any]) -> None:
    """``block-job-cancel``: cancel a block job; a ready one completes unless ``force``.

    Answers DeviceNotActive when no block job has that name, GenericError when its
    status does not allow cancelling.
    """
    jobs = ctx.machine.jobs
    jobs.cancel(jobs.find_block(args["device"]), bool(args.get("force", False)))


def _block_verb(name: str, key: str) -> None:
    """``block-job-NAME``: find the block job by its ``key`` argument, apply the verb
    (the job manager checks the verb against the job's status)."""

    @command(f"block-job-{name}")
    async def handler(ctx: CommandContext, args: dict[str, Any]) -> None:
        jobs = ctx.machine.jobs
        getattr(jobs, name)(jobs.find_block(args[key]))


# QEMU names the job "device" in the older verbs and "id" in the newer ones.
for _name, _key in (
    ("pause", "device"),
    ("resume", "device"),
    ("complete", "device"),
    ("dismiss", "id"),
    ("finalize", "id"),
):
    _block_verb(_name, _key)


def qemu_io_read(machine: Machine, name: str, offset: int, length: int) -> str:
    """HMP ``qemu-io NODE "read OFFSET LENGTH"``: what the monitor prints
    (QEMU prints qemu-io's own report elsewhere, so a read that succeeds
    prints nothing).  A quorum reads every child: each that fails on an
    injected read error emits QUORUM_REPORT_BAD (throttled, Q31), and when
    fewer children than the vote threshold succeeded the read fails and
    QUORUM_FAILURE is emitted."""
    node = machine.node(name)
    if node is None:
        return f"Cannot find device='{name}' nor node-name='{name}'\r\n"
    if node.driver != "quorum":
        return f"read failed: {_EIO}\r\n" if _injects_read_error(machine, node) else ""
    sectors = {"sector-num": offset // 512, "sectors-count": -(-length // 512)}
    good = 0
    for child_name in node.children.values():
        child = machine.node(child_name)
        if child is not None and _injects_read_error(machine, child):
            bad = {"type": "read", "error": _EIO, "node-name": child_name, **sectors}
            machine.events.emit("QUORUM_REPORT_BAD", bad)
        else:
            good += 1
    if good >= node.options["vote-threshold"]:
        return ""
    machine.events.emit("QUORUM_FAILURE", {"reference": name, **sectors})
    return f"read failed: {_EIO}\r\n"
