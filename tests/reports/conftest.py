"""Fixtures for the reports tests: schema pairs, the corpus, masking, a browser."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conformance.qapi import Schema, load
from conformance.qapi.introspect import introspect

HERE = Path(__file__).parent
SCHEMAS = HERE / "schemas"
CORPUS = HERE.parents[1] / ".." / "shared" / "corpus"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def schema_pair() -> tuple[Schema, Schema]:
    return load(SCHEMAS / "old.json"), load(SCHEMAS / "new.json")


@pytest.fixture
def corpus_introspection() -> Callable[[str], Path]:
    def path(version: str) -> Path:
        p = CORPUS / "introspection" / f"qemu-{version}.json"
        if not p.is_file():
            pytest.skip(f"corpus not available ({p})")
        return p

    return path


def _shuffled_mask(entries: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Renumber masked type names with a random permutation, as another build would."""
    names = [e["name"] for e in entries if e["name"].isdigit()]
    shuffled = names[:]
    random.Random(seed).shuffle(shuffled)
    mapping = dict(zip(names, shuffled, strict=True))

    def rename(value: Any) -> Any:
        if isinstance(value, str):
            if value in mapping:
                return mapping[value]
            if value.startswith("[") and value.endswith("]"):
                return f"[{rename(value[1:-1])}]"
        return value

    out = []
    for entry in json.loads(json.dumps(entries)):
        for key in ("name", "arg-type", "ret-type", "element-type"):
            if key in entry:
                entry[key] = rename(entry[key])
        for m in entry.get("members", []):
            if "type" in m:
                m["type"] = rename(m["type"])
        for v in entry.get("variants", []):
            v["type"] = rename(v["type"])
        out.append(entry)
    random.Random(seed).shuffle(out)  # no ordering guarantee either (§3.3)
    return out


@pytest.fixture
def masked() -> Callable[[Schema, int], Schema]:
    """``masked(schema, seed)``: the schema as a QEMU build would introspect it."""

    def make(schema: Schema, seed: int) -> Schema:
        return load(_shuffled_mask(introspect(schema, mask=True), seed))

    return make


@pytest.fixture
def browser_dom(tmp_path: Path) -> Callable[[Path], str]:
    """``browser_dom(html_file)``: the DOM headless Chromium shows after loading it."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed")

    def dump(page: Path) -> str:
        with tempfile.TemporaryDirectory(dir=tmp_path) as profile:
            proc = subprocess.run(
                [
                    binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "--dump-dom",
                    page.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=90,
                check=False,
            )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    return dump


@pytest.fixture
def results_doc() -> dict[str, Any]:
    """A result document in the harness's format, one check of each status."""
    return {
        "target": "unix:/run/qemu/qmp.sock",
        "dialect": "qemu",
        "greeting": {
            "QMP": {
                "version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""},
                "capabilities": ["oob"],
            }
        },
        "results": [
            {
                "id": "greeting.shape",
                "status": "pass",
                "rule": "Q7",
                "message": "greeting has QMP.version and QMP.capabilities",
                "transcript": ['12:00:00.000 <- {"QMP": {"version": {}, "capabilities": ["oob"]}}'],
            },
            {
                "id": "ids.echo-float",
                "status": "fail",
                "rule": "Q15",
                "message": "id 1e400 was echoed as <a> & \x01 garbage",
                "transcript": [
                    '12:00:00.001 -> {"execute": "query-name", "id": 1e400}',
                    '12:00:00.002 <- {"return": {}, "id": "<a>"}',
                ],
            },
            {
                "id": "oob.overtake",
                "status": "skip",
                "rule": "Q23",
                "message": "the target offers no oob capability",
                "transcript": [],
            },
            {
                "id": "robustness.nesting",
                "status": "error",
                "rule": "Q32",
                "message": "connection closed by the server",
                "transcript": "12:00:01.000 -> [[[[[[\n12:00:01.500 (connection closed)",
            },
        ],
        "summary": {"pass": 1, "fail": 1, "skip": 1, "error": 1},
    }
