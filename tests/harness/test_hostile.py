"""Targets that are alive but useless: the run must notice and stop, not
spend a reply timeout in every check, and must not grow without bound.

Each target here is a real UNIX-socket server in a thread of the test
process: it greets like QEMU, then misbehaves.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance import session as session_module
from conformance.cli import main
from conformance.runner import SILENT_LIMIT, Runner
from conformance.session import Session
from conformance.transport import open_target

GREETING = (
    b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, '
    b'"package": ""}, "capabilities": ["oob"]}}\r\n'
)
EVENT = b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n'

Behaviour = Callable[[socket.socket], None]


def _silent(conn: socket.socket) -> None:
    while conn.recv(65536):
        pass


def _flood(conn: socket.socket) -> None:
    burst = EVENT * 500
    while True:
        conn.sendall(burst)


def _deep_answers(conn: socket.socket) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000 + b"\r\n"
    while data := conn.recv(65536):
        for _ in range(data.count(b"\n") or 1):
            conn.sendall(deep)


def _serve(path: str, behaviour: Behaviour, stop: threading.Event) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)
    listener.settimeout(0.2)

    def handle(conn: socket.socket) -> None:
        try:
            conn.sendall(GREETING)
            behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()

    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
    listener.close()


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[str]:
    """``unix:PATH`` of a server that greets, then behaves as the test's param."""
    directory = tempfile.mkdtemp(prefix="qc-hostile-")
    path = os.path.join(directory, "s.sock")
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(path, request.param, stop), daemon=True)
    thread.start()
    while not os.path.exists(path):
        threading.Event().wait(0.01)
    yield f"unix:{path}"
    stop.set()
    thread.join(5)
    os.unlink(path)
    os.rmdir(directory)


@pytest.mark.parametrize(
    "hostile", [_flood, _deep_answers], indirect=True, ids=["event-flood", "deep-answers"]
)
def test_a_target_that_stopped_answering_is_given_up(hostile: str) -> None:
    with Runner(hostile, reply_timeout=0.5) as runner:
        # The passive checks only read what the run received: they run anyway.
        results = [runner.run_check(check) for check in runner.checks if check.needs_target]
    failed = [r for r in results if r.status in ("fail", "error")]
    not_run = [r for r in results if r.message.startswith("not run: the target stopped answering")]
    # Unanswered checks in a row (the start counts as one) end the run; a
    # check that waits for nothing (the greeting's shape) may fail besides.
    assert 1 <= len(failed) <= SILENT_LIMIT + 2, [(r.id, r.status) for r in results]
    assert len(not_run) >= len(results) - len(failed) - 4, [(r.id, r.status) for r in results]
    last = failed[-1]
    assert "the remaining checks are not run" in last.message
    assert any(" <- " in line or " -> " in line for line in last.transcript)


@pytest.mark.parametrize("hostile", [_silent], indirect=True, ids=["silent-after-greeting"])
def test_the_cli_reports_the_silence_and_exits_1(
    hostile: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--target", hostile, "--timeout", "0.5"]) == 1
    out = capsys.readouterr().out
    assert "not run: the target stopped answering" in out


@pytest.mark.parametrize("hostile", [_flood], indirect=True)
def test_a_flood_is_counted_not_kept(hostile: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_module, "MAX_KEPT", 2000)
    target = open_target(hostile)
    try:
        with Session(target.connect()) as session:
            session.read_greeting()
            while session.dropped == 0:
                session.recv(1.0)
            assert len(session.received) == 2000
            assert len(session.events) == 2000
    finally:
        target.close()


def test_a_spawned_server_that_dies_at_once_is_an_error_with_its_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Greets, reads one byte, complains on stderr and exits: the run cannot
    start, and says how the process ended."""
    script = tmp_path / "greet-and-die.py"
    script.write_text(
        "import os, sys\n"
        f"sys.stdout.buffer.write({GREETING!r}); sys.stdout.flush()\n"
        "os.read(0, 1)\n"
        "sys.stderr.write('gave up on purpose\\n'); sys.exit(3)\n"
    )
    assert main(["check", "--target", f"spawn:{sys.executable} {script}"]) == 2
    err = capsys.readouterr().err
    assert "exit status 3" in err and "gave up on purpose" in err
