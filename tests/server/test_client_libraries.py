"""Real QMP client libraries from PyPI run a management session against the reference server.

Two libraries: ``qemu.qmp`` (the async ``QMPClient``) and the older ``qmp``
package (``QEMUMonitorProtocol``, synchronous).  Each runs the same session a
management tool runs: negotiate, query the machine, add block nodes, mirror
one into the other and cancel the job, remove the nodes, meet an error, stop
and continue the guest, quit.  The reference server serves its bundled schema
and, with ../shared/corpus present, QEMU 7.2's live introspection.  With
qemu-system-x86_64 installed the same sessions run against it too, so every
expectation below is QEMU's own.  A forced cancel of a ready mirror (which
the reference server once ended with BLOCK_JOB_COMPLETED) is a test of its
own at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qmp  # type: ignore[import-untyped]  # the old library has no type information
from qemu.qmp import EventListener, ExecuteError, QMPClient, Runstate
from server_wire import QEMU, qemu_server

from reference_server import launch

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "introspection"

#: Every wait on a server has this deadline, so a silent server fails a test.
TIMEOUT = 5.0
#: Null nodes this big, mirrored at this rate, keep the job running (not yet
#: ready) for seconds on both servers: long enough to see it and cancel it.
SIZE = 64 << 20
SPEED = 1 << 20
JOB = "mirror0"

#: What the session needs; any management tool checks query-commands first.
NEEDED = {
    "query-version",
    "query-status",
    "query-name",
    "query-block",
    "human-monitor-command",
    "blockdev-add",
    "blockdev-del",
    "blockdev-mirror",
    "query-block-jobs",
    "block-job-cancel",
    "stop",
    "cont",
    "quit",
}
#: Asked for only when served: QEMU's schema has them, the bundled one does not.
OPTIONAL: dict[str, dict[str, Any]] = {
    "query-cpus-fast": {},
    "query-named-block-nodes": {},
    "qom-list": {"path": "/machine"},
}

#: A cancelled mirror, as QEMU 7.2 reports it.
CANCELLED_SEQUENCE = [
    ("JOB_STATUS_CHANGE", "created"),
    ("JOB_STATUS_CHANGE", "running"),
    ("JOB_STATUS_CHANGE", "aborting"),
    ("BLOCK_JOB_CANCELLED", None),
    ("JOB_STATUS_CHANGE", "concluded"),
    ("JOB_STATUS_CHANGE", "null"),
]
JOB_EVENTS = ("JOB_STATUS_CHANGE", "BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_READY")


@dataclass(frozen=True)
class Server:
    path: str
    #: Serves QEMU's full schema (the reference server with the corpus, or QEMU).
    qemu_schema: bool
    reference: bool


def _wait_listening(path: str) -> None:
    """qemu_server() returns once QEMU has bound the socket, maybe before it listens."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
                return
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.01)


@pytest.fixture(
    params=[
        "reference",
        pytest.param("reference-qemu-7.2-schema", marks=pytest.mark.corpus),
        pytest.param("qemu", marks=pytest.mark.qemu),
    ]
)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """A fresh server per test: every session ends with ``quit``."""
    kind = request.param
    if kind == "qemu":
        if QEMU is None:
            pytest.skip("qemu-system-x86_64 is not installed")
        with qemu_server() as path:
            _wait_listening(path)
            yield Server(path, qemu_schema=True, reference=False)
        return
    schema = None
    if kind == "reference-qemu-7.2-schema":
        source = CORPUS / "qemu-7.2.json"
        if not source.exists():
            pytest.skip("../shared/corpus is absent")
        schema = str(source)
    with launch(schema=schema, timeout=TIMEOUT) as path:
        yield Server(path, qemu_schema=schema is not None, reference=True)


# -- what both libraries must see --------------------------------------------


def check_version(server: Server, greeting_version: Mapping[str, Any], version: Any) -> None:
    assert version == dict(greeting_version)
    if server.reference:  # QEMU's is whatever release is installed
        assert (version["qemu"]["major"], version["qemu"]["minor"]) == (7, 2)


def hmp_version(version: Mapping[str, Any]) -> str:
    """What HMP ``info version`` prints for a query-version value (QEMU: no space)."""
    triple = version["qemu"]
    return f"{triple['major']}.{triple['minor']}.{triple['micro']}{version['package']}\r\n"


def check_commands(server: Server, commands: set[str]) -> None:
    assert commands >= NEEDED
    if server.qemu_schema:
        assert commands >= set(OPTIONAL)


def check_optional_queries(results: dict[str, Any]) -> None:
    """What a ``-machine none`` QEMU answers: no CPU, ObjectPropertyInfo lists."""
    if "query-cpus-fast" in results:
        assert results["query-cpus-fast"] == []
    if "qom-list" in results:
        props = results["qom-list"]
        assert isinstance(props, list)
        assert all(isinstance(p["name"], str) and isinstance(p["type"], str) for p in props)
    if "query-named-block-nodes" in results:
        assert results["query-named-block-nodes"] == []  # before any blockdev-add


def check_nodes(nodes: Any) -> None:
    """query-named-block-nodes after adding ``src`` and ``dst`` (any order)."""
    seen = {n["node-name"]: (n["drv"], n["ro"], n["image"]["virtual-size"]) for n in nodes}
    assert seen == {"src": ("null-co", False, SIZE), "dst": ("null-co", False, SIZE)}


def check_running_job(jobs: Any) -> None:
    assert len(jobs) == 1
    job = jobs[0]
    assert (job["device"], job["type"], job["status"]) == (JOB, "mirror", "running")
    assert (job["len"], job["speed"], job["ready"], job["paused"]) == (SIZE, SPEED, False, False)
    assert 0 <= job["offset"] < SIZE


def check_cancelled_job(events: list[Mapping[str, Any]]) -> None:
    for event in events:
        stamp = event["timestamp"]
        assert stamp["seconds"] > 0 and 0 <= stamp["microseconds"] <= 999999
    seen = [(e["event"], e["data"].get("status")) for e in events]
    assert seen == CANCELLED_SEQUENCE
    assert all(e["data"]["id"] == JOB for e in events if e["event"] == "JOB_STATUS_CHANGE")
    cancelled = events[3]["data"]
    assert (cancelled["device"], cancelled["type"]) == (JOB, "mirror")
    assert (cancelled["len"], cancelled["speed"]) == (SIZE, SPEED)
    assert 0 <= cancelled["offset"] < SIZE  # stopped before the end


def job_over(event: Mapping[str, Any]) -> bool:
    return bool(event["event"] == "JOB_STATUS_CHANGE" and event["data"]["status"] == "null")


def job_running(event: Mapping[str, Any]) -> bool:
    return bool(event["event"] == "JOB_STATUS_CHANGE" and event["data"]["status"] == "running")


MIRROR = {"job-id": JOB, "device": "src", "target": "dst", "sync": "full", "speed": SPEED}
DUPLICATE_NODE = "Duplicate nodes with node-name='src'"
MISSING_NODE = "Failed to find node with node-name='src'"
SHUTDOWN = {"guest": False, "reason": "host-qmp-quit"}


# -- qemu.qmp ------------------------------------------------------------------

T = TypeVar("T")


async def _within(aw: Awaitable[T]) -> T:
    return await asyncio.wait_for(aw, TIMEOUT)


async def _events_until(
    listener: EventListener, last: Callable[[Mapping[str, Any]], bool]
) -> list[Mapping[str, Any]]:
    events: list[Mapping[str, Any]] = []
    while not events or not last(events[-1]):
        events.append(await _within(listener.get()))
    return events


async def _hung_up(client: QMPClient) -> None:
    while client.runstate is not Runstate.DISCONNECTING:
        await client.runstate_changed()


async def _qemu_qmp_session(server: Server) -> None:
    client = QMPClient("management")
    await _within(client.connect(server.path))
    try:

        async def run(name: str, arguments: dict[str, Any] | None = None) -> Any:
            return await _within(client.execute(name, arguments))

        # qemu.qmp negotiates enable:["oob"] when the greeting offers it.
        assert client.greeting is not None
        assert "oob" in client.greeting.QMP.capabilities
        version = await run("query-version")
        check_version(server, client.greeting.QMP.version, version)
        assert await run("query-status") == {
            "status": "running",
            "singlestep": False,
            "running": True,
        }
        commands = {c["name"] for c in await run("query-commands")}
        check_commands(server, commands)
        assert await run("query-name") == {}
        assert await run("query-block") == []
        served = [n for n in OPTIONAL if n in commands]
        check_optional_queries({n: await run(n, OPTIONAL[n]) for n in served})
        # query-cpus left QEMU in 6.0: a tool probing for it falls back on query-cpus-fast.
        with pytest.raises(ExecuteError) as err:
            await run("query-cpus")
        assert err.value.error_class == "CommandNotFound"
        info = await run("human-monitor-command", {"command-line": "info version"})
        assert info == hmp_version(version)
        # Out of band, as qemu.qmp offers it: yank is allow-oob, query-name is not.
        assert await _within(client.execute("query-yank", oob=True)) == [
            {"type": "chardev", "id": "compat_monitor0"}
        ]
        with pytest.raises(ExecuteError) as err:
            await _within(client.execute("query-name", oob=True))
        assert err.value.error_class == "GenericError"

        for node in ("src", "dst"):
            assert (
                await run("blockdev-add", {"driver": "null-co", "node-name": node, "size": SIZE})
                == {}
            )
        if "query-named-block-nodes" in commands:
            check_nodes(await run("query-named-block-nodes"))
        with pytest.raises(ExecuteError) as err:
            await run("blockdev-add", {"driver": "null-co", "node-name": "src"})
        assert (err.value.error_class, str(err.value)) == (
            "GenericError",
            DUPLICATE_NODE,
        )

        with client.listener(JOB_EVENTS) as listener:
            assert await run("blockdev-mirror", MIRROR) == {}
            events = await _events_until(listener, job_running)
            check_running_job(await run("query-block-jobs"))
            assert await run("block-job-cancel", {"device": JOB}) == {}
            events += await _events_until(listener, job_over)
        check_cancelled_job(events)
        assert await run("query-block-jobs") == []
        with pytest.raises(ExecuteError) as err:
            await run("block-job-cancel", {"device": JOB})
        assert err.value.error_class == "DeviceNotActive"

        for node in ("dst", "src"):
            assert await run("blockdev-del", {"node-name": node}) == {}
        if "query-named-block-nodes" in commands:
            assert await run("query-named-block-nodes") == []
        with pytest.raises(ExecuteError) as err:
            await run("blockdev-del", {"node-name": "src"})
        assert (err.value.error_class, str(err.value)) == ("GenericError", MISSING_NODE)

        with client.listener(("STOP", "RESUME")) as listener:
            assert await run("stop") == {}
            assert (await _within(listener.get()))["event"] == "STOP"
            assert (await run("query-status"))["status"] == "paused"
            assert await run("cont") == {}
            assert (await _within(listener.get()))["event"] == "RESUME"
            assert (await run("query-status"))["running"] is True

        with client.listener("SHUTDOWN") as listener:
            assert await run("quit") == {}
            assert (await _within(listener.get()))["data"] == SHUTDOWN
        # The server hangs up; qemu.qmp reports it as EOFError from disconnect().
        await _within(_hung_up(client))
        with pytest.raises(EOFError):
            await _within(client.disconnect())
        assert client.runstate is Runstate.IDLE
    finally:
        if client.runstate is not Runstate.IDLE:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), TIMEOUT)


def test_qemu_qmp_management_session(server: Server) -> None:
    asyncio.run(_qemu_qmp_session(server))


async def _oob_overtakes(path: str, fifo: str) -> None:
    client = QMPClient("conformance-oob")
    await _within(client.connect(path))
    try:
        blocker = asyncio.ensure_future(
            client.execute(
                "blockdev-add",
                {
                    "driver": "blkdebug",
                    "node-name": "blk",
                    "config": fifo,
                    "image": {"driver": "null-co"},
                },
            )
        )
        quick = asyncio.ensure_future(client.execute("query-name"))
        await asyncio.sleep(0.1)
        # The in-band pair is stuck behind the FIFO; OOB still answers.
        assert await _within(client.execute("query-yank", oob=True))
        assert not blocker.done() and not quick.done()
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        assert await _within(blocker) == {}
        assert await _within(quick) == {}
    finally:
        await _within(client.disconnect())


def test_qemu_qmp_oob_overtakes_blocked_command(tmp_path: Path) -> None:
    fifo = str(tmp_path / "cfg.fifo")
    os.mkfifo(fifo)
    with launch(timeout=TIMEOUT) as path:
        asyncio.run(_oob_overtakes(path, fifo))


# -- qmp (the older synchronous library) ---------------------------------------


class _Events:
    """Waits on the old library's event queue, with a deadline."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def next(self) -> Mapping[str, Any]:
        try:
            event = self.client.pull_event(wait=TIMEOUT)
        finally:
            # pull_event leaves the socket blocking without a timeout.
            self.client.settimeout(TIMEOUT)
        assert event is not None
        return event  # type: ignore[no-any-return]

    def until(self, last: Callable[[Mapping[str, Any]], bool]) -> list[Mapping[str, Any]]:
        deadline = time.monotonic() + TIMEOUT
        events = [self.next()]
        while not last(events[-1]):
            assert time.monotonic() < deadline
            events.append(self.next())
        return events


def _qmp_session(server: Server) -> None:
    client = qmp.QEMUMonitorProtocol(server.path)
    client.settimeout(TIMEOUT)  # connect and every read
    events = _Events(client)
    try:
        greeting = client.connect()
        # oob is offered, but the old library enables no capability (checked below).
        assert "oob" in greeting["QMP"]["capabilities"]
        version = client.command("query-version")
        check_version(server, greeting["QMP"]["version"], version)
        assert client.command("query-status") == {
            "status": "running",
            "singlestep": False,
            "running": True,
        }
        commands = {c["name"] for c in client.command("query-commands")}
        check_commands(server, commands)
        assert client.command("query-name") == {}
        assert client.command("query-block") == []
        served = [n for n in OPTIONAL if n in commands]
        check_optional_queries({n: client.command(n, **OPTIONAL[n]) for n in served})
        # query-cpus left QEMU in 6.0: a tool probing for it falls back on query-cpus-fast.
        assert client.cmd("query-cpus")["error"]["class"] == "CommandNotFound"
        info = client.command("human-monitor-command", **{"command-line": "info version"})
        assert info == hmp_version(version)
        # So exec-oob is refused, as QEMU refuses it without negotiated oob.
        reply = client.cmd_obj({"exec-oob": "query-yank"})
        assert reply["error"]["class"] == "GenericError"

        for node in ("src", "dst"):
            assert (
                client.command("blockdev-add", driver="null-co", size=SIZE, **{"node-name": node})
                == {}
            )
        if "query-named-block-nodes" in commands:
            check_nodes(client.command("query-named-block-nodes"))
        # command() maps an error reply to a bare Exception carrying only
        # desc; the class is in the raw reply of cmd().
        with pytest.raises(Exception, match=re.escape(DUPLICATE_NODE)) as exc:
            client.command("blockdev-add", driver="null-co", **{"node-name": "src"})
        assert type(exc.value) is Exception

        assert client.command("blockdev-mirror", **MIRROR) == {}
        job_events = [e for e in events.until(job_running) if e["event"] in JOB_EVENTS]
        check_running_job(client.command("query-block-jobs"))
        assert client.command("block-job-cancel", device=JOB) == {}
        job_events += [e for e in events.until(job_over) if e["event"] in JOB_EVENTS]
        check_cancelled_job(job_events)
        assert client.command("query-block-jobs") == []
        reply = client.cmd("block-job-cancel", {"device": JOB})
        assert reply["error"]["class"] == "DeviceNotActive"

        for node in ("dst", "src"):
            assert client.command("blockdev-del", **{"node-name": node}) == {}
        if "query-named-block-nodes" in commands:
            assert client.command("query-named-block-nodes") == []
        reply = client.cmd("blockdev-del", {"node-name": "src"})
        assert reply["error"] == {"class": "GenericError", "desc": MISSING_NODE}
        with pytest.raises(Exception, match=re.escape(MISSING_NODE)):
            client.command("blockdev-del", **{"node-name": "src"})

        assert client.command("stop") == {}
        assert events.next()["event"] == "STOP"
        assert client.command("query-status")["status"] == "paused"
        assert client.command("cont") == {}
        assert events.next()["event"] == "RESUME"
        assert client.command("query-status")["running"] is True
        assert client.get_events() == []  # no stray or doubled event
        client.settimeout(TIMEOUT)

        assert client.command("quit") == {}
        shutdown = events.next()
        assert (shutdown["event"], shutdown["data"]) == ("SHUTDOWN", SHUTDOWN)
        # The server hangs up: waiting for more raises the library's connect error.
        with pytest.raises(qmp.QMPConnectError):
            client.pull_event(wait=TIMEOUT)
    finally:
        client.close()


def test_qmp_management_session(server: Server) -> None:
    _qmp_session(server)


# -- a forced cancel of a ready mirror ----------------------------------------


async def _add_nodes(client: QMPClient) -> None:
    for node in ("src", "dst"):
        arguments = {"driver": "null-co", "node-name": node, "size": SIZE}
        assert await _within(client.execute("blockdev-add", arguments)) == {}


async def _cancel_ready_mirror(server: Server, verb: str, arguments: dict[str, Any]) -> None:
    client = QMPClient("management")
    await _within(client.connect(server.path))
    try:
        await _add_nodes(client)
        with client.listener(JOB_EVENTS) as listener:
            mirror = {"job-id": JOB, "device": "src", "target": "dst", "sync": "full"}
            assert await _within(client.execute("blockdev-mirror", mirror)) == {}
            ready = await _events_until(listener, lambda e: e["event"] == "BLOCK_JOB_READY")
            assert ready[-1]["data"]["device"] == JOB
            assert await _within(client.execute(verb, arguments)) == {}
            events = await _events_until(listener, job_over)
        seen = [(e["event"], e["data"].get("status")) for e in events]
        assert seen == CANCELLED_SEQUENCE[2:]
        cancelled = events[1]["data"]
        assert (cancelled["device"], cancelled["offset"], cancelled["len"]) == (JOB, SIZE, SIZE)
    finally:
        await _within(client.disconnect())


@pytest.mark.parametrize(
    ("verb", "arguments"),
    [("job-cancel", {"id": JOB}), ("block-job-cancel", {"device": JOB, "force": True})],
    ids=["job-cancel", "block-job-cancel-force"],
)
def test_force_cancelling_a_ready_mirror_aborts_it(
    server: Server, verb: str, arguments: dict[str, Any]
) -> None:
    asyncio.run(_cancel_ready_mirror(server, verb, arguments))
