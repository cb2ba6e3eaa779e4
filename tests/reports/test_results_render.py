"""Check-result renderers: JUnit XML for CI, Markdown, JSON, and HTML seen in a browser."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reports.results import ResultsError, render_html, render_json, render_junit, render_markdown

#: Injected into a copy of the page only: measures what the browser lays out,
#: then writes it into the DOM that --dump-dom prints.
PROBE = """
<script>
const seen = {};
const topOf = el => el.getBoundingClientRect().top;
seen.summaryText = document.getElementById('summary').innerText;
seen.summaryAboveChecks = topOf(document.getElementById("summary"))
    < topOf(document.querySelector('details.check'));
for (const d of document.querySelectorAll('details.check')) {
  const pre = d.querySelector('pre');
  seen[d.id] = {open: d.open,
                transcriptShown: !!pre && pre.checkVisibility() && pre.offsetHeight > 0,
                transcriptText: pre ? pre.innerText : ''};
}
document.body.setAttribute('data-seen', JSON.stringify(seen));
</script>
"""


def test_junit_has_the_structure_ci_tools_read(results_doc: dict[str, Any]) -> None:
    root = ET.fromstring(render_junit(results_doc).encode())
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
    }
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r["id"] for r in results_doc["results"]]
    for case in cases:
        assert case.get("classname", "").startswith("qmp.")
        float(case.get("time", "x"))
    by_name = {c.get("name"): c for c in cases}
    failure = by_name["ids.echo-float"].find("failure")
    assert failure is not None and failure.get("type") == "Q15"
    assert "echoed as <a> &" in (failure.get("message") or "")
    assert "\\x01" in (failure.get("message") or ""), "control bytes are escaped, not dropped"
    assert '-> {"execute": "query-name", "id": 1e400}' in (failure.text or "")
    error = by_name["robustness.nesting"].find("error")
    assert error is not None and "connection closed" in (error.text or "")
    skipped = by_name["oob.overtake"].find("skipped")
    assert skipped is not None and skipped.get("message") == "the target offers no oob capability"
    passed = by_name["greeting.shape"]
    assert passed.find("failure") is None and passed.find("skipped") is None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"target": "unix:/run/qemu/qmp.sock", "dialect": "qemu"}


def test_markdown_lists_every_check_and_details_failures(results_doc: dict[str, Any]) -> None:
    text = render_markdown(results_doc)
    assert text.startswith("# QMP conformance: unix:/run/qemu/qmp.sock (qemu)")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 4
    assert "| `ids.echo-float` | FAIL | Q15 |" in text
    failures = text.split("## Failures, errors and baseline verdicts", 1)[1]
    assert "### ids.echo-float: FAIL" in failures and "### robustness.nesting: ERROR" in failures
    assert "greeting.shape" not in failures
    assert '-> {"execute": "query-name", "id": 1e400}' in failures


def test_json_round_trips_and_bad_documents_are_refused(results_doc: dict[str, Any]) -> None:
    # The summary comes back complete: every verdict, counted from the results.
    completed = {**results_doc, "summary": {**results_doc["summary"], "xfail": 0, "xpass": 0}}
    assert json.loads(render_json(results_doc)) == completed
    bad = {**results_doc, "results": [{**results_doc["results"][0], "status": "passed"}]}
    with pytest.raises(ResultsError, match="status 'passed'"):
        render_junit(bad)
    wrong_summary = {**results_doc, "summary": {"pass": 4, "fail": 0, "skip": 0, "error": 0}}
    with pytest.raises(ResultsError, match="does not match"):
        render_markdown(wrong_summary)


def test_html_is_self_contained(results_doc: dict[str, Any]) -> None:
    page = render_html(results_doc)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "&lt;a&gt; &amp;" in page, "messages are escaped"


def test_html_reads_well_in_a_browser(
    results_doc: dict[str, Any], tmp_path: Path, browser_dom: Callable[[Path], str]
) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(results_doc).replace("</body>", PROBE + "</body>"))
    dom = browser_dom(page)
    match = re.search(r"data-seen=\"([^\"]*)\"", dom)
    assert match, dom[:2000]
    seen = json.loads(html.unescape(match.group(1)))
    assert seen["summaryAboveChecks"] is True
    summary = " ".join(seen["summaryText"].split())
    assert "4 checks" in summary and "1 fail" in summary and "1 pass" in summary
    failed = seen["check-ids.echo-float"]
    assert failed["open"] and failed["transcriptShown"]
    assert '"id": 1e400' in failed["transcriptText"]
    assert (
        seen["check-robustness.nesting"]["open"]
        and seen["check-robustness.nesting"]["transcriptShown"]
    )
    passed = seen["check-greeting.shape"]
    assert not passed["open"] and not passed["transcriptShown"]


def test_report_cli_renders_a_saved_run(results_doc: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(results_doc))
    out = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance.cli",
            "report",
            str(saved),
            "--format",
            "junit",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert ET.parse(out).getroot().find("testsuite") is not None
    saved.write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "report", str(saved)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "can't read results" in proc.stderr
