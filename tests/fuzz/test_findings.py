"""Finding files: the format round-trips, writes are atomic, duplicates fold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.fuzz.execute import Observation
from conformance.fuzz.findings import FindingStore, load, parse, write_atomic
from conformance.fuzz.oracles import Violation
from conformance.fuzz.program import Program, Step, encode_request, probe_step


def _program(extra: int = 0) -> Program:
    steps = [
        Step("connect", 0),
        Step(
            "negotiate",
            0,
            encode_request({"execute": "qmp_capabilities", "id": "qc-neg-0"}),
            {"oob": False},
        ),
    ]
    for i in range(1 + extra):
        steps.append(
            Step(
                "command",
                0,
                encode_request({"execute": "query-name", "id": i}),
                {"name": "query-name", "expect": "any"},
            )
        )
    steps.append(Step("raw", 0, b'\xff\x00{"a":\r\n\x01'))
    steps.append(probe_step(0, 0))
    return Program(steps)


def _violation() -> Violation:
    return Violation("Q16", "one-reply", "no-reply", "no reply to {...}", ("valid",))


def test_round_trip_keeps_exact_bytes(tmp_path: Path) -> None:
    store = FindingStore(tmp_path, "reference")
    path, first = store.record(_violation(), Observation(_program()))
    assert first and path.name == f"{_violation().ident}.qmp"
    text = path.read_text()
    assert text.startswith("# qmp-conform finding, format 1\n")
    assert "rule: Q16\n" in text and text.endswith("== end ==\n")
    finding = load(path)
    assert finding.rule == "Q16" and finding.signature == _violation().signature
    assert [s.data for s in finding.program.steps] == [s.data for s in _program().steps]
    assert finding.program.steps[3].data == b'\xff\x00{"a":\r\n\x01'


def test_same_rule_and_signature_fold_keeping_the_smaller(tmp_path: Path) -> None:
    store = FindingStore(tmp_path, "reference")
    store.record(_violation(), Observation(_program(extra=5)))
    _, first = store.record(_violation(), Observation(_program(extra=9)))
    assert not first
    assert len(load(store.path(_violation().ident)).program.steps) == 10
    store.record(_violation(), Observation(_program(extra=0)))
    assert len(store.files()) == 1
    assert len(load(store.path(_violation().ident)).program.steps) == 5
    # A second store (another worker, a later run) sees what is on disk.
    other = FindingStore(tmp_path, "reference")
    _, first = other.record(_violation(), Observation(_program(extra=3)))
    assert not first and len(load(other.path(_violation().ident)).program.steps) == 5
    assert not [p for p in store.dir.iterdir() if p.suffix != ".qmp"], "temporary file left"


@pytest.mark.parametrize("cut", [10, 200, -12])
def test_a_torn_file_is_rejected(tmp_path: Path, cut: int) -> None:
    store = FindingStore(tmp_path)
    path, _ = store.record(_violation(), Observation(_program()))
    text = path.read_text()
    with pytest.raises(ValueError):
        parse(text[:cut])


def test_finding_files_are_as_readable_as_any_file_the_user_writes(tmp_path: Path) -> None:
    path = tmp_path / "f.qmp"
    write_atomic(path, "text\n")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert path.read_text() == "text\n"
