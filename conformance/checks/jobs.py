"""Jobs: block-stream over a real backing chain, mirror, cancel, pause, manual
finalize and dismiss, missing ids, and the snapshot jobs (rules J1-J8 of
``conformance.protocol.jobs``).

Every check watches the job events it causes: each JOB_STATUS_CHANGE must be
a legal step of QEMU's job state machine (J1) and every BLOCK_JOB_* event's
data must validate against the target's schema.  Images are real: qcow2 and
raw files made with ``qemu-img`` and filled with known bytes by ``qemu-io``
in a scratch folder, so the checks need those tools and a target on this
host (a spawned process, a UNIX socket, the reference server, or TCP on a
loopback address); elsewhere they skip and say why.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from conformance import images
from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.protocol.jobs import JOB_RULES, TERMINAL_EVENTS, transition_allowed
from conformance.protocol.values import as_object
from conformance.session import Message, Session

#: How long a job of these checks may take to reach a state (the images are small).
JOB_TIMEOUT = 30.0
#: How long a snapshot job of a 1 MiB image may take to conclude.
SNAPSHOT_TIMEOUT = 10.0
#: How long a job must stay where it waits for the client (J4) before we judge it stayed.
STAY = 0.5
#: Nodes for the jobs that move no real data: big enough to outlast a slow speed.
NULL_SIZE = 64 << 20
#: A mirror that stays busy for minutes but reaches a pause point every
#: quarter second: 64 KiB chunks at 256 KiB/s.  (A job rate-limited to a few
#: bytes a second sleeps for days between chunks; QEMU 5.2 does not wake a
#: sleeping job to pause it.)
CRAWL = {"speed": 256 << 10, "buf-size": 64 << 10, "granularity": 64 << 10}
#: The known data: (offset, length, pattern) written into the base, and into the top.
BASE_DATA = ((0, 64 << 10, 0x5A), (512 << 10, 64 << 10, 0xA5))
TOP_DATA = ((128 << 10, 64 << 10, 0x11),)
IMAGE_SIZE = 1 << 20


# -- what every job check shares ------------------------------------------------


class Watch:
    """The events of the jobs one check starts, judged as they come (a shared
    session also carries the end of earlier checks' jobs)."""

    def __init__(self, ctx: Context, session: Session, *jobs: str) -> None:
        self.ctx = ctx
        self.session = session
        self.jobs = set(jobs)
        self.first = len(session.events)
        self.judged = self.first
        #: Each job's statuses, as its JOB_STATUS_CHANGE events gave them.
        self.history: dict[str, list[str]] = {}

    def events(self, name: str | None = None, job: str | None = None) -> list[Message]:
        """The events since the check began, of ``name`` and for ``job`` when given."""
        self._judge()
        return [
            e
            for e in self.session.events[self.first :]
            if (name is None or e.obj.get("event") == name) and (job is None or _job_of(e) == job)
        ]

    def _judge(self) -> None:
        specs = self.ctx.specs()
        schema = self.ctx.schema()
        declared = schema.events if schema is not None else {}
        for event in self.session.events[self.judged :]:
            if _job_of(event) not in self.jobs:
                continue
            name = str(event.obj.get("event"))
            data = event.obj.get("data")
            if name == "JOB_STATUS_CHANGE" and isinstance(data, dict):
                job, status = str(data.get("id")), str(data.get("status"))
                steps = self.history.setdefault(job, ["undefined"])
                if not transition_allowed(steps[-1], status):
                    raise Fail(
                        f"job {job} went from {steps[-1]} to {status} (J1: {JOB_RULES['J1']})",
                        expected=f"a status QEMU's job state machine allows after {steps[-1]}",
                        seen=event.brief(200),
                    )
                steps.append(status)
            if (name == "JOB_STATUS_CHANGE" or name.startswith("BLOCK_JOB_")) and name in declared:
                problems = specs.errors("data", name, data if data is not None else {})
                if problems:
                    raise Fail(
                        f"{name}'s data does not validate against the target's schema",
                        expected=f"{name} data as the schema declares it",
                        seen=f"{event.brief(200)}: {problems[0]}",
                    )
        self.judged = len(self.session.events)

    def statuses(self, job: str) -> list[str]:
        """Every status ``job``'s events gave it, in order (``undefined`` first)."""
        self._judge()
        return self.history.get(job, ["undefined"])

    def status(self, job: str) -> str:
        """The last status ``job``'s events gave it (``undefined`` before any)."""
        return self.statuses(job)[-1]

    def wait(self, what: str, found: Callable[[], Any], timeout: float = JOB_TIMEOUT) -> Any:
        """Read events until ``found()`` is truthy; its value.  Raises :class:`Fail`
        naming ``what`` when it is not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            value = found()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0 or self.session.closed:
                raise Fail(
                    f"{what} did not happen within {timeout:g} s",
                    expected=what,
                    seen="; ".join(e.brief(120) for e in self.events()[-6:]) or "no job events",
                )
            self.session.collect(quiet=min(0.1, left), timeout=min(0.5, left))

    def event(self, name: str, job: str, timeout: float = JOB_TIMEOUT) -> Message:
        """The first ``name`` event for ``job``, waiting for it.  Raises :class:`Fail`."""
        found: Message = self.wait(
            f"{name} for {job}", lambda: next(iter(self.events(name, job)), None), timeout
        )
        return found

    def reach(self, job: str, status: str, timeout: float = JOB_TIMEOUT) -> None:
        """Wait until ``job``'s events take it to ``status``.  Raises :class:`Fail`."""
        self.wait(
            f"job {job} reaching {status}",
            lambda: status in self.statuses(job),
            timeout,
        )

    def quiet(self, seconds: float) -> None:
        """Take in what arrives within ``seconds``."""
        self.session.collect(quiet=seconds, timeout=seconds * 2)
        self._judge()

    def one_end(self, job: str) -> Message:
        """The single terminal BLOCK_JOB_* event of ``job`` (J5).  Raises :class:`Fail`
        when there is none or more than one."""
        ends = [e for e in self.events(job=job) if e.obj.get("event") in TERMINAL_EVENTS[:2]]
        if len(ends) != 1:
            raise Fail(
                f"block job {job} ended with {len(ends)} terminal events (J5: {JOB_RULES['J5']})",
                expected="exactly one of BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED",
                seen="; ".join(e.brief(160) for e in ends) or "none",
            )
        return ends[0]


def _job_of(event: Message) -> str | None:
    data = event.obj.get("data")
    if not isinstance(data, dict):
        return None
    job = data.get("id", data.get("device"))
    return job if isinstance(job, str) else None


def _items(reply: Message) -> list[dict[str, Any]]:
    """The objects of a reply's ``return`` array (none when it is anything else)."""
    value = reply.obj.get("return")
    return [as_object(v) for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _needs(ctx: Context, *commands: str) -> None:
    ctx.require_schema()
    offered = ctx.commands()
    missing = [c for c in commands if c not in offered]
    if missing:
        raise Skip(f"the target offers no {', '.join(missing)}")


def _names(ctx: Context, session: Session, *stems: str) -> list[str]:
    """Node and job names unique on a long-lived target."""
    n = len(session.received)
    return [f"qc-{stem}-{n}" for stem in stems]


def _ok(ctx: Context, session: Session, name: str, args: dict[str, Any], why: str) -> Message:
    """Run a command the check needs to succeed.  Raises :class:`Fail` when it is refused."""
    reply = ctx.call(session, name, args)
    if reply.is_error:
        raise Fail(f"{name} was refused ({why})", expected="a return", seen=reply.brief(300))
    return reply


def _cleanup(ctx: Context, session: Session, jobs: list[str], nodes: list[str]) -> None:
    """Cancel and dismiss what a check left and delete its nodes, newest first; a
    cleanup that fails is not a finding of the check."""
    if session.closed:
        return
    with contextlib.suppress(Fail):
        for job in jobs:
            session.execute("block-job-cancel", {"device": job, "force": True}, timeout=5)
        if jobs:
            session.collect(quiet=0.2, timeout=2)
            for job in jobs:
                session.execute("job-dismiss", {"id": job}, timeout=5)
        for node in reversed(nodes):
            session.execute("blockdev-del", {"node-name": node}, timeout=5)


def _null(node: str) -> dict[str, Any]:
    return {"driver": "null-co", "node-name": node, "size": NULL_SIZE}


# -- real images ------------------------------------------------------------------


def _local(ctx: Context) -> None:
    """The images are made here: the target must read this host's files."""
    spec = ctx.target.spec
    if spec.startswith("tcp:"):
        host = spec[4:].rsplit(":", 1)[0].strip("[]")
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_loopback:
                return
        if host != "localhost":
            raise Skip(f"{spec} may be another host: the job checks make images on this one")
    if not images.available():
        raise Skip("qemu-img and qemu-io (Debian's qemu-utils) make the images: not installed")


@contextlib.contextmanager
def _scratch() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="qmp-conform-jobs-")
    # A target may run as another user (QEMU dropping privileges).
    os.chmod(folder, 0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _make(path: str, fmt: str, *create: str, data: tuple[tuple[int, int, int], ...] = ()) -> str:
    try:
        images.qemu_img("create", "-q", "-f", fmt, *create, path, str(IMAGE_SIZE))
        if data:
            images.qemu_io(path, fmt, *(f"write -q -P {p:#x} {o} {n}" for o, n, p in data))
    except images.ImageError as exc:
        raise Skip(f"the images cannot be made here: {exc}") from exc
    os.chmod(path, 0o666)
    return path


def _file(driver: str, node: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "driver": driver,
        "node-name": node,
        "file": {"driver": "file", "filename": path},
        **extra,
    }


# -- the checks ---------------------------------------------------------------------


@check(
    "jobs.stream",
    "J7,J2,J1",
    "block-stream copies a real backing chain into the top image and detaches it",
    QMP_DIALECTS,
)
def stream(ctx: Context) -> str:
    """Stream a raw base with known data into a qcow2 top that has data of its
    own; after BLOCK_JOB_COMPLETED (no ``error``, J2) the top must no longer
    need the base (J7): the target reports no backing for it and lets the base
    go, and the top image file, read with ``qemu-io`` once the target let it
    go, holds the base's data and its own and names no backing file.  Raises
    :class:`Skip` without the commands, the tools or a local target, and
    :class:`Fail` as said."""
    _needs(ctx, "blockdev-add", "blockdev-del", "block-stream")
    _local(ctx)
    session = ctx.shared()
    base, top, job = _names(ctx, session, "base", "top", "stream")
    watch = Watch(ctx, session, job)
    with _scratch() as folder:
        base_path = _make(os.path.join(folder, "base.raw"), "raw", data=BASE_DATA)
        top_path = _make(
            os.path.join(folder, "top.qcow2"),
            "qcow2",
            "-b",
            base_path,
            "-F",
            "raw",
            data=TOP_DATA,
        )
        nodes: list[str] = []
        try:
            _ok(ctx, session, "blockdev-add", _file("raw", base, base_path), "a raw image")
            nodes.append(base)
            _ok(ctx, session, "blockdev-add", _file("qcow2", top, top_path, backing=base), "qcow2")
            nodes.append(top)
            _ok(ctx, session, "block-stream", {"job-id": job, "device": top}, "a stream")
            done = watch.event("BLOCK_JOB_COMPLETED", job)
            data = as_object(done.obj.get("data"))
            if "error" in data:
                raise Fail(
                    f"the stream of {top} failed: {data['error']}",
                    expected=f"BLOCK_JOB_COMPLETED without 'error' (J2: {JOB_RULES['J2']})",
                    seen=done.brief(300),
                )
            watch.one_end(job)
            depth = _backing_depth(ctx, session, top)
            if depth not in (None, 0):
                raise Fail(
                    f"after the stream the target still gives {top} {depth} backing image(s)",
                    expected=f"no backing file (J7: {JOB_RULES['J7']})",
                    seen=f"backing_file_depth {depth}",
                )
            for node in (top, base):  # the base must go now that nothing uses it
                _ok(ctx, session, "blockdev-del", {"node-name": node}, "the chain is detached")
                nodes.remove(node)
            _judge_streamed(top_path)
        finally:
            _cleanup(ctx, session, [], nodes)
    return f"{job}: {len(BASE_DATA) * 64} KiB of base data streamed into the top, base detached"


def _backing_depth(ctx: Context, session: Session, node: str) -> int | None:
    """What ``query-named-block-nodes`` says of ``node``'s backing chain; None untold."""
    if "query-named-block-nodes" not in ctx.commands():
        return None
    reply = ctx.call(session, "query-named-block-nodes")
    for info in _items(reply):
        if isinstance(info, dict) and info.get("node-name") == node:
            depth = info.get("backing_file_depth")
            return depth if isinstance(depth, int) else None
    return None


def _judge_streamed(top_path: str) -> None:
    try:
        backing = images.info(top_path).get("backing-filename")
        reads = [f"read -q -P {p:#x} {o} {n}" for o, n, p in (*BASE_DATA, *TOP_DATA)]
        images.qemu_io(top_path, "qcow2", *reads, read_only=True)
    except images.ImageError as exc:
        raise Fail(
            "the streamed top image does not hold the chain's data",
            expected=f"every known byte of base and top in the top image (J7: {JOB_RULES['J7']})",
            seen=str(exc),
        ) from exc
    if backing:
        raise Fail(
            "the streamed top image still names a backing file",
            expected=f"no backing file (J7: {JOB_RULES['J7']})",
            seen=f"backing-filename {backing}",
        )


@check(
    "jobs.stream-failure",
    "J2,J5,J1",
    "a stream that fails ends as the schema says; a base outside the chain is refused",
    QMP_DIALECTS,
)
def stream_failure(ctx: Context) -> str:
    """Stream from a base whose reads fail (``blkdebug`` injects EIO where the
    base holds data): the job must end with one BLOCK_JOB_COMPLETED carrying
    ``error`` (J2, J5).  A ``base-node`` that is no backing image of the top is
    refused before any job starts.  Raises :class:`Skip` without the commands,
    drivers, tools or a local target, and :class:`Fail` as said."""
    _needs(ctx, "blockdev-add", "blockdev-del", "block-stream")
    _local(ctx)
    session = ctx.shared()
    base, top, other, job = _names(ctx, session, "eio-base", "eio-top", "other", "eio")
    watch = Watch(ctx, session, job)
    sector = BASE_DATA[1][0] // 512
    with _scratch() as folder:
        base_path = _make(os.path.join(folder, "base.raw"), "raw", data=BASE_DATA)
        top_path = _make(os.path.join(folder, "top.qcow2"), "qcow2", "-b", base_path, "-F", "raw")
        nodes: list[str] = []
        try:
            failing = {
                "driver": "raw",
                "node-name": base,
                "file": {
                    "driver": "blkdebug",
                    "image": {"driver": "file", "filename": base_path},
                    "inject-error": [{"event": "read_aio", "sector": sector, "errno": 5}],
                },
            }
            added = ctx.call(session, "blockdev-add", failing)
            if added.is_error:
                raise Skip(f"no blkdebug node here: {added.desc}")
            nodes.append(base)
            _ok(ctx, session, "blockdev-add", _file("qcow2", top, top_path, backing=base), "qcow2")
            nodes.append(top)
            _ok(ctx, session, "blockdev-add", _null(other), "a null-co node")
            nodes.append(other)
            outside = ctx.call(session, "block-stream", {"device": top, "base-node": other})
            if not outside.is_error:
                raise Fail(
                    f"block-stream accepted base-node {other}, which is no backing image of {top}",
                    expected="an error: the base must be in the chain",
                    seen=outside.brief(300),
                )
            _ok(ctx, session, "block-stream", {"job-id": job, "device": top}, "a stream")
            end = watch.wait(
                f"the end of {job}",
                lambda: next(
                    iter(
                        [
                            e
                            for e in watch.events(job=job)
                            if e.obj.get("event") in TERMINAL_EVENTS[:2]
                        ]
                    ),
                    None,
                ),
            )
            watch.reach(job, "null")
            watch.one_end(job)
            data = as_object(end.obj.get("data"))
            if end.obj.get("event") != "BLOCK_JOB_COMPLETED" or not data.get("error"):
                raise Fail(
                    f"a stream whose reads fail ended without saying so: {end.obj.get('event')}",
                    expected=f"BLOCK_JOB_COMPLETED with 'error' (J2: {JOB_RULES['J2']})",
                    seen=end.brief(300),
                )
        finally:
            _cleanup(ctx, session, [], nodes)
    return f"{job} failed with {data['error']!r}; a base outside the chain was refused"


@contextlib.contextmanager
def _mirror_job(
    ctx: Context, stem: str, *needs: str, **args: Any
) -> Iterator[tuple[Session, Watch, str]]:
    """A mirror job between two fresh null-co nodes, and its watch; the job and
    the nodes are cleaned away afterwards.  Raises :class:`Skip` when the target
    lacks the commands, :class:`Fail` when it refuses the mirror."""
    _needs(ctx, "blockdev-add", "blockdev-del", "blockdev-mirror", *needs)
    session = ctx.shared()
    source, target, job = _names(ctx, session, "src", "dst", stem)
    watch = Watch(ctx, session, job)
    try:
        for node in (source, target):
            _ok(ctx, session, "blockdev-add", _null(node), "a null-co node")
        mirror = {"job-id": job, "device": source, "target": target, "sync": "full", **args}
        _ok(ctx, session, "blockdev-mirror", mirror, "a mirror between null-co nodes")
        yield session, watch, job
    finally:
        _cleanup(ctx, session, [job], [source, target])


@check(
    "jobs.cancel", "J5,J1", "a cancelled block job ends with one BLOCK_JOB_CANCELLED", QMP_DIALECTS
)
def cancel(ctx: Context) -> str:
    """Cancel a mirror that crawls (CRAWL): one BLOCK_JOB_CANCELLED, no
    BLOCK_JOB_COMPLETED (J5).  Raises :class:`Skip` or :class:`Fail`."""
    with _mirror_job(ctx, "cancel", "block-job-cancel", **CRAWL) as (session, watch, job):
        watch.reach(job, "running")
        _ok(ctx, session, "block-job-cancel", {"device": job}, "a running job")
        watch.event("BLOCK_JOB_CANCELLED", job)
        watch.reach(job, "null")
        watch.quiet(0.2)
        end = watch.one_end(job)
    return f"{job}: {end.obj.get('event')} once"


@check(
    "jobs.mirror-complete",
    "J5,J1",
    "a mirror reports BLOCK_JOB_READY, then block-job-complete ends it with BLOCK_JOB_COMPLETED",
    QMP_DIALECTS,
)
def mirror_complete(ctx: Context) -> str:
    """Mirror one null-co node into another: BLOCK_JOB_READY, then
    ``block-job-complete`` gives one BLOCK_JOB_COMPLETED without ``error`` (J5).
    Raises :class:`Skip` or :class:`Fail`."""
    with _mirror_job(ctx, "mirror", "block-job-complete") as (session, watch, job):
        watch.event("BLOCK_JOB_READY", job)
        _ok(ctx, session, "block-job-complete", {"device": job}, "a ready mirror")
        done = watch.event("BLOCK_JOB_COMPLETED", job)
        watch.reach(job, "null")
        watch.one_end(job)
        if "error" in as_object(done.obj.get("data")):
            raise Fail(
                "a completed mirror reports an error",
                expected=f"no 'error' (J2: {JOB_RULES['J2']})",
                seen=done.brief(300),
            )
    return f"{job}: ready, completed"


def _listed(ctx: Context, session: Session, command: str, key: str) -> dict[str, dict[str, Any]]:
    reply = ctx.call(session, command)
    return {str(j.get(key)): j for j in _items(reply)}


def _agrees(ctx: Context, session: Session, watch: Watch, job: str) -> str:
    """Both listings show ``job`` in a status its events gave it while the
    listing was taken (J3); that status.  Raises :class:`Fail`."""
    seen = ""
    for command, key in (("query-block-jobs", "device"), ("query-jobs", "id")):
        if command not in ctx.commands():
            continue
        before = len(watch.statuses(job))
        listed = _listed(ctx, session, command, key).get(job)
        watch.quiet(0.02)
        window = watch.statuses(job)[before - 1 :]
        seen = str(None if listed is None else listed.get("status"))
        if seen not in window:
            raise Fail(
                f"{command} shows {job} {'nowhere' if listed is None else f'in {seen!r}'} "
                f"while its events say {' then '.join(window)}",
                expected=f"{job} listed in a status its events announced (J3: {JOB_RULES['J3']})",
                seen=str(listed),
            )
    return seen


@check(
    "jobs.pause-resume",
    "J3,J1",
    "pause, resume and set-speed show in the events and the job listings alike",
    QMP_DIALECTS,
)
def pause_resume(ctx: Context) -> str:
    """Pause a crawling mirror, change its speed, resume it: each status its
    events announce is the one ``query-block-jobs`` and ``query-jobs`` show
    (J3), and the new speed is listed.  Raises :class:`Skip` or :class:`Fail`."""
    verbs = ("block-job-pause", "block-job-resume", "block-job-set-speed", "query-block-jobs")
    with _mirror_job(ctx, "pause", *verbs, **CRAWL) as (session, watch, job):
        watch.reach(job, "running")
        _agrees(ctx, session, watch, job)
        _ok(ctx, session, "block-job-pause", {"device": job}, "a running job")
        watch.reach(job, "paused")
        if _agrees(ctx, session, watch, job) != "paused":
            raise Fail(f"{job} did not stay paused", seen=str(watch.statuses(job)))
        _ok(ctx, session, "block-job-set-speed", {"device": job, "speed": 4096}, "a paused job")
        speed = _listed(ctx, session, "query-block-jobs", "device").get(job, {}).get("speed")
        if speed != 4096:
            raise Fail(
                f"query-block-jobs lists {job} at speed {speed} after block-job-set-speed 4096",
                expected="speed 4096",
                seen=str(speed),
            )
        _ok(ctx, session, "block-job-resume", {"device": job}, "a paused job")
        watch.wait(f"{job} running again", lambda: watch.statuses(job).count("running") >= 2)
        _agrees(ctx, session, watch, job)
    return f"{job}: running, paused, speed 4096, running; listings agreed each time"


#: How soon a pause must show on a job asleep under its rate limit.
PAUSE_WITHIN = 5.0


@check(
    "jobs.pause-throttled",
    "J9,J1",
    "a job asleep under its rate limit still pauses at once",
    QMP_DIALECTS,
)
def pause_throttled(ctx: Context) -> str:
    """A mirror limited to 1 byte/s copies a chunk, then sleeps for as long as
    the limit asks (days); ``block-job-pause`` must still take it to
    ``paused`` at once, and ``block-job-resume`` back to ``running`` (J9).
    Raises :class:`Skip` or :class:`Fail`."""
    verbs = ("block-job-pause", "block-job-resume")
    with _mirror_job(ctx, "throttled", *verbs, speed=1) as (session, watch, job):
        watch.reach(job, "running")
        watch.quiet(0.2)  # let it copy its first chunk and fall asleep
        _ok(ctx, session, "block-job-pause", {"device": job}, "a running job")
        try:
            watch.reach(job, "paused", timeout=PAUSE_WITHIN)
        except Fail as exc:
            listed = _listed(ctx, session, "query-block-jobs", "device").get(job)
            raise Fail(
                f"{job}, asleep under a 1 byte/s limit, was not paused {PAUSE_WITHIN:g} s "
                f"after block-job-pause",
                expected=f"JOB_STATUS_CHANGE to paused at once (J9: {JOB_RULES['J9']})",
                seen=f"statuses {watch.statuses(job)}; query-block-jobs: {listed}",
            ) from exc
        _ok(ctx, session, "block-job-resume", {"device": job}, "a paused job")
        watch.wait(f"{job} running again", lambda: watch.statuses(job).count("running") >= 2)
    return f"{job} paused and resumed while asleep under its rate limit"


@check(
    "jobs.manual",
    "J4,J3,J1",
    "auto-finalize and auto-dismiss false: the job waits for job-finalize and job-dismiss",
    QMP_DIALECTS,
)
def manual(ctx: Context) -> str:
    """A mirror started with ``auto-finalize: false`` and ``auto-dismiss: false``,
    completed: it must stay in ``pending`` until ``job-finalize``, then in
    ``concluded`` (still listed) until ``job-dismiss``, which takes it to
    ``null`` and out of ``query-jobs`` (J4, J3).  Raises :class:`Skip` or
    :class:`Fail`."""
    verbs = ("block-job-complete", "job-finalize", "job-dismiss", "query-jobs")
    manual_end = {"auto-finalize": False, "auto-dismiss": False}
    with _mirror_job(ctx, "manual", *verbs, **manual_end) as (session, watch, job):
        watch.event("BLOCK_JOB_READY", job)
        _ok(ctx, session, "block-job-complete", {"device": job}, "a ready mirror")
        for status, verb in (("pending", "job-finalize"), ("concluded", "job-dismiss")):
            watch.reach(job, status)
            watch.quiet(STAY)
            if watch.status(job) != status:
                raise Fail(
                    f"{job} left {status} by itself: {watch.statuses(job)}",
                    expected=f"{status} until {verb} (J4: {JOB_RULES['J4']})",
                    seen=watch.status(job),
                )
            _agrees(ctx, session, watch, job)
            _ok(ctx, session, verb, {"id": job}, f"a {status} job")
        watch.reach(job, "null")
        listed = _listed(ctx, session, "query-jobs", "id")
        if job in listed:
            raise Fail(
                f"{job} is still listed after job-dismiss",
                expected=f"no {job} in query-jobs (J3: {JOB_RULES['J3']})",
                seen=str(listed[job]),
            )
    return f"{job}: waited in pending and in concluded for the client"


#: Job commands and the error class each must give for an id no job has (J6).
MISSING: tuple[tuple[str, str, str], ...] = (
    ("block-job-pause", "device", "DeviceNotActive"),
    ("block-job-cancel", "device", "DeviceNotActive"),
    ("block-job-set-speed", "device", "DeviceNotActive"),
    ("job-pause", "id", "GenericError"),
    ("job-cancel", "id", "GenericError"),
    ("job-dismiss", "id", "GenericError"),
)


@check(
    "jobs.missing", "J6", "job commands on an id no job has fail with the right class", QMP_DIALECTS
)
def missing(ctx: Context) -> str:
    """Each job command of MISSING, on an id no job has: the class J6 names.
    Raises :class:`Skip` when the target has none of them, :class:`Fail` as said."""
    _needs(ctx)
    present = [m for m in MISSING if m[0] in ctx.commands()]
    if not present:
        raise Skip("the target offers no job command")
    session = ctx.shared()
    (nobody,) = _names(ctx, session, "no-such-job")
    for command, member, expected in present:
        args: dict[str, Any] = {member: nobody}
        if command == "block-job-set-speed":
            args["speed"] = 0
        reply = ctx.call(session, command, args)
        if reply.error_class != expected:
            raise Fail(
                f"{command} on a job nobody started: {reply.error_class or 'a return'}",
                expected=f"{expected} (J6: {JOB_RULES['J6']})",
                seen=reply.brief(300),
            )
    return f"{len(present)} job commands refused a missing job with the right class"


@check(
    "jobs.snapshot",
    "J8,J1",
    "snapshot-save, -load and -delete run as jobs that conclude, on a real qcow2 image",
    QMP_DIALECTS,
)
def snapshot(ctx: Context) -> str:
    """Save an internal snapshot of a qcow2 node as a job, load it, delete it:
    each job concludes without ``error`` in ``query-jobs`` (J8), the snapshot
    is on the image after the save and gone after the delete (read with
    ``qemu-img snapshot -l`` on the image file, which the target keeps
    open; ``-U`` shares it).  Raises :class:`Skip` without the commands, the
    tools or a local target, and :class:`Fail` as said."""
    _needs(
        ctx,
        "blockdev-add",
        "blockdev-del",
        "snapshot-save",
        "snapshot-load",
        "snapshot-delete",
        "query-jobs",
        "job-dismiss",
    )
    _local(ctx)
    session = ctx.shared()
    node, save, load, delete = _names(ctx, session, "snap", "save", "load", "delete")
    watch = Watch(ctx, session, save, load, delete)
    tag = "qmp-conform"
    with _scratch() as folder:
        path = _make(os.path.join(folder, "snap.qcow2"), "qcow2", data=TOP_DATA)
        nodes: list[str] = []
        jobs: list[str] = []
        try:
            _ok(ctx, session, "blockdev-add", _file("qcow2", node, path), "a qcow2 image")
            nodes.append(node)
            steps = ((save, "save", True), (load, "load", True), (delete, "delete", False))
            for job, verb, present in steps:
                args: dict[str, Any] = {"job-id": job, "tag": tag, "devices": [node]}
                if verb != "delete":
                    args["vmstate"] = node
                _ok(ctx, session, f"snapshot-{verb}", args, f"a snapshot-{verb} job")
                jobs.append(job)
                watch.reach(job, "concluded", timeout=SNAPSHOT_TIMEOUT)
                listed = _listed(ctx, session, "query-jobs", "id").get(job)
                if listed is None or listed.get("error"):
                    raise Fail(
                        f"snapshot-{verb} of {tag!r} on {node} did not succeed",
                        expected=f"a concluded job without 'error' (J8: {JOB_RULES['J8']})",
                        seen=str(listed),
                    )
                _ok(ctx, session, "job-dismiss", {"id": job}, "a concluded job")
                jobs.remove(job)
                watch.reach(job, "null")
                if _has_snapshot(path, tag) != present:
                    raise Fail(
                        f"after snapshot-{verb} the image {'lacks' if present else 'still has'} "
                        f"the snapshot {tag!r}",
                        expected=f"the snapshot {'on' if present else 'gone from'} the image "
                        f"(J8: {JOB_RULES['J8']})",
                        seen=images.qemu_img("snapshot", "-U", "-l", path) or "no snapshots",
                    )
        finally:
            _cleanup(ctx, session, jobs, nodes)
    return f"{tag!r} saved, loaded and deleted by three jobs on {node}"


def _has_snapshot(path: str, tag: str) -> bool:
    try:
        listed = images.qemu_img("snapshot", "-U", "-l", path)
    except images.ImageError as exc:
        raise Fail("the image cannot be read after the job", seen=str(exc)) from exc
    return any(tag in line.split() for line in listed.splitlines()[2:])
