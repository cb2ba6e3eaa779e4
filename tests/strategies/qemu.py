"""A QEMU process (the system's by default) to judge generated messages
against, restarted when it hangs or dies, driven through the harness's
:class:`conformance.session.Session`.

QEMU runs with ``-machine none -S`` in a private directory; as root it also
drops to ``nobody`` (``-runas``, or ``-run-with user=`` on releases that
dropped ``-runas``) so that generated file names cannot create or clobber
files outside that directory.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

from conformance.session import Message, ReplyTimeout, Session
from conformance.transport import ConnectionClosed, TargetError, connect_socket

QEMU = "qemu-system-x86_64"
REPLY_TIMEOUT = 5.0


def qemu_available() -> bool:
    return shutil.which(QEMU) is not None


class QemuUnderTest:
    """One QEMU at a time; :meth:`ask` sends a request and returns its reply,
    or None after restarting QEMU when no reply came (hang or death)."""

    def __init__(self, binary: str = QEMU) -> None:
        self.binary = binary
        self.workdir = tempfile.mkdtemp(prefix="strategies-qemu-")
        os.chmod(self.workdir, 0o777)
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: Session | None = None
        self.restarts: list[str] = []
        #: Commands after which QEMU died: (command, exit status, end of stderr).
        self.deaths: list[tuple[str, int, str]] = []
        self.release = ""  # major.minor, from the greeting
        self._ids = itertools.count(1)
        self.start()

    def start(self) -> None:
        path = os.path.join(self.workdir, "qmp.sock")
        if os.path.exists(path):
            os.unlink(path)
        argv = [
            self.binary,
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-qmp",
            f"unix:{path},server=on,wait=off",
        ]
        if os.geteuid() == 0:
            argv += _drop_privileges(self.binary)
        self.proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("QEMU did not create its QMP socket")
            time.sleep(0.02)
        self.session = Session(connect_socket(socket.AF_UNIX, path, f"unix:{path}"))
        greeting = self.session.read_greeting()
        if greeting is None:
            raise RuntimeError("QEMU sent no greeting")
        version = greeting["QMP"]["version"]["qemu"]
        self.release = f"{version['major']}.{version['minor']}"
        reply = self.session.negotiate()
        if not reply.ok or "return" not in reply.value:
            raise RuntimeError(f"negotiation failed: {reply.brief()}")

    def stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None

    def restart(self, why: str) -> None:
        self.restarts.append(why)
        self.stop()
        self.start()

    def execute(self, name: str, arguments: Any = None) -> Message | None:
        message: dict[str, Any] = {"execute": name, "id": f"s-{next(self._ids)}"}
        if arguments is not None:
            message["arguments"] = arguments
        return self.ask(message)

    def ask(self, message: dict[str, Any]) -> Message | None:
        assert self.session is not None
        ident = f"s-{next(self._ids)}"
        message = {**message, "id": ident}
        try:
            self.session.send(message)
            return self.session.wait_reply(ident, REPLY_TIMEOUT)
        except (ReplyTimeout, ConnectionClosed, TargetError, OSError) as exc:
            command = str(message.get("execute"))
            status = self._exit_status()
            if status is None:
                self.restart(f"{command}: {type(exc).__name__} (hung)")
            else:
                err = self._stderr_tail()
                self.deaths.append((command, status, err))
                self.restart(f"{command}: died with exit status {status}: {err}")
            return None

    def _exit_status(self) -> int | None:
        """The exit status once QEMU has gone (given a moment to finish dying)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None

    def _stderr_tail(self) -> str:
        if self.proc is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()[-300:].decode("utf-8", "replace").strip()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _drop_privileges(binary: str) -> list[str]:
    """The options that make QEMU run as ``nobody``: 9.1 replaced ``-runas``."""
    help_text = subprocess.run(
        [binary, "-help"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    if "-run-with" in help_text and "-runas" not in help_text:
        return ["-run-with", "user=nobody"]
    return ["-runas", "nobody"]
