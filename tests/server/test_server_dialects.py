"""Basic behaviour of each dialect (--dialect)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from server_wire import WireClient

from reference_server import launch


def test_qemu_dialect_greets_with_oob() -> None:
    with launch(dialect="qemu") as path, WireClient(path) as c:
        greeting = c.greet_and_negotiate()
        assert greeting["QMP"]["capabilities"] == ["oob"]
        reply, _ = c.command("query-version", id=1)
        assert reply["return"] == greeting["QMP"]["version"]  # Q8


def test_oob_draft_dialect_runs_control_run_oob() -> None:
    with launch(dialect="oob-draft") as path, WireClient(path) as c:
        c.greet_and_negotiate(oob=True)
        c.send('{"execute":"query-yank","control":{"run-oob":true},"id":"d"}')
        assert c.read_message() == {
            "return": [{"type": "chardev", "id": "compat_monitor0"}],
            "id": "d",
        }
        c.send('{"exec-oob":"query-yank","id":"e"}')
        assert "unexpected" in c.read_message()["error"]["desc"]


def test_qmp_1_0_dialect_has_no_capabilities() -> None:
    with launch(dialect="qmp-1.0") as path, WireClient(path) as c:
        greeting = c.read_message()
        assert greeting["QMP"]["capabilities"] == []
        c.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},"id":1}')
        assert c.read_message()["error"]["class"] == "GenericError"
        c.send('{"execute":"qmp_capabilities","id":2}')
        assert c.read_message() == {"return": {}, "id": 2}
        c.send('{"exec-oob":"yank","arguments":{"instances":[]},"id":3}')
        assert c.read_message()["error"]["desc"] == "QMP input member 'exec-oob' is unexpected"


def test_qga_dialect() -> None:
    with launch(dialect="qga") as path, WireClient(path) as c:
        assert c.read_line(timeout=0.3) is None  # no greeting
        c.send('{"execute":"guest-ping","id":1}')
        line = c.read_line()
        assert line == b'{"return": {}, "id": 1}\n'  # LF only
        c.send('{"execute":"guest-sync-delimited","arguments":{"id":12345}}')
        line = c.read_line()
        assert line is not None and line.startswith(b"\xff")  # Q39 sentinel
        assert json.loads(line[1:]) == {"return": 12345}
        c.send('{"execute":"guest-sync","arguments":{"id":7}}')
        assert c.read_message() == {"return": 7}
        c.send('{"execute":"qmp_capabilities"}')
        assert c.read_message()["error"]["class"] == "CommandNotFound"
        c.send('{"execute":"guest-info"}')
        info = c.read_message()["return"]
        shutdown = [x for x in info["supported_commands"] if x["name"] == "guest-shutdown"]
        assert shutdown == [{"enabled": True, "name": "guest-shutdown", "success-response": False}]
        c.send('{"execute":"guest-shutdown","id":"bye"}')
        assert c.read_line(timeout=0.5) is None  # success-response: false


def test_cli_stdio_serves_one_monitor() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "serve", "--stdio"],
        input=b'{"execute":"qmp_capabilities"}{"execute":"query-name","id":1}'
        b'{"execute":"quit","id":"q"}',
        capture_output=True,
        timeout=30,
    )
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines[0]["QMP"]["capabilities"] == ["oob"]
    assert lines[1:3] == [{"return": {}}, {"return": {}, "id": 1}]
    assert lines[3]["event"] == "SHUTDOWN"
    assert lines[4] == {"return": {}, "id": "q"}
    assert proc.returncode == 0


def test_cli_refuses_remote_tcp_without_flag() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "serve", "--tcp", "192.0.2.1:4444"],
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert b"--allow-remote" in proc.stderr


def test_cli_lists_defects() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "serve", "--list-defects"],
        capture_output=True,
        timeout=30,
        text=True,
    )
    assert proc.returncode == 0
    rows = proc.stdout.splitlines()
    # Each names its rule: a Q-number of the QMP checklist or a job rule (J1-J8).
    assert len(rows) >= 20 and all(re.search(r" (Q\d+|J[1-8]) ", row) for row in rows)


def _run_state_story(target: str) -> list[str]:
    """stop, cont, stop from the start: the statuses and events, in order."""
    from conformance.session import Session
    from conformance.transport import open_target

    story = []
    with open_target(target) as t:
        session = Session(t.connect())
        session.read_greeting(5)
        session.execute("qmp_capabilities")
        for name in ("query-status", "stop", "query-status", "cont", "query-status", "stop"):
            first = len(session.events)
            reply = session.execute(name)
            session.collect(quiet=0.2, timeout=1)
            story += [f"event {e.obj['event']}" for e in session.events[first:]]
            if name == "query-status":
                story.append(f"{reply.obj['return']['status']}")
    return story


def test_paused_start_is_qemus_minus_s() -> None:
    expected = ["prelaunch", "prelaunch", "event RESUME", "running", "event STOP"]
    assert _run_state_story("reference:start=paused") == expected
    if shutil.which("qemu-system-x86_64"):
        qemu = "spawn:qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio -S"
        assert _run_state_story(qemu) == expected
    # Without it, as QEMU without -S: running from the start.
    assert _run_state_story("reference")[:2] == ["running", "event STOP"]


def test_unknown_start_is_refused() -> None:
    from conformance.transport import TargetError, open_target

    with pytest.raises(TargetError, match="start=running or start=paused"):
        open_target("reference:start=later")
