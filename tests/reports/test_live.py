"""diff and compare against live servers: real QEMU 7.2 and the reference server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QEMU = "spawn:qemu-system-x86_64 -machine none -nodefaults -display none -qmp stdio"
CORPUS_72 = (
    Path(__file__).parents[2] / ".." / "shared" / "corpus" / "introspection" / "qemu-7.2.json"
)

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed"
)


def qmp_conform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_qemu
@pytest.mark.qemu
def test_live_qemu_against_itself_has_no_changes() -> None:
    proc = qmp_conform("diff", QEMU, QEMU, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["changes"] == []
    new = report["new"]
    assert new.startswith("QEMU 7.2.22 (Debian ") and new.endswith("qemu-system-x86_64")


@needs_qemu
@pytest.mark.qemu
@pytest.mark.corpus
def test_live_qemu_against_libvirts_capture_of_the_same_release() -> None:
    """Same release, different build: only configure-dependent entries may differ
    (Debian's build lacks some block drivers), never the core commands."""
    if not CORPUS_72.is_file():
        pytest.skip("corpus not available")
    proc = qmp_conform("diff", str(CORPUS_72), QEMU, "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    paths = [c["path"] for c in json.loads(proc.stdout)["changes"]]
    assert len(paths) < 100
    for core in ("qmp_capabilities", "query-version", "query-qmp-schema", "blockdev-add"):
        assert core not in paths


@needs_qemu
@pytest.mark.qemu
def test_compare_reference_server_with_qemu() -> None:
    proc = qmp_conform(
        "compare",
        "--target",
        "reference",
        "--target",
        QEMU,
        "--only",
        "greeting.*",
        "--format",
        "json",
    )
    assert proc.returncode in (0, 1), proc.stderr
    matrix = json.loads(proc.stdout)
    labels = [t["label"] for t in matrix["targets"]]
    # Columns are named by what each server says it is, not by the command line.
    assert labels[0].startswith("QEMU 7.2.22 (qmp-conformance reference server)")
    assert labels[1].startswith("QEMU 7.2.22 (Debian ") and "qemu-system-x86_64" in labels[1]
    assert matrix["checks"] and all(c["id"].startswith("greeting.") for c in matrix["checks"])
    for check in matrix["checks"]:
        statuses = {r["status"] for r in check["results"].values()}
        assert statuses <= {"pass", "fail", "skip", "error"}
        assert check["differs"] == (len(statuses) > 1)


def test_unreachable_target_is_a_usage_error(tmp_path: Path) -> None:
    proc = qmp_conform("diff", f"unix:{tmp_path}/nothing.sock", str(CORPUS_72))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_diff_between_live_releases_equals_the_diff_of_their_introspection(tmp_path: Path) -> None:
    """QEMU 5.2 against 10.0.2, both running: the same changes as the diff of the
    two introspection files written from them."""
    from conformance import releases

    fetched = {r.name: r for r in releases.available()}
    if not {"5.2", "10.0"} <= set(fetched):
        pytest.skip("QEMU 5.2 and 10.0 not fetched (scripts/fetch-releases.sh)")
    old, new = (fetched[n].target("qemu-system-x86_64") for n in ("5.2", "10.0"))
    files = []
    for name, target in (("old", old), ("new", new)):
        path = tmp_path / f"{name}.json"
        proc = qmp_conform("schema", target, "--introspect", str(path))
        assert proc.returncode == 0, proc.stderr
        files.append(str(path))
    live = qmp_conform("diff", old, new, "--format", "json")
    saved = qmp_conform("diff", *files, "--format", "json")
    assert live.returncode == saved.returncode == 1, live.stderr + saved.stderr
    live_changes = json.loads(live.stdout)["changes"]
    assert live_changes == json.loads(saved.stdout)["changes"]
    # Five years of QEMU: breaking changes in both directions, each explained.
    directions = {c["direction"] for c in live_changes if c["class"] == "breaking"}
    assert directions == {"send", "receive"}
