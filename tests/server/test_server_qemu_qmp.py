"""The real client, qemu.qmp (PyPI), against the reference server."""

from __future__ import annotations

import asyncio
import os

import pytest

from reference_server import launch

qmp = pytest.importorskip("qemu.qmp")


async def _session(path: str) -> None:
    client = qmp.QMPClient("conformance")
    await asyncio.wait_for(client.connect(path), 5)
    try:
        # qemu.qmp negotiates with enable:["oob"] when the greeting offers it.
        assert client.greeting is not None
        assert "oob" in client.greeting.QMP.capabilities
        version = await asyncio.wait_for(client.execute("query-version"), 5)
        assert version == dict(client.greeting.QMP.version)
        assert await asyncio.wait_for(client.execute("yank", {"instances": []}, oob=True), 5) == {}
        assert await asyncio.wait_for(client.execute("query-yank", oob=True), 5) == [
            {"type": "chardev", "id": "compat_monitor0"}
        ]
        with pytest.raises(qmp.ExecuteError) as err:
            await asyncio.wait_for(client.execute("query-name", oob=True), 5)
        assert err.value.error_class == "GenericError"
        with client.listener() as listener:
            assert await asyncio.wait_for(client.execute("stop"), 5) == {}
            event = await asyncio.wait_for(listener.get(), 5)
            assert event["event"] == "STOP"
            assert await asyncio.wait_for(client.execute("cont"), 5) == {}
            event = await asyncio.wait_for(listener.get(), 5)
            assert event["event"] == "RESUME"
        with pytest.raises(qmp.ExecuteError) as err:
            await asyncio.wait_for(client.execute("block-job-pause", {"device": "x"}), 5)
        assert err.value.error_class == "DeviceNotActive"
    finally:
        await client.disconnect()


async def _oob_overtakes(path: str, fifo: str) -> None:
    client = qmp.QMPClient("conformance-oob")
    await asyncio.wait_for(client.connect(path), 5)
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
        assert await asyncio.wait_for(client.execute("query-yank", oob=True), 5)
        assert not blocker.done() and not quick.done()
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        assert await asyncio.wait_for(blocker, 5) == {}
        assert await asyncio.wait_for(quick, 5) == {}
    finally:
        await client.disconnect()


def test_qemu_qmp_session() -> None:
    with launch() as path:
        asyncio.run(_session(path))


def test_qemu_qmp_oob_overtakes_blocked_command(tmp_path: object) -> None:
    fifo = os.path.join(str(tmp_path), "cfg.fifo")
    os.mkfifo(fifo)
    with launch() as path:
        asyncio.run(_oob_overtakes(path, fifo))
