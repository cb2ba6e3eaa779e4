"""A management session with qemu.qmp's QMPClient: what it prints is its result.

Usage: python qemu_qmp_session.py SOCKET
"""

from __future__ import annotations

import asyncio
import sys

from qemu.qmp import ExecuteError, QMPClient, QMPError

TIMEOUT = 10


async def session(path: str) -> None:
    client = QMPClient("qmp-conformance")
    await asyncio.wait_for(client.connect(path), TIMEOUT)
    try:
        version = await asyncio.wait_for(client.execute("query-version"), TIMEOUT)
        print("version", version["qemu"]["major"], version["qemu"]["minor"])
        status = await asyncio.wait_for(client.execute("query-status"), TIMEOUT)
        print("status", status["status"])
        try:
            await asyncio.wait_for(client.execute("blockdev-del", {"node-name": "none"}), TIMEOUT)
        except ExecuteError as err:
            print("error", err.error_class)
        with client.listener(("STOP",)) as listener:
            await asyncio.wait_for(client.execute("stop"), TIMEOUT)
            event = await asyncio.wait_for(listener.get(), TIMEOUT)
            print("event", event["event"])
        await asyncio.wait_for(client.execute("cont"), TIMEOUT)
        status = await asyncio.wait_for(client.execute("query-status"), TIMEOUT)
        print("status", status["status"])
    finally:
        await client.disconnect()


if __name__ == "__main__":
    try:
        asyncio.run(session(sys.argv[1]))
    except (TimeoutError, QMPError, EOFError, OSError) as err:
        # The library's own ways of saying a session failed: a clean failure.
        print("failed", type(err).__name__)
        sys.exit(1)
