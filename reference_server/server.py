"""The asyncio layer: sockets in, the protocol core's monitor, commands out.

Each connection owns one :class:`conformance.protocol.Monitor` (its own
greeting, negotiation and queue).  This module only moves bytes between the
transport and that state machine and runs the commands it dispatches:

* in-band commands of *all* connections run one at a time (one lock), as on
  QEMU's main loop, so a blocked command holds everyone's in-band work;
* OOB commands run at once, beside a blocked in-band one;
* reading stops while the monitor says so (full queue) or while the peer does
  not read our output, so floods cost bounded memory;
* a disconnect discards that connection's queue; nothing a peer sends can
  raise out of here (a command's unexpected exception becomes an error reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Awaitable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol import (
    NO_REPLY,
    CommandError,
    Dispatch,
    JSONStream,
    Monitor,
    Request,
    Send,
    get_dialect,
)
from conformance.protocol.dialects import DEFAULT, Dialect
from conformance.protocol.messages import classify
from conformance.protocol.monitor import Reason
from conformance.qapi import load
from conformance.qapi.introspect import introspect
from conformance.qapi.model import Schema
from reference_server import refusals
from reference_server.arguments import ArgumentChecker
from reference_server.commands import CommandContext, Handler, load_all
from reference_server.defects import DefectSet, Flag
from reference_server.errors import QMPError
from reference_server.machine import VERSION, Machine
from reference_server.synth import Synthesizer

log = logging.getLogger("reference_server")

SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schema")
DEFAULT_SCHEMA = os.path.join(SCHEMA_DIR, "qapi-schema.json")
QGA_SCHEMA = os.path.join(SCHEMA_DIR, "qga.json")

#: Stop reading a peer once this much of our output waits unread.
WRITE_HIGH_WATER = 4 << 20
#: How long a just-started in-band command may hold off further reads.
HOLD_SECONDS = 0.005
#: Commands one pump starts before it lets other connections and timers run.
PUMP_BUDGET = 256
#: Output gathered before it goes to the transport: one write for many
#: pipelined replies, yet pause_writing still comes in time.
FLUSH_BYTES = 1 << 16
#: Bytes read from a socket at once, into one buffer kept by the connection:
#: a plain Protocol gets a fresh 256 KiB bytes object per read, which costs
#: more than handling a small request.
READ_SIZE = 1 << 16


#: Connections the kernel may queue before the server accepts them: a burst
#: of clients (a management stack starting, a test suite's workers) must not
#: be turned away; asyncio's default is 100.  The kernel caps it at somaxconn.
LISTEN_BACKLOG = 1024


@dataclass
class ServerConfig:
    """What ``qmp-conform serve`` and :func:`reference_server.launch` configure."""

    dialect: str = DEFAULT.name
    defects: list[str] = field(default_factory=list)
    #: A schema's path, or introspection entries already read (a live
    #: target's); None picks the bundled schema of the dialect.
    schema: str | list[Any] | None = None
    #: Start paused before the guest ever ran, as QEMU does with ``-S``
    #: (``prelaunch``: ``stop`` emits nothing, ``cont`` emits RESUME); else
    #: running, as QEMU does without it.
    paused: bool = False
    #: The release the greeting and ``query-version`` report (``{major,
    #: minor, micro}``); None: the dialect's.
    release: dict[str, int] | None = None


class ReferenceServer:
    """One emulated QEMU process: shared machine state, many monitors.

    Construction loads the schema.  Raises :class:`KeyError` for an unknown
    dialect or defect and :class:`QAPIError` when the schema does not load.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.dialect: Dialect = get_dialect(self.config.dialect)
        self.defects = DefectSet(self.config.defects)
        # A server without a greeting is a guest agent: it serves the agent's schema.
        path = self.config.schema or (DEFAULT_SCHEMA if self.dialect.greeting else QGA_SCHEMA)
        self.schema: Schema = load(path)
        self.checker = ArgumentChecker(self.schema)
        # Every command of the schema is answered: by its model where the
        # server has one, else with the smallest value of its return type.
        modelled = load_all()
        self.synth = Synthesizer(self.schema)
        self.handlers: dict[str, Handler] = {
            name: modelled.get(name) or self._synthesized(name)
            for name in self.schema.commands
            if name != "qmp_capabilities"  # the protocol core's own
        }
        self.introspection = introspect(self.schema)
        self.command_names = [n for n in self.schema.commands if n in self.handlers]
        if self.dialect.negotiation and "qmp_capabilities" in self.schema.commands:
            self.command_names = [
                "qmp_capabilities",
                *[n for n in self.command_names if n != "qmp_capabilities"],
            ]
        # The release the dialect stands for, under the server's own name.
        release = self.config.release or (
            self.dialect.version["qemu"]
            if isinstance(self.dialect.version, dict)
            else VERSION["qemu"]
        )
        self.version: Any = {**VERSION, "qemu": release}
        #: (major, minor) of the release served, for rules that changed between releases.
        self.release = (int(self.version["qemu"]["major"]), int(self.version["qemu"]["minor"]))
        self.machine = Machine(run_state="prelaunch" if self.config.paused else "running")
        self.machine.events.throttle = not self.defects.has(Flag.UNTHROTTLED_EVENTS)
        # Consulted for every request: looked up once.
        self._oob_in_band = self.defects.has(Flag.OOB_IN_BAND)
        self._check_arguments = not self.defects.has(Flag.ACCEPT_INVALID_ARGUMENTS)
        self._side_effect_first = self.defects.has(Flag.SIDE_EFFECT_BEFORE_ERROR)
        self.inband_lock = asyncio.Lock()
        self.connections: set[Connection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self.crashed = False
        self.stopped = asyncio.Event()
        self._quit_watch: asyncio.Task[None] | None = None

    def _synthesized(self, name: str) -> Handler:
        async def answer(ctx: CommandContext, args: dict[str, Any]) -> Any:
            # What a bare QEMU lacks is refused as it refuses it (refusals.py).
            error = refusals.refusal(name, args, refusals.Lookup(ctx.machine, self.release))
            if error is not None:
                raise error
            refusals.record(name, args, ctx.machine.made)
            return copy.deepcopy(self.synth.returns(name))

        return answer

    # -- listening ---------------------------------------------------------------

    def _watch_quit(self) -> None:
        if self._quit_watch is None:
            self._quit_watch = asyncio.get_running_loop().create_task(self._on_quit())

    async def _on_quit(self) -> None:
        await self.machine.quit_requested.wait()
        await asyncio.sleep(0.01)  # let quit's own reply go out first
        await self.close()

    async def listen_unix(self, path: str) -> None:
        """Listen on a UNIX socket created with mode 0600 (owner only).

        Raises :class:`OSError` when the socket cannot be created or bound.
        """
        with contextlib.suppress(FileNotFoundError):
            if os.path.exists(path) and not os.path.isdir(path):
                os.unlink(path)
        # Bound in a private folder beside it, made 0600, then moved into place:
        # never reachable by others, and no umask (process-wide: threads race on it).
        private = tempfile.mkdtemp(prefix=".qmp-", dir=os.path.dirname(os.path.abspath(path)))
        staged = os.path.join(private, "s")
        try:
            srv = await asyncio.get_running_loop().create_unix_server(
                self._protocol, staged, backlog=LISTEN_BACKLOG
            )
            os.chmod(staged, 0o600)
            os.rename(staged, path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(staged)
            os.rmdir(private)
        self._servers.append(srv)
        self._watch_quit()

    async def listen_tcp(self, host: str, port: int, *, allow_remote: bool = False) -> int:
        """Listen on TCP; only loopback addresses unless ``allow_remote``.

        Returns the bound port (useful with port 0).  Raises :class:`ValueError`
        for a non-loopback ``host`` without ``allow_remote`` and :class:`OSError`
        when the port cannot be bound.
        """
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"refusing to listen on non-loopback address {host!r} without --allow-remote"
            )
        srv = await asyncio.get_running_loop().create_server(
            self._protocol, host, port, backlog=LISTEN_BACKLOG
        )
        self._servers.append(srv)
        self._watch_quit()
        sock = srv.sockets[0]
        return int(sock.getsockname()[1])

    async def serve_stdio(self) -> None:
        """One monitor on stdin/stdout; returns when stdin closes or on quit."""
        loop = asyncio.get_running_loop()
        self._watch_quit()
        conn = Connection(self)
        write_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)
        conn.writer = write_transport
        await loop.connect_read_pipe(lambda: conn, sys.stdin.buffer)
        await conn.closed.wait()

    def _protocol(self) -> Connection:
        return Connection(self)

    async def close(self) -> None:
        """Stop listening, drop every connection, stop jobs."""
        for srv in self._servers:
            srv.close()
        for conn in list(self.connections):
            conn.shutdown()
        await self.machine.jobs.shutdown()
        if self._quit_watch is not None and self._quit_watch is not asyncio.current_task():
            self._quit_watch.cancel()
        self.stopped.set()

    def crash(self) -> None:
        """What a crashing QEMU looks like from outside: everything just goes away."""
        self.crashed = True
        for srv in self._servers:
            srv.close()
        for conn in list(self.connections):
            conn.abort()
        self.stopped.set()

    # -- running commands ----------------------------------------------------------

    async def execute(self, conn: Connection, request: Request) -> Any:
        """Run one dispatched request; the value for :meth:`Monitor.complete`."""
        # One coroutine and a bare acquire/release: a free lock is taken
        # without waiting, and most commands never wait at all (see
        # Connection._start), so each layer here is paid by every request.
        in_band = not request.oob or self._oob_in_band
        if in_band:
            await self.inband_lock.acquire()
        try:
            command = self.schema.commands[request.command]
            handler = self.handlers[request.command]
            ctx = conn.context
            if ctx is None:  # the same for every command of a connection: made once
                ctx = conn.context = CommandContext(
                    self.machine,
                    self.schema,
                    conn,
                    self.introspection,
                    self.command_names,
                    self.version,
                    self.synth,
                )
            if command.gen and self._check_arguments:
                try:
                    self.checker.check_arguments(command.arg_type, request.arguments)
                except QMPError:
                    if self._side_effect_first:
                        with contextlib.suppress(Exception):
                            await handler(ctx, {})
                    raise
            result = await handler(ctx, request.arguments)
            if not command.success_response:
                return NO_REPLY
            return {} if result is None else result
        except QMPError as exc:
            return CommandError(exc.error_class, exc.desc)
        except Exception as exc:  # a bug in a handler must not cost the reply
            log.exception("command %s failed", request.command)
            return CommandError("GenericError", f"internal error: {exc}")
        finally:
            if in_band:
                self.inband_lock.release()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address, or a name all of whose addresses are.

    A name that does not resolve is not loopback.
    """
    if host in ("localhost", "localhost6"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(
            ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos
        )


class _Resume:
    """Awaiting this carries on a coroutine that was started outside any task
    and is waiting on ``pending`` (what it yielded): the task it runs in sees
    the same yields, results and exceptions as if it had run it from the start."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # cancellation too: the coroutine decides
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Connection(asyncio.BufferedProtocol):
    """One client: a transport, a monitor, and the commands it has running.

    Sockets read into the connection's own buffer (``get_buffer``); pipes
    (``--stdio``) call ``data_received``.
    """

    def __init__(self, server: ReferenceServer) -> None:
        self.server = server
        self.transport: asyncio.BaseTransport | None = None
        self.writer: asyncio.WriteTransport | None = None
        self.scratch: dict[str, Any] = {}
        #: What handlers of this connection's commands are given (see ReferenceServer.execute).
        self.context: CommandContext | None = None
        self.deaf = False
        self.closing = False
        self._close_after_reply = False
        self._write_paused = False
        self._reading = True
        self._pumping = False
        #: Events delivered while pumping, each of which may be written past a hold.
        self._owed = 0
        #: Output not yet handed to the writer (see FLUSH_BYTES).
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._read_buffer: memoryview | None = None
        #: The transport to pause and resume, if it reads (a pipe's writer does not).
        self._reader: asyncio.ReadTransport | None = None
        self._rewrites = server.defects.rewrites_output
        #: An in-band command just started: drain it before reading on (see pump).
        self._hold = False
        #: An OOB command is running: QEMU runs it in the I/O thread before it
        #: reads further input, so its reply precedes any later request's.
        self._oob_running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()
        defects = server.defects
        names = set(server.command_names)
        oob = (
            names
            if defects.has(Flag.EVERY_COMMAND_OOB)
            else {n for n in names if server.schema.commands[n].allow_oob}
        )
        if not server.dialect.supports_oob:
            oob = set()
        self.monitor = Monitor(
            server.dialect,
            commands=names,
            oob_commands=oob,
            version=server.version,
            stream=JSONStream(rfc8259=not defects.has(Flag.QEMU_NUMBERS)),
            quirks=defects.quirks,
        )

    # -- asyncio.BufferedProtocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start serving a new peer: attach it to the event bus and let the monitor greet it."""
        self.transport = transport
        if isinstance(transport, asyncio.ReadTransport):
            self._reader = transport
        if self.writer is None and isinstance(transport, asyncio.WriteTransport):
            self.writer = transport
            transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.server.connections.add(self)
        self.server.machine.events.attach(self)
        self.pump()

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where the transport reads the peer's bytes to (one buffer, reused)."""
        if self._read_buffer is None:
            self._read_buffer = memoryview(bytearray(READ_SIZE))
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        """The transport read ``nbytes`` into the buffer: act on them."""
        assert self._read_buffer is not None
        self.data_received(self._read_buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        """Feed the peer's bytes to the monitor and act on them (not once deaf or closing)."""
        if self.deaf or self.closing:
            return
        self.monitor.receive_data(data)
        self.pump()

    def eof_received(self) -> bool | None:
        """The peer stopped sending: close the connection."""
        self.shutdown()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection: its queue, its events, its place in the server; set ``closed``."""
        self.closing = True
        self.monitor.connection_lost()
        self.server.machine.events.detach(self)
        self.server.connections.discard(self)
        if self.writer is not None and self.writer is not self.transport:
            self.writer.close()
        self.closed.set()

    def pause_writing(self) -> None:
        """The peer is not reading our output: stop reading its input until it does."""
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        """The peer caught up on our output: carry on reading and acting."""
        self._write_paused = False
        self.pump()

    # -- the pump: drain the monitor's events ----------------------------------------

    def pump(self, *, at_least_one: bool = False) -> None:
        """Act on the monitor's events until it needs input or must wait.

        After starting an in-band command the pump holds off (no further
        reads) until that command finishes or turns out to block (HOLD_SECONDS).
        QEMU's main loop finishes quick commands long before its 1-byte-a-time
        reader gets to the next request, so a full queue drains before an OOB
        request behind it is read; holding reproduces that outcome.  Commands
        that finish without waiting are run right here (see ``_start``), so
        for them there is nothing to hold.
        """
        if self._pumping:
            self._owed += at_least_one
            return
        self._pumping = True
        self._owed = int(at_least_one)
        started = 0
        close = False
        try:
            while not self.closing and not self._write_paused:
                if (self._hold or self._oob_running) and not self._owed:
                    break
                if self._owed:
                    self._owed -= 1
                ev = self.monitor.next_event()
                if isinstance(ev, Send):
                    self._write(ev.message, ev.data, ev.reason)
                elif isinstance(ev, Dispatch):
                    if self._start(ev.request) and self._close_after_reply:
                        close = True
                    started += 1
                    if started >= PUMP_BUDGET:
                        # A long pipeline must not starve other peers and timers.
                        asyncio.get_running_loop().call_soon(self.pump)
                        break
                else:
                    break
        finally:
            self._pumping = False
            self._flush()
        if close:
            self.shutdown()
        self._update_reading()

    def _start(self, request: Request) -> bool:
        """Run a dispatched request; True when it finished at once.

        Most commands never wait, so the coroutine is first stepped right
        here: one that finishes is completed in line, without a task and an
        event loop round trip per request.  One that waits (on the in-band
        lock, a FIFO, a job) carries on in a task, as every command did before.
        """
        coro = self.server.execute(self, request)
        running: Awaitable[Any] = coro
        # Once a command asked to close the connection, later ones run in
        # tasks as before: they finish after the close, their replies unsent.
        if not self._close_after_reply:
            try:
                pending = coro.send(None)
            except StopIteration as done:
                self.monitor.complete(request, done.value)
                return True
            running = _Resume(coro, pending)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._execute(request, running))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if request.oob:
            self._oob_running += 1
        else:
            self._hold = True
            loop.call_later(HOLD_SECONDS, self._release_hold, task)
        return False

    def _update_reading(self) -> None:
        want = not self._write_paused and not self.closing and self.monitor.want_read
        transport = self._reader
        if transport is None or want == self._reading:
            return
        self._reading = want
        if want:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _release_hold(self, task: asyncio.Task[None]) -> None:
        if self._hold and not task.done():
            self._hold = False
            self.pump()

    async def _execute(self, request: Request, running: Awaitable[Any]) -> None:
        result = await running
        if self.closing:
            return
        if request.oob:
            self._oob_running -= 1
        else:
            self._hold = False
        self.monitor.complete(request, result)
        self.pump()
        if self._close_after_reply:
            self.shutdown()

    def _write(self, message: dict[str, Any], data: bytes, reason: Reason | None) -> None:
        defects = self.server.defects
        if self.deaf and classify(message) in ("return", "error"):
            return  # no-parser-recovery: nothing after the error is answered
        if reason is Reason.PARSE_ERROR:
            if defects.has(Flag.DIE_ON_GARBAGE):
                self._flush()  # what came before the garbage was written before it
                self.server.crash()
                return
            if defects.has(Flag.DEAF_AFTER_ERROR):
                self.deaf = True
        if self.writer is None or self.writer.is_closing():
            return
        if self._rewrites:
            for chunk in defects.outgoing(message, data, self.scratch):
                self._pending.append(chunk)
                self._pending_size += len(chunk)
        else:
            self._pending.append(data)
            self._pending_size += len(data)
        if self._pending_size >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Hand the gathered output to the writer in one write."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    # -- events.EventSink / commands.Session -------------------------------------------

    def deliver_event(self, message: dict[str, Any]) -> None:
        """Queue an event for this peer if the monitor takes it (not while negotiating)."""
        if self.closing:
            return
        if self.monitor.send_event(
            message["event"], message.get("data"), when=message["timestamp"]
        ):
            self.pump(at_least_one=True)

    def close_after_reply(self) -> None:
        """Close this connection once the running command's reply is written."""
        self._close_after_reply = True

    # -- teardown -------------------------------------------------------------------

    def shutdown(self) -> None:
        """Close after flushing what was already written."""
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        elif self.transport is None:
            self.closed.set()

    def abort(self) -> None:
        """Drop the connection at once, discarding unwritten output (as a crash does)."""
        self._flush()  # what a pump already wrote was written before the crash
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()
        elif self.transport is not None:
            self.transport.close()


async def serve(
    config: ServerConfig,
    *,
    unix: str | None = None,
    tcp: tuple[str, int] | None = None,
    allow_remote: bool = False,
    stdio: bool = False,
    ready: asyncio.Future[Any] | None = None,
) -> int:
    """Run a server until ``quit`` (exit status 0) or a seeded crash (134).

    Raises :class:`KeyError` for an unknown dialect or defect, :class:`QAPIError`
    when the schema does not load, :class:`ValueError` for a non-loopback TCP
    host without ``allow_remote``, and :class:`OSError` when it cannot listen.
    """
    server = ReferenceServer(config)
    bound: Any = None
    if unix is not None:
        await server.listen_unix(unix)
        bound = unix
    if tcp is not None:
        bound = await server.listen_tcp(tcp[0], tcp[1], allow_remote=allow_remote)
    if ready is not None and not ready.done():
        ready.set_result((server, bound))
    if stdio:
        await server.serve_stdio()
        await server.close()
    else:
        await server.stopped.wait()
    return 134 if server.crashed else 0
