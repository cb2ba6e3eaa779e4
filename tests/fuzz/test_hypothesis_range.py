"""Campaigns on the oldest Hypothesis release pyproject.toml admits.

The campaign uses Hypothesis internals (conformance/fuzz/hypothesis_compat.py);
this runs one on exactly :data:`MINIMUM`, installed from the package index
into a private folder that shadows the newer copy, so the stated range is
tested rather than assumed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.fuzz.hypothesis_compat import MINIMUM

pytestmark = pytest.mark.slow

OLDEST = ".".join(map(str, MINIMUM))


def test_pyproject_states_the_same_minimum() -> None:
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"hypothesis>={MINIMUM[0]}.{MINIMUM[1]},<7"' in text


def test_a_campaign_finds_a_defect_on_the_oldest_hypothesis(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(lib),
            f"hypothesis=={OLDEST}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if install.returncode != 0:
        pytest.skip(f"hypothesis {OLDEST} cannot be installed here: {install.stderr[-300:]}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lib), os.getcwd()])}
    version = "import hypothesis; print(hypothesis.__version__)"
    probe = subprocess.run(
        [sys.executable, "-c", version], env=env, capture_output=True, text=True, check=True
    )
    assert probe.stdout.strip() == OLDEST
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "fuzz",
            "--target",
            "reference:defect=id-stringified",
            "--duration",
            "20",
            "--seed",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["findings"] >= 1
    # A stateful campaign (its own parts of Hypothesis: the state machine test).
    stateful = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "fuzz",
            "--target",
            "reference:defect=job-vanishes",
            "--stateful",
            "only",
            "--machine",
            "SnapshotJobMachine",
            "--max-examples",
            "3",
            "--seed",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "stateful"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert stateful.returncode == 1, stateful.stderr[-2000:]
    summary = json.loads(stateful.stdout)
    assert [name.rsplit("/", 1)[1][:12] for name in summary["finding_files"]] == ["J3-vanished-"]
