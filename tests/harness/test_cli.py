"""``qmp-conform check``: exit status, JSON and JUnit results, and the pytest plugin."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.checks import REGISTRY
from conformance.cli import main

#: The checks ``--only ids.*`` selects.
ID_CHECKS = sum(1 for name in REGISTRY if name.startswith("ids."))

RESULT_KEYS = {"id", "status", "rule", "message", "transcript", "duration"}


def test_clean_target_exits_0_with_the_json_format(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    out = os.path.join(str(tmp_path), "r.json")
    junit = os.path.join(str(tmp_path), "r.xml")
    status = main(
        ["check", "--target", "reference", "--only", "ids.*", "--json", out, "--junit", junit]
    )
    assert status == 0
    with open(out, encoding="utf-8") as f:
        data = json.load(f)
    assert set(data) == {"target", "dialect", "greeting", "server", "strict", "results", "summary"}
    assert set(data["summary"]) == {"pass", "fail", "skip", "error", "xfail", "xpass"}
    assert data["server"]["version"] == "7.2.22"
    assert data["server"]["program"] == "qmp-conform-reference"
    assert data["summary"]["pass"] == len(data["results"]) == ID_CHECKS
    assert all(set(r) == RESULT_KEYS for r in data["results"])
    assert data["greeting"]["QMP"]["capabilities"] == ["oob"]
    suites = ET.parse(junit).getroot()
    suite = suites.find("testsuite")
    assert suites.tag == "testsuites" and suite is not None
    assert suite.get("tests") == str(ID_CHECKS) and suite.get("failures") == "0"
    assert "PASS  ids.echo" in capsys.readouterr().out


def test_failure_exits_1_with_evidence(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    out = os.path.join(str(tmp_path), "r.json")
    status = main(
        [
            "check",
            "--target",
            "reference:defect=lf-only-line-ending",
            "--only",
            "framing.crlf",
            "--json",
            out,
            "--timeout",
            "2",
        ]
    )
    assert status == 1
    text = capsys.readouterr().out
    # The block a newcomer reads: the rule, what was expected, what was seen, the bytes.
    assert "FAIL: framing.crlf" in text and "rule: Q2" in text
    assert "expected: a line ending in \\r\\n" in text and "seen: " in text
    assert '<- {"QMP"' in text and '-> {"execute"' in text
    with open(out, encoding="utf-8") as f:
        [result] = json.load(f)["results"]
    assert result["status"] == "fail" and result["rule"] == "Q2" and result["transcript"]


def test_usage_and_connection_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--target", "nonsense"]) == 2
    assert main(["check", "--target", "unix:/nonexistent/qmp.sock"]) == 2
    assert main(["check", "--target", "reference", "--only", "no-such-check"]) == 2
    assert main(["check", "--target", "reference:defect=not-a-defect"]) == 2
    assert main(["check", "--target", "spawn:qemu-system-x86_64 -name 'unclosed"]) == 2
    assert "No closing quotation" in capsys.readouterr().err


def test_list_names_every_check_with_its_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--target", "reference", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 30
    # Every check cites a rule of the QMP checklist (Q) or a job rule (J).
    assert all(re.search(r" [QJ]\d", line) for line in lines), lines


def _pytest(*args: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pytest_plugin_runs_checks_as_items(tmp_path: object) -> None:
    cwd = str(tmp_path)
    ok = _pytest("--qmp-target=reference", "--qmp-only=ids.*", cwd=cwd)
    assert ok.returncode == 0 and f"{ID_CHECKS} passed" in ok.stdout, ok.stdout + ok.stderr
    bad = _pytest(
        "--qmp-target=reference:defect=lf-only-line-ending", "--qmp-only=framing.crlf", cwd=cwd
    )
    assert bad.returncode == 1 and "rule Q2" in bad.stdout, bad.stdout
    inert = _pytest(cwd=cwd)  # no option: no items
    assert "no tests ran" in inert.stdout


def test_pytest_plugin_reads_baselines(tmp_path: Path) -> None:
    """An expected failure is an xfail item; the same entry on a correct server
    passes, and fails with --qmp-strict-baseline."""
    cwd = str(tmp_path)
    base = tmp_path / "b.json"
    target, only = "reference:defect=lf-only-line-ending", "framing.crlf"
    assert main(["check", "--target", target, "--only", only, "--write-baseline", str(base)]) == 1
    expected = _pytest(
        f"--qmp-target={target}", f"--qmp-only={only}", f"--qmp-baseline={base}", cwd=cwd
    )
    assert expected.returncode == 0 and "1 xfailed" in expected.stdout, expected.stdout
    stale = _pytest(
        "--qmp-target=reference", f"--qmp-only={only}", f"--qmp-baseline={base}", cwd=cwd
    )
    assert stale.returncode == 0 and "1 passed" in stale.stdout, stale.stdout
    strict = _pytest(
        "--qmp-target=reference",
        f"--qmp-only={only}",
        f"--qmp-baseline={base}",
        "--qmp-strict-baseline",
        cwd=cwd,
    )
    assert strict.returncode == 1 and "STALE BASELINE ENTRY" in strict.stdout, strict.stdout
