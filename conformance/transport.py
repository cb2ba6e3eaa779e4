"""Targets: where a QMP server lives and how to open a byte stream to it.

A target string names the server: ``unix:PATH``, ``tcp:HOST:PORT``,
``spawn:COMMAND`` (a process speaking QMP on its stdio, one per connection;
or, when COMMAND holds ``{socket}``, one process for the run that listens on
that UNIX socket path, chosen here) or ``reference[:OPTIONS]`` (the bundled
reference server, started for the run).
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
import shutil
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

from conformance.errors import ConformanceError
from conformance.protocol.dialects import DEFAULT, Dialect, get_dialect

#: How long a connect() may take before the target counts as unreachable.
CONNECT_TIMEOUT = 5.0

#: How long a server spawned on a socket may take to start listening.
START_TIMEOUT = 15.0

#: What the bundled reference server is called where a program name is wanted
#: (baselines tell servers apart by it: QEMU's deviations are not its own).
REFERENCE_PROGRAM = "qmp-conform-reference"

#: Stands in a ``spawn:`` command for the socket path (and for a scratch
#: directory) the harness chooses.
SOCKET_FIELD = "{socket}"
DIR_FIELD = "{dir}"


class TargetError(ConformanceError):
    """The target cannot be reached or started (exit status 2 in the CLI)."""


class ConnectionClosed(Exception):
    """The peer closed the stream (or the process died)."""


class Connection(Protocol):
    """A bidirectional byte stream to one server session."""

    description: str

    def send(self, data: bytes, timeout: float) -> None:
        """Write all of ``data`` or raise TimeoutError when the peer stops reading.
        Raises :class:`ConnectionClosed` when the peer has gone."""

    def recv(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; b"" when nothing came within ``timeout``.
        Raises :class:`ConnectionClosed` at end of stream."""

    def close(self) -> None:
        """Close the stream (and stop what was started for it); a second call does nothing."""


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

    def __init__(
        self, sock: socket.socket, description: str, server: ServerProcess | None = None
    ) -> None:
        self.sock = sock
        self.description = description
        self.closed = False
        self.server = server

    def send(self, data: bytes, timeout: float) -> None:
        """Write all of ``data`` within ``timeout`` seconds.

        Raises TimeoutError when the peer stops reading, and
        :class:`ConnectionClosed` when it has gone.
        """
        _send_all(self.sock, data, timeout)

    def recv(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; b"" when nothing came within ``timeout``.
        Raises :class:`ConnectionClosed` at end of stream or on a reset."""
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

    def diagnostics(self) -> str:
        """The fate of the process behind the socket, when the harness started it."""
        return self.server.diagnostics() if self.server is not None else ""

    def close(self) -> None:
        """Close the socket; a second call does nothing."""
        if not self.closed:
            self.closed = True
            self.sock.close()


def connect_socket(
    family: socket.AddressFamily,
    address: Any,
    description: str,
    timeout: float = CONNECT_TIMEOUT,
    server: ServerProcess | None = None,
) -> SocketConnection:
    """Connect with a deadline: QEMU's listen backlog makes a blocking connect hang.

    Raises :class:`TargetError` when the connection fails or times out (with the
    fate of ``server`` when it has died).
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(address)
    except OSError as exc:
        sock.close()
        why = f"cannot connect to {description}: {exc}"
        if server is not None and server.proc.poll() is not None:
            why += f" ({server.diagnostics()})"
        raise TargetError(why) from exc
    return SocketConnection(sock, description, server)


def connect_unix_retrying(
    path: str, description: str, timeout: float, server: ServerProcess | None = None
) -> SocketConnection:
    """Connect to a server the harness started: it may have bound its socket
    (or not yet created it) before listening, so refusals are retried until
    ``timeout`` unless the process has died.  Raises :class:`TargetError` when
    no connection can be made by then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect_socket(socket.AF_UNIX, path, description, timeout, server)
        except TargetError as exc:
            early = isinstance(exc.__cause__, (ConnectionRefusedError, FileNotFoundError))
            dead = server is not None and server.proc.poll() is not None
            if not early or dead or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def split_command(command: str) -> list[str]:
    """A ``spawn:`` command as an argument vector, split like a shell would.

    Raises :class:`TargetError` when it is empty or its quoting is unbalanced.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise TargetError(f"spawn:{command}: {exc}") from None
    if not argv:
        raise TargetError("spawn: needs a command")
    return argv


class ServerProcess:
    """A server the harness starts once for the run, listening on a UNIX
    socket whose path replaces ``{socket}`` in its command line (``{dir}``
    becomes a private scratch directory, also its working directory).

    Its stdout and stderr go to one temporary file, so when it dies every
    connection can say how (exit status and output) as evidence.  Construction
    starts the process and raises :class:`TargetError` when the command is empty
    or cannot be started; :meth:`wait_listening` then waits for the socket.
    """

    def __init__(self, command: str) -> None:
        argv = split_command(command)
        self.command = command
        self.directory = tempfile.mkdtemp(prefix="qmp-conform-")
        self.path = os.path.join(self.directory, "qmp.sock")
        argv = [a.replace(SOCKET_FIELD, self.path).replace(DIR_FIELD, self.directory) for a in argv]
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self.output,
                stderr=self.output,
                cwd=self.directory,
                start_new_session=True,
            )
        except OSError as exc:
            self.output.close()
            shutil.rmtree(self.directory, ignore_errors=True)
            raise TargetError(f"cannot start {command!r}: {exc}") from exc

    def wait_listening(self, timeout: float = START_TIMEOUT) -> None:
        """Return once the socket accepts a connection; TargetError if the
        process exits first or the deadline passes."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.path):
            if self.proc.poll() is not None:
                raise TargetError(
                    f"spawn:{self.command} exited before listening ({self.diagnostics()})"
                )
            if time.monotonic() > deadline:
                raise TargetError(
                    f"spawn:{self.command} did not create {SOCKET_FIELD} within {timeout:g} s"
                )
            time.sleep(0.02)

    def diagnostics(self) -> str:
        """The process's fate and output, for a transcript."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=0.5)
        code = self.proc.poll()
        text = ""
        if not self.output.closed:
            self.output.seek(0)
            text = self.output.read(2000).decode("utf-8", "replace").strip()
        fate = "still running" if code is None else f"exit status {code}"
        return f"process {fate}" + (f"; output: {text}" if text else "")

    def close(self) -> None:
        """Stop the process (TERM, then KILL if it lingers) and remove its directory."""
        _stop_group(self.proc)
        self.output.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=3)


class SpawnConnection:
    """The stdio of a child process, read through pexpect over a socketpair.

    Construction starts the process and raises :class:`TargetError` when the
    command is empty or cannot be started.
    """

    def __init__(self, command: str) -> None:
        self.description = f"spawn:{command}"
        argv = split_command(command)
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=self.stderr,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            self.stderr.close()
            raise TargetError(f"cannot start {command!r}: {exc}") from exc
        finally:
            theirs.close()
        self.sock = ours
        self.reader = fdspawn(ours.fileno(), timeout=None)
        self.closed = False

    def send(self, data: bytes, timeout: float) -> None:
        """Write all of ``data`` to the process's stdin within ``timeout`` seconds.

        Raises TimeoutError when the process stops reading, and
        :class:`ConnectionClosed` when it has closed its end (or died).
        """
        _send_all(self.sock, data, timeout)

    def recv(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes of the process's stdout; b"" when nothing came within
        ``timeout``.  Raises :class:`ConnectionClosed` when the output has ended."""
        try:
            data = cast(bytes, self.reader.read_nonblocking(size, max(timeout, 0.0)))
        except pexpect.TIMEOUT:
            return b""
        except (pexpect.EOF, OSError) as exc:
            raise ConnectionClosed(f"process output ended ({self.exit_status()})") from exc
        return data

    def exit_status(self) -> str:
        """The process's fate in words: "still running" or "exit status N"."""
        code = self.proc.poll()
        return "still running" if code is None else f"exit status {code}"

    def stderr_text(self, limit: int = 2000) -> str:
        """Up to ``limit`` bytes of what the process wrote to stderr ("" once closed)."""
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
        _stop_group(self.proc)
        self.stderr.close()


@dataclass
class Target:
    """A QMP server the run talks to; :meth:`connect` opens a fresh session.

    ``restarts`` tells checks whether a new connection means a new server
    process (spawned targets), so a session cannot be opened while another
    one is still in use.  ``server`` is the process started for the run
    (``spawn:`` with ``{socket}``), whose fate connections can report.
    """

    spec: str
    kind: str
    address: Any = None
    command: str = ""
    options: dict[str, list[str]] = field(default_factory=dict)
    server: ServerProcess | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    _live: list[Connection] = field(default_factory=list, repr=False)

    @property
    def restarts(self) -> bool:
        """Whether every connection starts a server process of its own (``spawn:``)."""
        return self.kind == "spawn"

    @property
    def dialect(self) -> Dialect | None:
        """The dialect the target string names (``reference:dialect=D``), if any;
        TargetError for a name no dialect has."""
        names = self.options.get("dialect")
        if not names:
            return None
        try:
            return get_dialect(names[-1])
        except KeyError as exc:
            raise TargetError(f"{self.spec}: {exc.args[0]}") from None

    @property
    def program(self) -> str:
        """The name of the server program the run starts ("" when it starts none)."""
        if self.kind == "reference":
            return REFERENCE_PROGRAM
        if self.kind not in ("spawn", "served"):
            return ""
        try:
            argv = shlex.split(self.command)
        except ValueError:
            return ""
        return os.path.basename(argv[0]) if argv else ""

    @property
    def local(self) -> bool:
        """Whether the server shares our filesystem (needed for the FIFO blocker)."""
        return self.kind in ("unix", "spawn", "served", "reference") or (
            self.kind == "tcp" and str(self.address[0]) in ("127.0.0.1", "localhost", "::1")
        )

    def connect(self, timeout: float = CONNECT_TIMEOUT) -> Connection:
        """A new connection (on ``spawn:``, a new process), closed by :meth:`close`.

        Raises :class:`TargetError` when the server cannot be reached within
        ``timeout`` or its process cannot be started.
        """
        conn: Connection
        if self.kind == "spawn":
            conn = SpawnConnection(self.command)
        elif self.kind == "tcp":
            conn = connect_socket(socket.AF_INET, self.address, self.spec, timeout)
        elif self.kind == "reference":
            conn = connect_unix_retrying(self.address, self.spec, timeout)
        elif self.kind == "served":
            conn = connect_unix_retrying(self.address, self.spec, timeout, self.server)
        else:
            conn = connect_socket(socket.AF_UNIX, self.address, self.spec, timeout)
        self._live = [c for c in self._live if not getattr(c, "closed", False)]
        self._live.append(conn)
        return conn

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
    """``dialect=qga,defect=a,defect=b`` as ``{"dialect": ["qga"], "defect": ["a", "b"]}``.

    Raises :class:`TargetError` for an item that is not ``KEY=VALUE``.
    """
    out: dict[str, list[str]] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TargetError(f"reference option {item!r} is not KEY=VALUE")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


#: The prefixes that make a string a target rather than a path.
TARGET_KINDS = ("unix", "tcp", "spawn", "reference")


def looks_like_target(text: str) -> bool:
    """Whether ``text`` names a target (and not a file that exists)."""
    kind, sep, _ = text.partition(":")
    return kind in TARGET_KINDS and (bool(sep) or kind == "reference") and not os.path.exists(text)


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
        return Target(spec, "served" if SOCKET_FIELD in rest else "spawn", command=rest)
    if kind == "reference":
        return Target(spec, "reference", options=parse_options(rest))
    raise TargetError(
        f"unknown target {spec!r}: use unix:PATH, tcp:HOST:PORT, spawn:COMMAND or reference[:OPTS]"
    )


def open_target(spec: str, own_process: bool = False) -> Target:
    """A ready target: the reference server is started here (in a process of
    its own when ``own_process`` or when a seeded defect may make it exit) and
    stopped by ``close``; a ``spawn:`` server on ``{socket}`` likewise.

    Raises :class:`TargetError` when ``spec`` is malformed, or when the server
    cannot be started or does not start listening in time.
    """
    target = parse_target(spec)
    if target.kind == "reference":
        target.address = target._stack.enter_context(_launch_reference(target, own_process))
    elif target.kind == "served":
        server = ServerProcess(target.command)
        target._stack.callback(server.close)
        try:
            server.wait_listening()
        except TargetError:
            target.close()
            raise
        target.server, target.address = server, server.path
    return target


@contextlib.contextmanager
def _launch_reference(target: Target, own_process: bool) -> Iterator[str]:
    try:
        import reference_server

        launch = reference_server.launch
    except (ImportError, AttributeError) as exc:
        raise TargetError(f"the reference server cannot be launched: {exc}") from exc
    unknown = set(target.options) - {"dialect", "defect", "start"}
    if unknown:
        raise TargetError(f"unknown reference option(s): {', '.join(sorted(unknown))}")
    dialect = (target.dialect or DEFAULT).name
    defects = target.options.get("defect", [])
    start = target.options.get("start", ["running"])[-1]
    if start not in ("running", "paused"):
        raise TargetError(f"reference option start={start}: use start=running or start=paused")
    try:
        # A defect may make the server exit: then it must not share our process.
        manager = launch(
            dialect=dialect,
            defects=defects,
            paused=start == "paused",
            subprocess=own_process or bool(defects),
        )
        path = manager.__enter__()
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise TargetError(f"cannot start the reference server: {exc}") from exc
    try:
        yield str(path)
    finally:
        manager.__exit__(None, None, None)


def fifo_path(directory: str | None = None) -> str:
    """A new FIFO in a private directory, for the blkdebug blocker recipe.

    Raises OSError when the directory or the FIFO cannot be created.
    """
    base = tempfile.mkdtemp(prefix="qmp-conform-", dir=directory)
    path = os.path.join(base, "blocker.fifo")
    os.mkfifo(path, 0o600)
    return path
