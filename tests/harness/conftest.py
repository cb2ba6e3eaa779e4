"""Fixtures for the harness tests: real QEMU processes, always cleaned up."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from harness_targets import QEMU

QSD = shutil.which("qemu-storage-daemon")
QGA = shutil.which("qemu-ga")


def _wait_for(path: str, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not create {path} (exit {proc.poll()})")
        time.sleep(0.02)


def _serve(argv: list[str], path: str) -> Iterator[str]:
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(path, proc)
        yield path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    """A short directory name: UNIX socket paths are limited to ~100 bytes."""
    d = tempfile.mkdtemp(prefix="qc-h-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def qemu_unix(tmpdir_short: str) -> Iterator[str]:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 not installed")
    path = os.path.join(tmpdir_short, "qmp.sock")
    yield from _serve(
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
        path,
    )


@pytest.fixture
def qsd_unix(tmpdir_short: str) -> Iterator[str]:
    if QSD is None:
        pytest.skip("qemu-storage-daemon not installed")
    path = os.path.join(tmpdir_short, "qsd.sock")
    yield from _serve(
        [
            QSD,
            "--chardev",
            f"socket,path={path},server=on,wait=off,id=m0",
            "--monitor",
            "chardev=m0",
        ],
        path,
    )


@pytest.fixture
def qga_unix(tmpdir_short: str) -> Iterator[str]:
    if QGA is None:
        pytest.skip("qemu-ga not installed")
    path = os.path.join(tmpdir_short, "qga.sock")
    yield from _serve(
        [
            QGA,
            "-m",
            "unix-listen",
            "-p",
            path,
            "-t",
            tmpdir_short,
            "-f",
            os.path.join(tmpdir_short, "qga.pid"),
        ],
        path,
    )
