"""The bundled reference QMP server: behaves like QEMU 7.2, with dialects and defects.

Public API::

    from reference_server import launch, ServerConfig, ReferenceServer, DEFECTS

    with launch(dialect="qemu", defects=["reply-drops-id"]) as path:
        ...  # connect a UNIX socket to ``path``

``launch`` runs the server in a background thread of this process (default)
or, with ``subprocess=True``, as ``python -m conformance.cli serve`` in a child
process (needed when a defect makes the server exit, or to measure it apart).
:class:`ReferenceServer` is the asyncio object itself, for callers with an
event loop of their own; ``qmp-conform serve`` is the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess as _subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from conformance.baseline import parse_release
from conformance.protocol.dialects import DEFAULT
from reference_server.defects import CATALOGUE as DEFECTS
from reference_server.server import DEFAULT_SCHEMA, ReferenceServer, ServerConfig, serve

__all__ = ["DEFAULT_SCHEMA", "DEFECTS", "ReferenceServer", "ServerConfig", "launch", "serve"]


@contextlib.contextmanager
def launch(
    dialect: str = DEFAULT.name,
    defects: Sequence[str] = (),
    *,
    schema: str | None = None,
    paused: bool = False,
    release: str | None = None,
    subprocess: bool = False,
    path: str | None = None,
    timeout: float = 10.0,
) -> Iterator[str]:
    """Start a reference server on a fresh UNIX socket; yield the socket path.

    The server stops when the block exits (or earlier, on ``quit``); with
    ``paused`` it starts as QEMU does with ``-S``; ``release`` (``"10.0"``)
    is the QEMU release it reports and follows where releases differ, for a
    ``schema`` of that release.
    Raises :class:`RuntimeError` when the server is not up within ``timeout``
    seconds or fails to start, naming the cause (an unknown dialect or defect,
    a schema that does not load, a socket that cannot be bound).
    """
    config = ServerConfig(
        dialect=dialect,
        defects=list(defects),
        schema=schema,
        paused=paused,
        release=parse_release(release) if release else None,
    )
    with contextlib.ExitStack() as stack:
        if path is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="qmp-ref-"))
            path = os.path.join(tmp, "qmp.sock")
        if subprocess:
            yield from _launch_process(config, path, timeout)
        else:
            yield from _launch_thread(config, path, timeout)


def _launch_thread(config: ServerConfig, path: str, timeout: float) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        ready: asyncio.Future[Any] = loop.create_future()
        task = loop.create_task(serve(config, unix=path, ready=ready))
        try:
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                # serve() ended before it was up: its exception says why.
                error = None if task.cancelled() else task.exception()
                box["error"] = error or "it stopped before listening"
                return
            box["server"], _ = ready.result()
        finally:
            started.set()
        box["stop"] = asyncio.Event()
        stop_wait = loop.create_task(box["stop"].wait())
        await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await box["server"].close()
            await task
        stop_wait.cancel()

    def run() -> None:
        asyncio.set_event_loop(loop)
        with contextlib.suppress(Exception):
            loop.run_until_complete(main())
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="qmp-reference-server", daemon=True)
    thread.start()
    if not started.wait(timeout) or "error" in box:
        raise RuntimeError(f"reference server did not start: {box.get('error')}")
    try:
        yield path
    finally:
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: box["stop"].set() if "stop" in box else None)
        thread.join(timeout)


def _launch_process(config: ServerConfig, path: str, timeout: float) -> Iterator[str]:
    cmd = [
        sys.executable,
        "-m",
        "conformance.cli",
        "serve",
        "--unix",
        path,
        "--dialect",
        config.dialect,
    ]
    for name in config.defects:
        cmd += ["--defect", name]
    if isinstance(config.schema, str):  # launch() takes paths only
        cmd += ["--schema", config.schema]
    if config.paused:
        cmd.append("--paused")
    if config.release:
        cmd += ["--release", "{major}.{minor}.{micro}".format_map(config.release)]
    proc = _subprocess.Popen(cmd, stdin=_subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"reference server did not start (exit {proc.returncode})")
            time.sleep(0.01)
        yield path
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout)
        except _subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
