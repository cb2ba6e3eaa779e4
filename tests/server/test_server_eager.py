"""Commands that finish at once run in the pump; commands that wait go on in a task.

Both must look the same from outside: replies in order, a waiting command's
result, exception or cancellation reaching it as if a task had run it from
the start, and output batched without a byte changed.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from typing import Any

import pytest

from reference_server.commands import CommandContext
from reference_server.server import ReferenceServer, ServerConfig, _Resume


def _started(coro: Any) -> Any:
    """Step ``coro`` once, as the pump does; what it waits on."""
    return coro.send(None)


def test_resume_carries_on_a_started_coroutine() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[int] = loop.create_future()

        async def waits() -> int:
            first = await gate
            await asyncio.sleep(0)  # a bare yield too
            return first + 1

        coro = waits()
        task = loop.create_task(_resume(coro, _started(coro)))
        await asyncio.sleep(0)
        assert not task.done()
        gate.set_result(41)
        assert await task == 42

    asyncio.run(main())


def test_resume_passes_exceptions_and_cancellation_in() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        failing: asyncio.Future[int] = loop.create_future()
        seen: list[str] = []

        async def catches() -> str:
            try:
                await failing
            except ValueError as exc:
                return f"caught {exc}"
            return "not reached"

        coro = catches()
        task = loop.create_task(_resume(coro, _started(coro)))
        failing.set_exception(ValueError("boom"))
        assert await task == "caught boom"

        async def cancelled() -> None:
            try:
                await loop.create_future()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        coro2 = cancelled()
        task2 = loop.create_task(_resume(coro2, _started(coro2)))
        await asyncio.sleep(0)
        task2.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task2
        assert seen == ["cancelled"]

    asyncio.run(main())


async def _resume(coro: Any, pending: Any) -> Any:
    return await _Resume(coro, pending)


def test_pipelined_mix_of_quick_and_waiting_commands_is_answered_in_order() -> None:
    """query-name answers at once; query-version is made to wait a loop turn
    every third time, so the pump runs some commands itself and hands others
    to tasks, with holds in between."""

    async def main(path: str) -> list[Any]:
        server = ReferenceServer(ServerConfig())
        plain = server.handlers["query-version"]
        calls = 0

        async def sometimes_waits(ctx: CommandContext, args: dict[str, Any]) -> Any:
            nonlocal calls
            calls += 1
            if calls % 3 == 0:
                await asyncio.sleep(0)
            return await plain(ctx, args)

        server.handlers["query-version"] = sometimes_waits
        await server.listen_unix(path)
        reader, writer = await asyncio.open_unix_connection(path)
        await reader.readline()
        writer.write(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}')
        await reader.readline()
        requests = [
            b'{"execute":"%s","id":%d}' % (b"query-version" if i % 2 else b"query-name", i)
            for i in range(600)
        ]
        writer.write(b"".join(requests))
        replies = [json.loads(await reader.readline()) for _ in requests]
        writer.close()
        await server.close()
        return replies

    with tempfile.TemporaryDirectory() as tmp:
        replies = asyncio.run(main(os.path.join(tmp, "s.sock")))
    assert [r["id"] for r in replies] == list(range(600))
    assert all("return" in r for r in replies)
    assert replies[1]["return"]["qemu"] == replies[5]["return"]["qemu"]
