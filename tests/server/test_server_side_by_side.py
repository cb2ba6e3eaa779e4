"""The committed protocol cases, against the reference server and QEMU 7.2 side by side."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from server_wire import QEMU, qemu_server
from side_by_side import load_cases, observe, run_case, same

from reference_server import launch

CASES = load_cases()


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, dict[str, Any]]]:
    """Run every case once per server: one QEMU process, one reference server."""
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 not installed")

    def run_all(path: str) -> dict[str, Any]:
        return {case["name"]: run_case(path, case) for case in CASES}

    # The two servers are independent, and most of a case's time is spent
    # waiting for quiet: both run at once.
    with launch() as ref, qemu_server() as qemu, ThreadPoolExecutor(2) as pool:
        ref_run, qemu_run = pool.submit(run_all, ref), pool.submit(run_all, qemu)
        out = {"ref": ref_run.result(), "qemu": qemu_run.result()}
    yield out


def test_cases_cover_the_areas() -> None:
    areas = {c["name"].split("/")[0] for c in CASES}
    assert {"greeting", "negotiation", "id", "malformed", "command", "oob", "events"} <= areas
    assert len(CASES) >= 100


@pytest.mark.qemu
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_reference_agrees_with_qemu(
    case: dict[str, Any], results: dict[str, dict[str, Any]]
) -> None:
    ref = observe(results["ref"][case["name"]])
    qemu = observe(results["qemu"][case["name"]])
    loose = bool(case.get("unordered_after_first"))
    if case.get("differs"):
        assert not same(ref, qemu, unordered_after_first=loose), (
            f"documented difference no longer differs: {case['differs']}"
        )
        return
    assert same(ref, qemu, unordered_after_first=loose), f"\nreference: {ref}\nqemu:      {qemu}"
