"""Targets: where a QMP server lives and how to open a byte stream to it.

A target string names the server: ``unix:PATH``, ``tcp:HOST:PORT``,
``spawn:COMMAND`` (a process speaking QMP on its stdio) or
``reference[:OPTIONS]`` (the bundled reference server, started for the run).
:func:`open_target` turns it into a :class:`Target`, whose :meth:`Target.connect`
hands out :class:`Connection` objects: raw bytes with a deadline on every
read and write, nothing QMP-specific.  Sessions are built on top.

Spawned processes talk over a socketpair rather than pipes or a pty: a pty
would rewrite line endings and turn control bytes into signals, and pipes
would mix the child's stderr into the stream.  The child's stderr goes to a
temporary file so a crash can be shown as evidence.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pexpect
from pexpect.fdpexpect import fdspawn

#: How long a connect() may take before the target counts as unreachable.
CONNECT_TIMEOUT = 5.0


class TargetError(Exception):
    """The target cannot be reached or started (exit status 2 in the CLI)."""


class ConnectionClosed(Exception):
    """The peer closed the stream (or the process died)."""


class Connection(Protocol):
    """A bidirectional byte stream to one server session."""

    description: str

    def send(self, data: bytes, timeout: float) -> None:
        """Write all of ``data`` or raise TimeoutError when the peer stops reading."""

    def recv(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; b"" when nothing came within ``timeout``.
        Raises :class:`ConnectionClosed` at end of stream."""

    def close(self) -> None: ...


def _send_all(sock: socket.socket, data: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"peer stopped reading with {len(view)} bytes unsent")
        sock.settimeout(left)
        try:
            sent = sock.send(view)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionClosed(str(exc)) from exc
        view = view[sent:]


class SocketConnection:
    """A connected stream socket (UNIX or TCP)."""

    def __init__(self, sock: socket.socket, description: str) -> None:
        self.sock = sock
        self.description = description
        self.closed = False

    def send(self, data: bytes, timeout: float) -> None:
        _send_all(self.sock, data, timeout)

    def recv(self, size: int, timeout: float) -> bytes:
        self.sock.settimeout(max(timeout, 0.0) or 1e-6)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            return b""
        except ConnectionResetError as exc:
            raise ConnectionClosed(str(exc)) from exc
        if not data:
            raise ConnectionClosed("end of stream")
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


def connect_socket(family: socket.AddressFamily, address: Any, description: str,
                   timeout: float = CONNECT_TIMEOUT) -> SocketConnection:
    """Connect with a deadline: QEMU's listen backlog makes a blocking connect hang."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise TargetError(f"cannot connect to {description}: {exc}") from exc
    return SocketConnection(sock, description)


class SpawnConnection:
    """The stdio of a child process, read through pexpect over a socketpair."""

    def __init__(self, command: str) -> None:
        self.description = f"spawn:{command}"
        argv = shlex.split(command)
        if not argv:
            raise TargetError("spawn: needs a command")
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child)
        try:
            self.proc = subprocess.Popen(argv, stdin=theirs.fileno(), stdout=theirs.fileno(),
                                         stderr=self.stderr, start_new_session=True)
        except OSError as exc:
            ours.close()
            raise TargetError(f"cannot start {command!r}: {exc}") from exc
        finally:
            theirs.close()
        self.sock = ours
        self.reader = fdspawn(ours.fileno(), timeout=None)
        self.closed = False

    def send(self, data: bytes, timeout: float) -> None:
        _send_all(self.sock, data, timeout)

    def recv(self, size: int, timeout: float) -> bytes:
        try:
            data = cast(bytes, self.reader.read_nonblocking(size, max(timeout, 0.0)))
        except pexpect.TIMEOUT:
            return b""
        except (pexpect.EOF, OSError) as exc:
            raise ConnectionClosed(f"process output ended ({self.exit_status()})") from exc
        return data

    def exit_status(self) -> str:
        code = self.proc.poll()
        return "still running" if code is None else f"exit status {code}"

    def stderr_text(self, limit: int = 2000) -> str:
        if self.stderr.closed:
            return ""
        self.stderr.seek(0)
        return self.stderr.read(limit).decode("utf-8", "replace")

    def diagnostics(self) -> str:
        """The process's fate and stderr, for a transcript."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=0.5)
        err = self.stderr_text().strip()
        return f"process {self.exit_status()}" + (f"; stderr: {err}" if err else "")

    def close(self) -> None:
        """Close the stream, then stop the process: TERM, and KILL if it lingers."""
        if self.closed:
            return
        self.closed = True
        self.sock.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=3)
        self.stderr.close()


@dataclass
class Target:
    """A QMP server the run talks to; :meth:`connect` opens a fresh session.

    ``restarts`` tells checks whether a new connection means a new server
    process (spawned targets), so a session cannot be opened while another
    one is still in use.
    """

    spec: str
    kind: str
    address: Any = None
    command: str = ""
    options: dict[str, list[str]] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    _live: list[Connection] = field(default_factory=list, repr=False)

    @property
    def restarts(self) -> bool:
        return self.kind == "spawn"

    @property
    def local(self) -> bool:
        """Whether the server shares our filesystem (needed for the FIFO blocker)."""
        return self.kind in ("unix", "spawn", "reference") or (
            self.kind == "tcp" and str(self.address[0]) in ("127.0.0.1", "localhost", "::1"))

    def connect(self, timeout: float = CONNECT_TIMEOUT) -> Connection:
        conn: Connection
        if self.kind == "spawn":
            conn = SpawnConnection(self.command)
        elif self.kind == "tcp":
            conn = connect_socket(socket.AF_INET, self.address, self.spec, timeout)
        elif self.kind == "reference":
            conn = self._connect_reference(timeout)
        else:
            conn = connect_socket(socket.AF_UNIX, self.address, self.spec, timeout)
        self._live = [c for c in self._live if not getattr(c, "closed", False)]
        self._live.append(conn)
        return conn

    def _connect_reference(self, timeout: float) -> Connection:
        # The server we started may have bound its socket before listening on it.
        deadline = time.monotonic() + timeout
        while True:
            try:
                return connect_socket(socket.AF_UNIX, self.address, self.spec, timeout)
            except TargetError as exc:
                refused = isinstance(exc.__cause__, ConnectionRefusedError)
                if not refused or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        """Close every connection still open and stop anything started for the run."""
        for conn in self._live:
            conn.close()
        self._live.clear()
        self._stack.close()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_options(text: str) -> dict[str, list[str]]:
    """``dialect=qga,defect=a,defect=b`` as ``{"dialect": ["qga"], "defect": ["a", "b"]}``."""
    out: dict[str, list[str]] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TargetError(f"reference option {item!r} is not KEY=VALUE")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def parse_target(spec: str) -> Target:
    """Parse a target string; raises :class:`TargetError` when it is malformed."""
    kind, _, rest = spec.partition(":")
    if kind == "unix" and rest:
        return Target(spec, "unix", address=rest)
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise TargetError(f"tcp target needs tcp:HOST:PORT, got {spec!r}")
        return Target(spec, "tcp", address=(host, int(port)))
    if kind == "spawn" and rest.strip():
        return Target(spec, "spawn", command=rest)
    if kind == "reference":
        return Target(spec, "reference", options=parse_options(rest))
    raise TargetError(
        f"unknown target {spec!r}: use unix:PATH, tcp:HOST:PORT, spawn:COMMAND or reference[:OPTS]")


def open_target(spec: str) -> Target:
    """A ready target: the reference server is started here and stopped by ``close``."""
    target = parse_target(spec)
    if target.kind == "reference":
        target.address = target._stack.enter_context(_launch_reference(target.options))
    return target


@contextlib.contextmanager
def _launch_reference(options: dict[str, list[str]]) -> Iterator[str]:
    try:
        import reference_server
        launch = reference_server.launch
    except (ImportError, AttributeError) as exc:
        raise TargetError(f"the reference server cannot be launched: {exc}") from exc
    unknown = set(options) - {"dialect", "defect"}
    if unknown:
        raise TargetError(f"unknown reference option(s): {', '.join(sorted(unknown))}")
    dialect = options.get("dialect", ["qemu"])[-1]
    defects = options.get("defect", [])
    try:
        # A defect may make the server exit: then it must not share our process.
        manager = launch(dialect=dialect, defects=defects, subprocess=bool(defects))
        path = manager.__enter__()
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise TargetError(f"cannot start the reference server: {exc}") from exc
    try:
        yield str(path)
    finally:
        manager.__exit__(None, None, None)


def fifo_path(directory: str | None = None) -> str:
    """A new FIFO in a private directory, for the blkdebug blocker recipe."""
    base = tempfile.mkdtemp(prefix="qmp-conform-", dir=directory)
    path = os.path.join(base, "blocker.fifo")
    os.mkfifo(path, 0o600)
    return path
