"""The committed protocol cases, against the reference server and QEMU 7.2 side by side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from server_wire import QEMU, live_schema, qemu_server
from side_by_side import load_cases, observe, run_case, same

from reference_server import launch

CASES = load_cases()
#: Cases where serving QEMU's introspection cannot agree, and why.
INTROSPECTION_DIFFERS = {
    "command/int32-range": "introspection shows every integer type as 'int': a server "
    "reading it cannot know that max-transfer is an int32",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Run every case once per server: QEMU, the reference server with its own
    schema, and the reference server serving QEMU's live introspection."""
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 not installed")

    def run_all(path: str) -> dict[str, Any]:
        return {case["name"]: run_case(path, case) for case in CASES}

    # The servers are independent, and most of a case's time is spent
    # waiting for quiet: all run at once.
    with qemu_server() as qemu:
        introspection = tmp_path_factory.mktemp("schema") / "qemu-7.2.json"
        introspection.write_text(json.dumps(live_schema(qemu)))
        with (
            launch() as ref,
            launch(schema=str(introspection)) as ref_live,
            ThreadPoolExecutor(3) as pool,
        ):
            runs = {
                "ref": pool.submit(run_all, ref),
                "ref-live": pool.submit(run_all, ref_live),
                "qemu": pool.submit(run_all, qemu),
            }
            yield {name: run.result() for name, run in runs.items()}


def test_cases_cover_the_areas() -> None:
    areas = {c["name"].split("/")[0] for c in CASES}
    assert {"greeting", "negotiation", "id", "malformed", "command", "oob", "events"} <= areas
    assert len(CASES) >= 100


@pytest.mark.qemu
@pytest.mark.parametrize("served", ["ref", "ref-live"], ids=["own-schema", "qemu-schema"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_reference_agrees_with_qemu(
    case: dict[str, Any], served: str, results: dict[str, dict[str, Any]]
) -> None:
    ref = observe(results[served][case["name"]])
    qemu = observe(results["qemu"][case["name"]])
    loose = bool(case.get("unordered_after_first"))
    differs = case.get("differs") or (
        served == "ref-live" and INTROSPECTION_DIFFERS.get(case["name"])
    )
    if differs:
        assert not same(ref, qemu, unordered_after_first=loose), (
            f"documented difference no longer differs: {differs}"
        )
        return
    assert same(ref, qemu, unordered_after_first=loose), f"\nreference: {ref}\nqemu:      {qemu}"
