"""Fixtures: a real QEMU 7.2 and its live introspection, one per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conformance.qapi import load
from conformance.qapi.model import Schema
from tests.strategies.qemu import QemuUnderTest, qemu_available


@pytest.fixture(scope="module")
def qemu() -> Iterator[QemuUnderTest]:
    if not qemu_available():
        pytest.skip("qemu-system-x86_64 is not installed")
    target = QemuUnderTest()
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
