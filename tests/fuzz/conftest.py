"""Fixtures for the fuzzing tests: targets, a private Redis, CLI runs with deadlines."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.fuzz.findings import Finding
from conformance.fuzz.replay import Replayer

QEMU = shutil.which("qemu-system-x86_64")
QEMU_SPAWN = "spawn:qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio"

#: Findings that are real deviations of the servers under test, documented in
#: docs/fuzzing.md ("Genuine deviations") with their transcripts.  A false-alarm
#: test fails on anything else.
KNOWN_QEMU_72 = {
    # QEMU 7.2 aborts (assertion on the in-band queue length) when one read
    # completes several requests or errors while OOB is on and the queue is full.
    "crash": "handle_qmp_command: Assertion `mon->qmp_requests->length < "
    "QMP_REQ_QUEUE_LEN_MAX' failed",
}


def reference_available() -> bool:
    try:
        import reference_server
    except ImportError:
        return False
    return hasattr(reference_server, "launch")


@pytest.fixture
def reference() -> str:
    if not reference_available():
        pytest.skip("reference_server.launch is not available")
    return "reference"


@pytest.fixture
def qemu() -> str:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    return QEMU_SPAWN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private redis-server on loopback (no persistence), stopped afterwards."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``qmp-conform ARGS`` to completion, with a deadline."""
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def cli_process(*args: str, stderr: Any = subprocess.PIPE) -> Iterator[subprocess.Popen[str]]:
    """``qmp-conform ARGS`` in its own process group, killed (group-wide) on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", *args],
        text=True,
        stdout=subprocess.PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=10)
        # Anything the group started (a reference server) goes with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def correct_server() -> Iterator[Replayer]:
    """A healthy reference server to replay findings on (they must not reproduce)."""
    with Replayer("reference") as replayer:
        yield replayer


def assert_replays(finding: Finding, target: str, correct_server: Replayer) -> None:
    """``finding`` reproduces on ``target`` (the defect) and not on the correct server."""
    with Replayer(target) as defective:
        assert defective.replay(finding).reproduced, f"{finding.ident} does not replay"
    assert not correct_server.replay(finding).reproduced, (
        f"{finding.ident} also 'reproduces' on the correct server"
    )
