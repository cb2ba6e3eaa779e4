"""The stateful machines run against the bundled reference server, in CI:
the same invariants that real QEMU 7.2 satisfies (test_stateful_qemu.py) hold
for the server the suite ships as its oracle."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

import reference_server
from conformance.session import Session
from conformance.transport import connect_socket
from strategies.stateful import (
    BlockJobMachine,
    JobFrameworkMachine,
    NegotiationMachine,
    SnapshotJobMachine,
    bind,
)

SETTINGS = settings(
    max_examples=8,
    stateful_step_count=12,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def connect() -> Iterator[Callable[[], Session]]:
    with reference_server.launch() as path:

        def connect() -> Session:
            session = Session(connect_socket(socket.AF_UNIX, path, f"unix:{path}"))
            assert session.read_greeting() is not None, "no greeting"
            return session

        yield connect


@pytest.mark.parametrize("machine", [NegotiationMachine, BlockJobMachine, JobFrameworkMachine])
def test_machine_against_reference_server(connect: Callable[[], Session], machine: type) -> None:
    run_state_machine_as_test(bind(machine, connect), settings=SETTINGS)


def qcow2_node(name: str) -> dict[str, Any]:
    return {"driver": "qcow2", "node-name": name, "file": {"driver": "null-co"}}


def test_snapshot_jobs_against_reference_server(connect: Callable[[], Session]) -> None:
    run_state_machine_as_test(
        bind(SnapshotJobMachine, connect, node_arguments=qcow2_node), settings=SETTINGS
    )
