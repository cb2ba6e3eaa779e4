"""The stateful machines run against real QEMU 7.2 (one process per module)."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance.session import Session
from conformance.transport import connect_socket
from strategies.stateful import (
    BlockJobMachine,
    JobFrameworkMachine,
    NegotiationMachine,
    SnapshotJobMachine,
    bind,
)
from tests.strategies.qemu import QemuUnderTest

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

SETTINGS = settings(
    max_examples=6,
    stateful_step_count=12,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _connector(qemu: QemuUnderTest):  # type: ignore[no-untyped-def]
    # The fixture's own session holds the single QMP connection; release it.
    if qemu.session is not None:
        qemu.session.close()
        qemu.session = None
    path = f"{qemu.workdir}/qmp.sock"

    def connect() -> Session:
        session = Session(connect_socket(socket.AF_UNIX, path, f"unix:{path}"))
        assert session.read_greeting() is not None, "no greeting"
        return session

    return connect


def test_negotiation_machine(qemu: QemuUnderTest) -> None:
    run_state_machine_as_test(bind(NegotiationMachine, _connector(qemu)), settings=SETTINGS)


def test_block_job_machine(qemu: QemuUnderTest) -> None:
    run_state_machine_as_test(bind(BlockJobMachine, _connector(qemu)), settings=SETTINGS)


def test_job_framework_machine(qemu: QemuUnderTest) -> None:
    run_state_machine_as_test(bind(JobFrameworkMachine, _connector(qemu)), settings=SETTINGS)


def test_snapshot_job_machine(qemu: QemuUnderTest) -> None:
    """Internal snapshots on a qcow2 image made with qemu-img (Debian's qemu-utils)."""
    counter = iter(range(1_000_000))

    def qcow2_node(name: str) -> dict[str, Any]:
        image = os.path.join(qemu.workdir, f"{name}-{next(counter)}.qcow2")
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"], check=True, timeout=30
        )
        os.chmod(image, 0o666)  # QEMU may run as nobody
        return {"driver": "qcow2", "node-name": name, "file": {"driver": "file", "filename": image}}

    run_state_machine_as_test(
        bind(SnapshotJobMachine, _connector(qemu), node_arguments=qcow2_node), settings=SETTINGS
    )
