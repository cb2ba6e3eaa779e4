"""The check-by-target matrix of ``qmp-conform compare``."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reports.matrix import build, render_html, render_json, render_markdown


def second_target(doc: dict[str, Any]) -> dict[str, Any]:
    """The same catalogue on a server that passes the id check and lacks one check."""
    results = [dict(r) for r in doc["results"] if r["id"] != "robustness.nesting"]
    results[1].update(
        status="pass",
        message="id echoed as sent",
        transcript=['-> {"execute": "query-name", "id": 1e400}', '<- {"return": {}, "id": 1e400}'],
    )
    return {"target": "reference", "dialect": "qemu", "results": results}


def test_matrix_marks_differences_and_keeps_evidence(results_doc: dict[str, Any]) -> None:
    m = build([results_doc, second_target(results_doc)])
    assert m.targets == ("unix:/run/qemu/qmp.sock (qemu)", "reference (qemu)")
    statuses = {r.id: [c.status for c in r.cells] for r in m.rows}
    assert statuses == {
        "greeting.shape": ["pass", "pass"],
        "ids.echo-float": ["fail", "pass"],
        "oob.overtake": ["skip", "skip"],
        "robustness.nesting": ["error", "absent"],
    }
    assert [r.id for r in m.differing] == ["ids.echo-float", "robustness.nesting"]
    as_json = json.loads(render_json(m))
    evidence = next(c for c in as_json["checks"] if c["id"] == "ids.echo-float")["results"]
    assert '"id": "<a>"' in evidence["unix:/run/qemu/qmp.sock (qemu)"]["transcript"]
    assert '"id": 1e400}' in evidence["reference (qemu)"]["transcript"]


def test_markdown_matrix(results_doc: dict[str, Any]) -> None:
    text = render_markdown(build([results_doc, second_target(results_doc)]))
    assert "| `ids.echo-float` **≠** | Q15 | FAIL | PASS |" in text
    assert "| `greeting.shape` | Q7 | PASS | PASS |" in text
    evidence = text.split("## Differing evidence", 1)[1]
    assert "#### reference (qemu): PASS" in evidence and "greeting.shape" not in evidence


def test_same_target_twice_gets_distinct_columns(results_doc: dict[str, Any]) -> None:
    m = build([results_doc, results_doc])
    assert m.targets[0] != m.targets[1] and not m.differing


def test_html_matrix_side_by_side_in_a_browser(
    results_doc: dict[str, Any], tmp_path: Path, browser_dom: Callable[[Path], str]
) -> None:
    page = tmp_path / "matrix.html"
    probe = """<script>
    const boxes = [...document.querySelectorAll('#diff-ids\\\\.echo-float .side-by-side > div')];
    const r = boxes.map(b => b.getBoundingClientRect());
    document.body.setAttribute('data-seen', JSON.stringify({
      columns: boxes.length, sameRow: r.length == 2 && Math.abs(r[0].top - r[1].top) < 2,
      leftOfEachOther: r.length == 2 && r[0].right <= r[1].left,
      highlighted: document.querySelectorAll('#matrix tr.differs').length}));
    </script>"""
    page.write_text(
        render_html(build([results_doc, second_target(results_doc)])).replace(
            "</body>", probe + "</body>"
        )
    )
    dom = browser_dom(page)
    match = re.search(r"data-seen=\"([^\"]*)\"", dom)
    assert match, dom[-2000:]
    seen = json.loads(html.unescape(match.group(1)))
    assert seen == {"columns": 2, "sameRow": True, "leftOfEachOther": True, "highlighted": 2}


def test_compare_cli_on_saved_runs(results_doc: dict[str, Any], tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(results_doc))
    b.write_text(json.dumps(second_target(results_doc)))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "compare",
            "--results",
            str(a),
            "--results",
            str(b),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # verdicts differ
    assert len(json.loads(proc.stdout)["checks"]) == 4
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "compare", "--results", str(a)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
