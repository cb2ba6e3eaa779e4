"""The hostile peer's I/O: a UNIX socket in front of a real QMP server.

A client connects to the proxy's socket; for each connection the proxy
connects to the server, passes what the client writes on untouched, and
rewrites what the server writes with one liberty
(:mod:`conformance.client.liberties`) before writing it to the client,
paced and cut as the liberty says.  Both directions are recorded with their
time, as the evidence of every verdict.

The proxy runs on its own event loop in a background thread, so a client
under test can be any process or any blocking library call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance.client.liberties import Liberty, State, render
from conformance.session import Entry

#: The most a server line may hold before the proxy gives up on it.
LINE_LIMIT = 64 << 20


@dataclass
class Record:
    """Both directions of every connection, in arrival order."""

    start: float = field(default_factory=time.monotonic)
    #: (seconds since start, connection number, "client" or "server", bytes).
    chunks: list[tuple[float, int, str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, conn: int, side: str, data: bytes) -> None:
        """Note ``data`` written by ``side`` on connection ``conn``."""
        with self.lock:
            self.chunks.append((time.monotonic() - self.start, conn, side, data))

    def connections(self) -> list[int]:
        """The connection numbers seen."""
        with self.lock:
            return sorted({c for _, c, _, _ in self.chunks})

    def transcript(self) -> list[str]:
        """The exchange as the checks show it: ``->`` what the tool (the server
        side) sent the client, ``<-`` what it received from the client."""
        lines: list[str] = []
        with self.lock:
            chunks = list(self.chunks)
        merged: list[tuple[float, int, str, bytes]] = []
        for t, c, s, d in chunks:  # slow writes arrive in pieces: show lines
            if merged and merged[-1][1:3] == (c, s) and not merged[-1][3].endswith(b"\n"):
                merged[-1] = (merged[-1][0], c, s, merged[-1][3] + d)
            else:
                merged.append((t, c, s, d))
        for t, c, s, d in merged:
            arrow = "->" if s == "server" else "<-"
            lines.append(f"#{c} {Entry(t, arrow, d, len(d)).render()}")
        return lines


class HostileProxy:
    """Listens on ``path``; each connection goes to the server at ``upstream``
    through ``liberty`` (None: untouched)."""

    def __init__(self, upstream: str, path: str, liberty: Liberty | None) -> None:
        self.upstream = upstream
        self.path = path
        self.liberty = liberty
        self.record = Record()
        self._conns = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def serve(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        """Accept clients until ``stop`` is set."""
        server = await asyncio.start_unix_server(self._client, path=self.path, limit=LINE_LIMIT)
        os.chmod(self.path, 0o600)
        ready.set()
        async with server:
            await stop.wait()
            # A client still connected is cut off with the run: closing its
            # streams ends its handler (cancelling it would make asyncio log).
            for writer in list(self._writers):
                writer.close()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=2)

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._conns += 1
        conn = self._conns
        try:
            sr, sw = await asyncio.open_unix_connection(self.upstream, limit=LINE_LIMIT)
        except OSError:
            cw.close()
            return
        self._writers |= {cw, sw}
        to_server = asyncio.ensure_future(self._to_server(conn, cr, sw))
        try:
            await self._to_client(conn, sr, cw)
        finally:
            to_server.cancel()
            for writer in (sw, cw):
                writer.close()
                self._writers.discard(writer)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.gather(to_server, sw.wait_closed(), cw.wait_closed())

    async def _to_server(
        self, conn: int, cr: asyncio.StreamReader, sw: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await cr.read(65536):
                self.record.add(conn, "client", data)
                sw.write(data)
                await sw.drain()
            sw.write_eof()

    async def _to_client(
        self, conn: int, sr: asyncio.StreamReader, cw: asyncio.StreamWriter
    ) -> None:
        state = State()
        index = 0
        written = 0
        limit = self.liberty.cut_at_byte if self.liberty is not None else None
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
            while line := await sr.readline():
                out = self._rewrite(line, state)
                cut = self.liberty is not None and self.liberty.cut_in_message == index
                index += 1
                if cut:
                    out = out[: max(1, len(out) // 2)]
                if limit is not None and written + len(out) >= limit:
                    out, cut = out[: limit - written], True
                await self._write(conn, cw, out)
                written += len(out)
                if cut:
                    return

    def _rewrite(self, line: bytes, state: State) -> bytes:
        if self.liberty is None:
            return line
        try:
            msg = json.loads(line)
        except ValueError:
            return line  # not ours to judge: pass what the server wrote
        if not isinstance(msg, dict):
            return line
        return b"".join(render(item) for item in self.liberty.rewrite(msg, state))

    async def _write(self, conn: int, cw: asyncio.StreamWriter, data: bytes) -> None:
        chunk = self.liberty.chunk if self.liberty is not None else None
        pieces = [data] if not chunk else [data[i : i + chunk] for i in range(0, len(data), chunk)]
        for piece in pieces:
            self.record.add(conn, "server", piece)
            cw.write(piece)
            await cw.drain()
            if chunk and self.liberty is not None and self.liberty.pause:
                await asyncio.sleep(self.liberty.pause)


@contextlib.contextmanager
def running(
    upstream: str, liberty: Liberty | None, timeout: float = 10.0
) -> Iterator[HostileProxy]:
    """A proxy in a background thread, on a fresh socket; stopped at the end.

    Raises :class:`RuntimeError` when it is not listening within ``timeout``.
    """
    with tempfile.TemporaryDirectory(prefix="qmp-client-") as tmp:
        proxy = HostileProxy(upstream, os.path.join(tmp, "qmp.sock"), liberty)
        loop = asyncio.new_event_loop()
        box: dict[str, Any] = {}

        async def main() -> None:
            box["stop"] = asyncio.Event()
            ready = asyncio.Event()
            task = asyncio.ensure_future(proxy.serve(ready, box["stop"]))
            await ready.wait()
            box["ready"] = True
            await task

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while "ready" not in box:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the hostile proxy did not start")
            time.sleep(0.005)
        try:
            yield proxy
        finally:
            loop.call_soon_threadsafe(box["stop"].set)
            thread.join(timeout)
            loop.close()
