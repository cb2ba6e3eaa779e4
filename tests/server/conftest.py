"""Fixtures for the reference server tests (servers on fresh UNIX sockets)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_wire import QEMU, qemu_server

from reference_server import launch


@pytest.fixture
def ref_path() -> Iterator[str]:
    with launch() as path:
        yield path


@pytest.fixture(scope="module")
def shared_ref_path() -> Iterator[str]:
    with launch() as path:
        yield path


@pytest.fixture(scope="module")
def qemu_path() -> Iterator[str]:
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 not installed")
    with qemu_server() as path:
        yield path
