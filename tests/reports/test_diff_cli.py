"""``qmp-conform diff`` as CI runs it: real processes, exit statuses, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCHEMAS = Path(__file__).parent / "schemas"


def qmp_conform(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_breaking_changes_fail_the_gate(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = qmp_conform(
        "diff",
        str(SCHEMAS / "old.json"),
        str(SCHEMAS / "new.json"),
        "--format",
        "json",
        "--out",
        str(out),
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    report = json.loads(out.read_text())
    assert report["counts"]["breaking"] > 0
    assert "breaking" in proc.stderr


def test_allow_file_accepts_known_breaking_changes(tmp_path: Path) -> None:
    first = qmp_conform(
        "diff", str(SCHEMAS / "old.json"), str(SCHEMAS / "new.json"), "--format", "json"
    )
    breaking = [c["path"] for c in json.loads(first.stdout)["changes"] if c["class"] == "breaking"]
    allow = tmp_path / "allow.txt"
    # All but one, partly through a wildcard; the last one keeps the gate shut.
    keep_out = breaking[-1]
    lines = ["# accepted for the 2.0 release", "keep.arguments.*   # reworked on purpose"]
    lines += [p for p in breaking[:-1] if not p.startswith("keep.arguments.")]
    allow.write_text("\n".join(lines) + "\n")
    assert not keep_out.startswith("keep.arguments.")
    proc = qmp_conform(
        "diff", str(SCHEMAS / "old.json"), str(SCHEMAS / "new.json"), "--allow", str(allow)
    )
    assert proc.returncode == 1
    assert "(1 not allowed)" in proc.stderr
    allow.write_text("\n".join([*lines, keep_out]) + "\n")
    proc = qmp_conform(
        "diff", str(SCHEMAS / "old.json"), str(SCHEMAS / "new.json"), "--allow", str(allow)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Compatibility report")


def test_compatible_only_passes(tmp_path: Path) -> None:
    proc = qmp_conform("diff", str(SCHEMAS / "old.json"), str(SCHEMAS / "old.json"))
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["missing-old.json", "x.json"],
        ["NEW_IS_BAD"],
    ],
)
def test_load_errors_are_one_line_exit_2(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ 'command': 'x', 'data': { 'a': 'NoSuchType' } }\n")
    argv = [str(SCHEMAS / "old.json"), str(bad)] if args == ["NEW_IS_BAD"] else args
    proc = qmp_conform("diff", *argv)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("qmp-conform diff: error:")


def test_unreadable_allow_file_is_a_usage_error(tmp_path: Path) -> None:
    proc = qmp_conform(
        "diff",
        str(SCHEMAS / "old.json"),
        str(SCHEMAS / "new.json"),
        "--allow",
        str(tmp_path / "none.txt"),
    )
    assert proc.returncode == 2
    assert "allow file" in proc.stderr


def test_html_and_markdown_reports_show_breaking_first(tmp_path: Path) -> None:
    page = tmp_path / "compat.html"
    proc = qmp_conform(
        "diff",
        str(SCHEMAS / "old.json"),
        str(SCHEMAS / "new.json"),
        "--format",
        "html",
        "--out",
        str(page),
    )
    assert proc.returncode == 1
    html = page.read_text()
    assert '<details id="breaking" open>' in html
    assert '<details id="compatible">' in html  # long and harmless: collapsed
    assert html.index('id="summary"') < html.index('id="breaking"') < html.index('id="compatible"')
    assert "<code>blk-add.arguments.cache.direct</code>" in html
    assert "<script" not in html and "http" not in html
    md = qmp_conform("diff", str(SCHEMAS / "old.json"), str(SCHEMAS / "new.json")).stdout
    row = next(line for line in md.splitlines() if "`alt.arguments.c\\|number`" in line)
    assert "| send |" in row and "`send.remove`" in row
