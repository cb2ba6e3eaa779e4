"""Baselines as a CI gate uses them, end to end through ``qmp-conform check``:
a new failure fails the gate, an expected one does not, a stale entry is
reported (and fails in strict mode); plus TAP output and bad baseline files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mesonbuild import mtest

from conformance.baseline import BaselineError, builtin, load
from conformance.cli import main
from conformance.runner import run

DEFECT = "reference:defect=reply-drops-id"
CHECK = "ids.echo"


def _check(*args: str) -> int:
    return main(["check", "--only", CHECK, *args])


def test_the_baseline_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "baseline.json"
    # A new failure fails the gate; the run can write the baseline that expects it.
    assert _check("--target", DEFECT, "--write-baseline", str(base)) == 1
    entries = json.loads(base.read_text())["entries"]
    assert [e["check"] for e in entries] == [CHECK]
    assert entries[0]["releases"].startswith("==") and entries[0]["seen_on"]
    capsys.readouterr()

    # The same failure, now expected: reported as such, the gate passes.
    result = tmp_path / "r.json"
    assert _check("--target", DEFECT, "--baseline", str(base), "--json", str(result)) == 0
    out = capsys.readouterr().out
    assert "XFAIL" in out and f"EXPECTED FAILURE {entries[0]['key']}" in out
    doc = json.loads(result.read_text())
    assert doc["summary"]["xfail"] == 1 and doc["results"][0]["baseline"] == entries[0]["key"]
    assert doc["results"][0]["transcript"], "an expected failure keeps its evidence"

    # A correct server: the entry is stale, reported, and fails only when strict.
    assert _check("--target", "reference", "--baseline", str(base)) == 0
    assert "STALE BASELINE ENTRY" in capsys.readouterr().out
    assert _check("--target", "reference", "--baseline", str(base), "--strict-baseline") == 1

    # Another failure than the one expected still fails the gate.
    other = "reference:defect=id-stringified"
    assert main(["check", "--only", "ids.*", "--target", other, "--baseline", str(base)]) == 1


def test_tap_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = tmp_path / "b.json"
    assert (
        main(["check", "--only", "ids.*", "--target", DEFECT, "--write-baseline", str(base)]) == 1
    )
    capsys.readouterr()
    assert (
        main(
            [
                "check",
                "--only",
                "ids.*",
                "--target",
                DEFECT,
                "--baseline",
                str(base),
                "--format",
                "tap",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "TAP version 14"
    plan = next(line for line in lines if line.startswith("1.."))
    tests = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert len(tests) == int(plan[3:])
    expected = [line for line in tests if line.startswith("not ok")]
    assert any(f" - {CHECK} " in line for line in expected)
    assert expected and all("# TODO EXPECTED FAILURE" in line for line in expected)
    # QEMU's test runner (meson) reads it: one result per check, the expected
    # failures as such, no parse errors, and every YAML block closed.
    tap, verdict = mtest.TAPParser, mtest.TestResult
    parser = tap()
    events = [e for line in [*lines, None] for e in parser.parse_line(line)]
    assert not [e for e in events if isinstance(e, (tap.Error, tap.UnknownLine))]
    assert any(isinstance(e, tap.Version) and e.version == 14 for e in events)
    results = {e.name.lstrip("- "): e.result for e in events if isinstance(e, tap.Test)}
    assert len(results) == len(tests)
    assert results[CHECK] is verdict.EXPECTEDFAIL
    assert set(results.values()) <= {verdict.OK, verdict.SKIP, verdict.EXPECTEDFAIL}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "not a baseline"),
        ('{"qmp-conformance-baseline": 1, "entries": [{"check": "x"}]}', "'key'"),
        (
            '{"qmp-conformance-baseline": 1, "entries": [{"key": "k", "check": "x", '
            '"releases": "seven"}]}',
            "version specifier",
        ),
        (
            '{"qmp-conformance-baseline": 1, "entries": [{"key": "k", "check": "x", '
            '"symptom": "("}]}',
            "regular expression",
        ),
        (
            '{"qmp-conformance-baseline": 1, "entries": [{"key": "k", "check": "x", '
            '"colour": "red"}]}',
            "unknown member",
        ),
    ],
)
def test_a_bad_baseline_is_a_usage_error(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message):
        load(str(path))
    assert main(["check", "--target", "reference", "--baseline", str(path)]) == 2
    assert message.strip("'") in capsys.readouterr().err


def test_builtin_entries_are_written_up() -> None:
    doc = Path(__file__).parents[2] / "docs" / "known-deviations.md"
    text = doc.read_text(encoding="utf-8")
    for entry in builtin().entries:
        assert f"## {entry.key}:" in text, entry.key
        assert entry.seen_on and entry.reason


@pytest.fixture
def dying_unix_server() -> Iterator[str]:
    """A reference server on a socket the harness did not start, which exits on
    the first JSON parse error."""
    directory = tempfile.mkdtemp(prefix="qc-b-")
    path = os.path.join(directory, "s.sock")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "serve",
            "--unix",
            path,
            "--defect",
            "dies-on-garbage",
        ],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        yield path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_socket_target_that_dies_leaves_the_rest_not_run(dying_unix_server: str) -> None:
    result = run(f"unix:{dying_unix_server}", only=["robustness.*", "ids.echo"])
    verdicts = [(r.id, r.status) for r in result.results]
    killer = next(r for r in result.results if r.status == "fail")
    assert "The server died in this check" in killer.message, verdicts
    after = result.results[result.results.index(killer) + 1 :]
    assert after, verdicts
    assert all(
        r.status == "skip" and r.message.startswith(f"not run: the target died in {killer.id}")
        for r in after
    )


def test_the_passive_checks_still_judge_what_came_before_the_death(
    dying_unix_server: str,
) -> None:
    result = run(f"unix:{dying_unix_server}", only=["ids.echo", "robustness.*", "passive.*"])
    by_id = {r.id: r for r in result.results}
    assert by_id["robustness.garbage"].status == "skip"  # not run: the target is gone
    for name in ("passive.wire", "passive.shapes"):
        assert by_id[name].status == "pass", by_id[name].message


def test_qemus_deviations_do_not_excuse_another_server() -> None:
    """The reference server reports QEMU 7.2's version; a seeded defect that
    kills it on the error flood is its own failure, not QEMU's KD-1."""
    result = run("reference:defect=dies-on-garbage", only="robustness.error-flood")
    verdict = result.results[0]
    assert verdict.status == "fail" and verdict.expected is None, verdict.message
