"""Fixtures: a real QEMU and its live introspection, one per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.qapi import load
from conformance.qapi.model import Schema
from tests.strategies.qemu import QEMU, QemuUnderTest, qemu_available


@pytest.fixture(scope="module")
def qemu(request: pytest.FixtureRequest) -> Iterator[QemuUnderTest]:
    """The system's QEMU, or the binary a test module names (indirect parameter)."""
    binary = getattr(request, "param", QEMU)
    if binary == QEMU and not qemu_available():
        pytest.skip("qemu-system-x86_64 is not installed")
    target = QemuUnderTest(binary)
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="module")
def live_schema(qemu: QemuUnderTest) -> Schema:
    reply = qemu.execute("query-qmp-schema")
    assert reply is not None and reply.ok, "query-qmp-schema failed"
    entries: Any = reply.value["return"]
    return load(entries)
