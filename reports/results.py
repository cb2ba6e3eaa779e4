"""Renderers for check results: JUnit XML, JSON, Markdown, self-contained HTML.

They take the harness's JSON result document, not its objects, so a saved
run renders the same as a live one and the renderers do not move when the
harness does::

    {"target", "dialect", "greeting",
     "results": [{"id", "status", "rule", "message", "transcript"}],
     "summary": {"pass", "fail", "skip", "error", "xfail", "xpass"},
     "strict": false}

``status`` is one of :data:`conformance.verdicts.STATUSES` (``xfail`` a failure
the baseline expects, ``xpass`` a stale baseline entry, which fails the gate
when ``strict``); ``transcript`` is a list of lines or one text (``->`` sent,
``<-`` received).  Documents written before ``xfail``/``xpass`` existed have
only the first four counts and still read.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from typing import Any

from conformance.errors import ConformanceError
from conformance.verdicts import STATUSES, gate_ok
from reports.templating import render, transcript_text


class ResultsError(ConformanceError, ValueError):
    """A result document that does not have the documented shape."""


def validate(doc: Any) -> dict[str, Any]:
    """``doc`` itself, once it is known to have the shape the renderers read.

    The summary is recomputed from the results when absent, so a partial
    document still renders; a summary that disagrees with them is an error.
    Raises :class:`ResultsError` when the shape is wrong or the summary disagrees.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ResultsError("a result document is an object with a 'results' list")
    for index, r in enumerate(doc["results"]):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str):
            raise ResultsError(f"result {index}: not an object with a string 'id'")
        if r.get("status") not in STATUSES:
            raise ResultsError(
                f"result {r['id']}: status {r.get('status')!r} is not one of " + ", ".join(STATUSES)
            )
    tally = Counter(r["status"] for r in doc["results"])
    computed = {s: tally.get(s, 0) for s in STATUSES}
    summary = doc.get("summary")
    if summary is not None and not isinstance(summary, dict):
        raise ResultsError(f"summary is not an object: {summary!r}")
    if summary is not None and {s: summary.get(s, 0) for s in STATUSES} != computed:
        raise ResultsError(f"summary {summary} does not match the results {computed}")
    return {**doc, "summary": computed}


def load_results(path: str) -> dict[str, Any]:
    """The result document in the JSON file at ``path``, validated.

    Raises :class:`ResultsError` when the file cannot be read, is not JSON, or does
    not have the documented shape.
    """
    try:
        with open(path, encoding="utf-8") as f:
            return validate(json.load(f))
    except (OSError, ValueError) as exc:
        if isinstance(exc, ResultsError):
            raise ResultsError(f"{path}: {exc}") from None
        raise ResultsError(f"{path}: can't read results: {exc}") from None


def target_label(doc: dict[str, Any]) -> str:
    """What a column or title calls the target: the server as it names itself
    (release, package, program) where the run recorded it, else the target string."""
    server = doc.get("server")
    name = server.get("name") if isinstance(server, dict) else None
    target = str(name or doc.get("target") or "target")
    return f"{target} ({doc['dialect']})" if doc.get("dialect") else target


def _context(doc: dict[str, Any]) -> dict[str, Any]:
    doc = validate(doc)
    order = {status: i for i, status in enumerate(("fail", "error", "xpass", "xfail"))}
    return {
        "doc": doc,
        "label": target_label(doc),
        "summary": doc["summary"],
        "total": len(doc["results"]),
        "results": doc["results"],
        "problems": sorted(
            (r for r in doc["results"] if r["status"] in order),
            key=lambda r: (order[r["status"]], r["id"]),
        ),
        "greeting": json.dumps(doc["greeting"]) if doc.get("greeting") is not None else "",
    }


def render_markdown(doc: dict[str, Any]) -> str:
    """``doc`` as Markdown: the counts, every check, then the problems with evidence.

    Raises :class:`ResultsError` when ``doc`` does not have the documented shape.
    """
    return render("results.md.j2", **_context(doc))


def render_html(doc: dict[str, Any]) -> str:
    """``doc`` as one self-contained HTML page.

    Raises :class:`ResultsError` when ``doc`` does not have the documented shape.
    """
    return render("results.html.j2", **_context(doc))


def render_json(doc: dict[str, Any]) -> str:
    """``doc`` as indented JSON with the summary filled in, newline-terminated.

    Raises :class:`ResultsError` when ``doc`` does not have the documented shape.
    """
    return json.dumps(validate(doc), indent=2) + "\n"


#: Characters XML 1.0 cannot carry at all, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: Any) -> str:
    """Text a CI tool can parse: control bytes (the suite sends them) as ``\\xNN``."""
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def _classname(check_id: str) -> str:
    """CI tools group test cases by class name: use the check's area (id prefix)."""
    area = check_id.split(".", 1)[0] if "." in check_id else "checks"
    return f"qmp.{area}"


def render_junit(doc: dict[str, Any]) -> str:
    """JUnit XML in the shape Jenkins, GitLab and GitHub reporters read.

    One ``testsuite`` per target holding one ``testcase`` per check; a failure
    carries the message as ``message`` and the transcript as its text, an
    error likewise, a skip its reason.  Transcripts of passing checks go to
    ``system-out`` so the evidence is never lost.  Raises :class:`ResultsError`
    when ``doc`` does not have the documented shape.
    """
    doc = validate(doc)
    summary = doc["summary"]
    label = target_label(doc)
    stale = summary.get("xpass", 0) if doc.get("strict") else 0
    counts = {
        "tests": str(len(doc["results"])),
        "failures": str(summary["fail"] + stale),
        "errors": str(summary["error"]),
        "skipped": str(summary["skip"] + summary.get("xfail", 0)),
    }
    suites = ET.Element("testsuites", {"name": "qmp-conformance", **counts})
    suite = ET.SubElement(
        suites, "testsuite", {"name": _xml_text(f"qmp-conformance {label}"), **counts}
    )
    props = ET.SubElement(suite, "properties")
    for key in ("target", "dialect"):
        if doc.get(key) is not None:
            ET.SubElement(props, "property", {"name": key, "value": _xml_text(doc[key])})
    for r in doc["results"]:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _classname(r["id"]),
                "name": _xml_text(r["id"]),
                "time": f"{float(r.get('duration', r.get('time', 0)) or 0):.3f}",
            },
        )
        message = _xml_text(r.get("message") or "")
        rule = _xml_text(r.get("rule") or "")
        transcript = _xml_text(transcript_text(r.get("transcript")))
        failing = r["status"] in ("fail", "error") or (r["status"] == "xpass" and doc.get("strict"))
        if failing:
            tag = "error" if r["status"] == "error" else "failure"
            element = ET.SubElement(case, tag, {"message": message, "type": rule or tag})
            element.text = (
                f"rule: {rule}\n{message}\n\n{transcript}" if rule else f"{message}\n\n{transcript}"
            )
        elif r["status"] in ("skip", "xfail"):
            # JUnit has no expected failure: a skip that names the baseline entry.
            ET.SubElement(case, "skipped", {"message": message})
        elif transcript:
            ET.SubElement(case, "system-out").text = transcript
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _tap_text(text: str) -> str:
    """One line of TAP: a test name or directive must not hold ``#`` or a newline."""
    return text.replace("\\", "\\\\").replace("#", "\\#").replace("\n", " ")


def _yaml_block(key: str, text: str) -> list[str]:
    lines = text.splitlines() or [""]
    return [f"  {key}: |", *(f"    {line}" for line in lines)]


def render_tap(doc: dict[str, Any]) -> str:
    """TAP version 14, as QEMU's meson test harness and prove read it.

    A failure is ``not ok`` with its rule, message and transcript in a YAML
    block; a skip is ``ok # SKIP``; an expected failure (``xfail``) is
    ``not ok # TODO`` (TAP's own expected failure); a stale baseline entry
    (``xpass``) is ``ok # TODO`` (TAP's bonus pass), or ``not ok`` when the
    document is strict.  Raises :class:`ResultsError` when ``doc`` does not have
    the documented shape.
    """
    doc = validate(doc)
    strict = bool(doc.get("strict"))
    out = [
        "TAP version 14",
        f"# qmp-conformance {_tap_text(target_label(doc))}",
        f"1..{len(doc['results'])}",
    ]
    for number, r in enumerate(doc["results"], 1):
        status = r["status"]
        first = _tap_text((str(r.get("message") or "").splitlines() or [""])[0])
        ok = status in ("pass", "skip", "xpass") and not (status == "xpass" and strict)
        line = f"{'ok' if ok else 'not ok'} {number} - {_tap_text(r['id'])}"
        if status == "skip":
            line += f" # SKIP {first}"
        elif status == "xfail" or (status == "xpass" and not strict):
            line += f" # TODO {first}"
        out.append(line)
        if status in ("fail", "error", "xfail") or (status == "xpass" and strict):
            out += [
                "  ---",
                f"  rule: {json.dumps(str(r.get('rule') or ''))}",
                f"  status: {status}",
                *_yaml_block("message", _xml_text(r.get("message") or "")),
                *_yaml_block("transcript", _xml_text(transcript_text(r.get("transcript")))),
                "  ...",
            ]
    summary = doc["summary"]
    out.append(
        "# "
        + ", ".join(f"{summary.get(s, 0)} {s}" for s in STATUSES)
        + ("" if gate_ok(summary, strict) else " (the gate fails)")
    )
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "junit": render_junit,
    "json": render_json,
    "md": render_markdown,
    "html": render_html,
    "tap": render_tap,
}
