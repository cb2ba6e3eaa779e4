"""The CLI as users run it: exit statuses, SIGKILL safety, Ctrl-C, replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conformance.fuzz.findings import load
from tests.fuzz.conftest import cli, cli_process

DEFECT = "reference:defect=lost-reply"


def _wait_for(predicate: object, timeout: float) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_unreachable_target_is_a_usage_error(tmp_path: Path) -> None:
    result = cli(
        "fuzz",
        "--target",
        f"unix:{tmp_path}/nobody.sock",
        "--duration",
        "5",
        "--out",
        str(tmp_path),
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot connect" in result.stderr


def test_malformed_target_and_database_are_usage_errors(tmp_path: Path) -> None:
    assert cli("fuzz", "--target", "bogus:x", "--out", str(tmp_path)).returncode == 2
    result = cli(
        "fuzz",
        "--target",
        "reference",
        "--db",
        "redis://127.0.0.1:1/0",
        "--out",
        str(tmp_path),
        timeout=60,
    )
    assert result.returncode == 2 and "Redis" in result.stderr


def test_sigkill_keeps_reported_findings_and_they_replay(reference: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    findings = out / "findings"
    with cli_process(
        "fuzz", "--target", DEFECT, "--duration", "120", "--out", str(out), "--seed", "5", "--quiet"
    ) as proc:
        assert _wait_for(lambda: any(findings.glob("*.qmp")), 60), "no finding in 60 s"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    files = sorted(findings.glob("*.qmp"))
    assert files
    # A write cut short leaves at most a hidden temporary file, never a torn .qmp.
    for path in files:
        finding = load(path)  # complete: parses, ends with the end line
        assert finding.rule.startswith("Q") and finding.program.steps
    first = files[0]
    again = cli("replay", str(first), "--target", DEFECT, "--json", timeout=60)
    assert again.returncode == 1, again.stdout + again.stderr
    assert json.loads(again.stdout.splitlines()[-1])["reproduced"] is True
    clean = cli("replay", str(first), "--target", reference, "--quiet", timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "not reproduced" in clean.stdout


def test_ctrl_c_ends_with_a_summary(reference: str, tmp_path: Path) -> None:
    log = tmp_path / "progress.log"
    with (
        log.open("w") as err,
        cli_process(
            "fuzz",
            "--target",
            reference,
            "--duration",
            "120",
            "--out",
            str(tmp_path / "out"),
            stderr=err,
        ) as proc,
    ):
        # Progress lines (plain, the output is not a terminal) say it is fuzzing.
        assert _wait_for(lambda: "examples" in log.read_text(), 60), log.read_text()
        proc.send_signal(signal.SIGINT)
        try:
            stdout, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the campaign did not end within 60 s of Ctrl-C")
    assert proc.returncode in (0, 1), log.read_text()
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["examples"] > 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary


def test_max_examples_budget_and_exit_status(reference: str, tmp_path: Path) -> None:
    result = cli(
        "fuzz",
        "--target",
        "reference:defect=id-stringified",
        "--max-examples",
        "20",
        "--out",
        str(tmp_path),
        "--seed",
        "1",
        "--quiet",
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["findings"] >= 1 and summary["examples"] <= 20 + 5
    for name in summary["finding_files"]:
        assert Path(name).is_file()


def test_a_socket_target_that_dies_for_good_keeps_its_finding(tmp_path: Path) -> None:
    # A server on a plain socket that nobody restarts (QEMU's -qmp unix:, here
    # the reference server with a defect that makes it exit on garbage): the
    # crash cannot be confirmed, so the example's own transcript is recorded
    # and the campaign ends with its summary instead of a connection error.
    sock = tmp_path / "qmp.sock"
    with cli_process("serve", "--unix", str(sock), "--defect", "dies-on-garbage") as server:
        assert _wait_for(sock.exists, 20), "the server did not start"
        result = cli(
            "fuzz",
            "--target",
            f"unix:{sock}",
            "--duration",
            "60",
            "--seed",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            timeout=150,
        )
        assert server.poll() is not None, "the defect should have ended the server"
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["target_gone"] and summary["findings"] >= 1
    assert "cannot be reached again" in result.stderr
    findings = [load(path) for path in summary["finding_files"]]
    assert any("connection-closed" in f.signature for f in findings), [f.ident for f in findings]
    # Evidence: what was sent, and how the connection ended.
    for f in findings:
        assert any(" -> " in line for line in f.transcript), f.transcript
        assert any("closed" in line for line in f.transcript if " -- " in line), f.transcript
