"""Compatibility reports in Markdown, JSON and self-contained HTML."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reports.diff import Change, DiffReport
from reports.rules import CATEGORIES, RULES
from reports.templating import render

#: One line per category, shown above its table.
CATEGORY_NOTES: dict[str, str] = {
    "breaking": "A client written for the old schema can fail against the new one.",
    "deprecated-removal": "Removed after being marked deprecated (the deprecation policy "
    "allows it; clients had notice).",
    "unstable": "Changes to x-/unstable things, which may change freely.",
    "introspection-only": "The wire is unchanged for existing clients; only "
    "query-qmp-schema shows the difference.",
    "compatible": "Backward compatible additions and relaxations.",
}


def _context(report: DiffReport) -> dict[str, Any]:
    groups: list[tuple[str, str, list[Change]]] = [
        (cat, CATEGORY_NOTES[cat], report.of(cat)) for cat in CATEGORIES
    ]
    return {"report": report, "counts": report.counts(), "groups": groups, "rules": RULES}


def render_markdown(report: DiffReport) -> str:
    """The report as Markdown: counts, then one table of changes per category."""
    return render("diff.md.j2", **_context(report))


def render_html(report: DiffReport) -> str:
    """The report as one self-contained HTML page, laid out as the Markdown one."""
    return render("diff.html.j2", **_context(report))


def render_json(report: DiffReport) -> str:
    """The report as indented JSON (see :meth:`DiffReport.to_dict`), newline-terminated."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


RENDERERS: dict[str, Callable[[DiffReport], str]] = {
    "md": render_markdown,
    "json": render_json,
    "html": render_html,
}
