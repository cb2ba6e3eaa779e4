"""A tiny raw-socket QMP client for the server tests: bytes in, decoded lines out.

Raw on purpose: the tests send malformed bytes and must see every line the
server writes (including ones a real client would reject).  Every read has a
deadline, so a silent or dead server fails a test instead of hanging it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conformance.protocol import decode, json_equal

DEFAULT_TIMEOUT = 5.0


class WireClient:
    """One connection; ``lines`` keeps every raw line received, in order."""

    def __init__(
        self, path: str, *, timeout: float = DEFAULT_TIMEOUT, terminator: bytes = b"\n"
    ) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        # A server's socket file exists between its bind() and its listen():
        # a connect in that moment is refused, and a retry is not.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.timeout = timeout
        self.buf = b""
        self.raw = b""
        self.lines: list[bytes] = []
        self.eof = False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 16)
        except TimeoutError:
            return False
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        self.raw += chunk
        return True

    def read_line(self, timeout: float | None = None) -> bytes | None:
        """The next raw line (terminator included), or None at deadline/EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            if not self._fill(deadline):
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        line += b"\n"
        self.lines.append(line)
        return line

    def read_message(self, timeout: float | None = None) -> Any:
        line = self.read_line(timeout)
        if line is None:
            return None
        return decode(line.lstrip(b"\xff"))

    def read_until(self, pred: Any, timeout: float | None = None) -> list[Any]:
        """Messages up to and including the first one ``pred`` accepts."""
        out: list[Any] = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self.read_message(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise TimeoutError(f"no matching message; got {out!r}")
            out.append(msg)
            if pred(msg):
                return out

    def read_quiet(self, quiet: float = 0.3, limit: float = 10.0) -> list[Any]:
        """Messages until nothing arrives for ``quiet`` seconds."""
        out: list[Any] = []
        end = time.monotonic() + limit
        while time.monotonic() < end:
            msg = self.read_message(quiet)
            if msg is None:
                break
            out.append(msg)
        return out

    def command(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        id: Any = "c",
        oob: bool = False,
    ) -> tuple[Any, list[Any]]:
        """Send one command; return (its reply, events seen before it)."""
        import json

        msg: dict[str, Any] = {"exec-oob" if oob else "execute": name, "id": id}
        if arguments is not None:
            msg["arguments"] = arguments
        self.send(json.dumps(msg))
        got = self.read_until(
            lambda m: (
                isinstance(m, dict)
                and "event" not in m
                and json_equal(m.get("id"), id)
                and "id" in m
            )
        )
        return got[-1], [m for m in got[:-1] if "event" in m]

    def drain_lines(self, quiet: float = 0.2) -> list[bytes]:
        """Raw lines until ``quiet`` seconds of silence (nothing decoded)."""
        out: list[bytes] = []
        while (line := self.read_line(quiet)) is not None:
            out.append(line)
        return out

    def negotiate_leniently(self) -> None:
        """Negotiate oob without judging the replies (for misbehaving servers)."""
        self.read_line(1.0)
        self.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}')
        self.drain_lines()

    def greet_and_negotiate(self, oob: bool = True) -> Any:
        greeting = self.read_message()
        args = ', "arguments": {"enable": ["oob"]}' if oob else ""
        self.send('{"execute": "qmp_capabilities"' + args + ', "id": "neg"}')
        reply = self.read_message()
        assert reply == {"return": {}, "id": "neg"}, reply
        return greeting


def wait_for_path(path: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


QEMU = shutil.which("qemu-system-x86_64")


@contextmanager
def qemu_server() -> Iterator[str]:
    """A real QEMU 7.2 with one QMP monitor on a fresh UNIX socket."""
    assert QEMU is not None
    with tempfile.TemporaryDirectory(prefix="qmp-qemu-") as tmp:
        path = os.path.join(tmp, "qmp.sock")
        proc = subprocess.Popen(
            [
                QEMU,
                "-machine",
                "none",
                "-nodefaults",
                "-display",
                "none",
                "-qmp",
                f"unix:{path},server=on,wait=off",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_path(path)
            yield path
        finally:
            proc.kill()
            proc.wait(10)


def live_schema(path: str) -> Any:
    """The ``query-qmp-schema`` of the server at ``path`` (one connection, closed after)."""
    with WireClient(path, timeout=30) as client:
        client.greet_and_negotiate()
        reply, _ = client.command("query-qmp-schema")
        return reply["return"]


def release_fifo(path: str) -> None:
    """Let a blkdebug open() of the FIFO finish: open for writing, then close."""
    deadline = time.monotonic() + 5
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody has it open for reading yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        os.close(fd)
        return
