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
        old = os.umask(0o177)
        try:
            srv = await asyncio.get_running_loop().create_unix_server(
                self._protocol, path, backlog=LISTEN_BACKLOG
            )
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
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
        try:
            if request.oob and not self.defects.has(Flag.OOB_IN_BAND):
                return await self._run(conn, request)
            async with self.inband_lock:
                return await self._run(conn, request)
        except QMPError as exc:
            return CommandError(exc.error_class, exc.desc)
        except Exception as exc:  # a bug in a handler must not cost the reply
            log.exception("command %s failed", request.command)
            return CommandError("GenericError", f"internal error: {exc}")

    async def _run(self, conn: Connection, request: Request) -> Any:
        command = self.schema.commands[request.command]
        handler = self.handlers[request.command]
        ctx = CommandContext(
            self.machine,
            self.schema,
            conn,
            self.introspection,
            self.command_names,
            self.version,
            self.synth,
        )
        if command.gen and not self.defects.has(Flag.ACCEPT_INVALID_ARGUMENTS):
            try:
                self.checker.check_arguments(command.arg_type, request.arguments)
            except QMPError:
                if self.defects.has(Flag.SIDE_EFFECT_BEFORE_ERROR):
                    with contextlib.suppress(Exception):
                        await handler(ctx, {})
                raise
        result = await handler(ctx, request.arguments)
        if not command.success_response:
            return NO_REPLY
        return {} if result is None else result


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


class Connection(asyncio.Protocol):
    """One client: a transport, a monitor, and the commands it has running."""

    def __init__(self, server: ReferenceServer) -> None:
        self.server = server
        self.transport: asyncio.BaseTransport | None = None
        self.writer: asyncio.WriteTransport | None = None
        self.scratch: dict[str, Any] = {}
        self.deaf = False
        self.closing = False
        self._close_after_reply = False
        self._write_paused = False
        self._reading = True
        self._pumping = False
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

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start serving a new peer: attach it to the event bus and let the monitor greet it."""
        self.transport = transport
        if self.writer is None and isinstance(transport, asyncio.WriteTransport):
            self.writer = transport
            transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.server.connections.add(self)
        self.server.machine.events.attach(self)
        self.pump()

    def data_received(self, data: bytes) -> None:
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
        request behind it is read; holding reproduces that outcome.
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self.closing and not self._write_paused:
                if (self._hold or self._oob_running) and not at_least_one:
                    break
                at_least_one = False
                ev = self.monitor.next_event()
                if isinstance(ev, Send):
                    self._write(ev.message, ev.data, ev.reason)
                elif isinstance(ev, Dispatch):
                    loop = asyncio.get_running_loop()
                    task = loop.create_task(self._execute(ev.request))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    if ev.request.oob:
                        self._oob_running += 1
                    else:
                        self._hold = True
                        loop.call_later(HOLD_SECONDS, self._release_hold, task)
                else:
                    break
        finally:
            self._pumping = False
        self._update_reading()

    def _update_reading(self) -> None:
        want = not self._write_paused and not self.closing and self.monitor.want_read
        transport = self.transport
        if not isinstance(transport, asyncio.ReadTransport) or want == self._reading:
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

    async def _execute(self, request: Request) -> None:
        result = await self.server.execute(self, request)
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
                self.server.crash()
                return
            if defects.has(Flag.DEAF_AFTER_ERROR):
                self.deaf = True
        chunks = (
            defects.outgoing(message, data, self.scratch) if defects.rewrites_output else [data]
        )
        if self.writer is not None and not self.writer.is_closing():
            for chunk in chunks:
                self.writer.write(chunk)

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
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        elif self.transport is None:
            self.closed.set()

    def abort(self) -> None:
        """Drop the connection at once, discarding unwritten output (as a crash does)."""
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
