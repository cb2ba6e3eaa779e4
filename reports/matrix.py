"""A check-by-target matrix over several result documents, with the evidence
of every check whose verdict differs between targets laid side by side."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from reports.results import target_label, validate
from reports.templating import render, transcript_text


@dataclass(frozen=True)
class Cell:
    """One target's verdict on one check: status, message and transcript text."""

    status: str
    message: str
    transcript: str

    def to_dict(self) -> dict[str, str]:
        """The cell as JSON."""
        return {"status": self.status, "message": self.message, "transcript": self.transcript}


#: A check one target ran and another did not.
MISSING = Cell("absent", "the target's run has no such check", "")


@dataclass(frozen=True)
class Row:
    """One check across the targets: its id, its rule and a cell per target."""

    id: str
    rule: str
    cells: tuple[Cell, ...]

    @property
    def differs(self) -> bool:
        """Whether the targets' statuses disagree (a check one lacks counts as ``absent``)."""
        return len({c.status for c in self.cells}) > 1


@dataclass(frozen=True)
class Matrix:
    """Checks by targets: the target labels, a row per check, each target's summary."""

    targets: tuple[str, ...]
    rows: tuple[Row, ...]
    summaries: tuple[dict[str, int], ...]

    @property
    def differing(self) -> list[Row]:
        """The rows whose verdicts differ between targets."""
        return [r for r in self.rows if r.differs]

    def to_dict(self) -> dict[str, Any]:
        """The matrix as JSON: targets with their summaries, then each check by target."""
        return {
            "targets": [
                {"label": t, "summary": s}
                for t, s in zip(self.targets, self.summaries, strict=True)
            ],
            "checks": [
                {
                    "id": r.id,
                    "rule": r.rule,
                    "differs": r.differs,
                    "results": {t: c.to_dict() for t, c in zip(self.targets, r.cells, strict=True)},
                }
                for r in self.rows
            ],
        }


def _unique_labels(docs: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    labels: list[str] = []
    for doc in docs:
        label = target_label(doc)
        base, n = label, 2
        while label in labels:
            label, n = f"{base} #{n}", n + 1
        labels.append(label)
    return tuple(labels)


def build(docs: Sequence[dict[str, Any]]) -> Matrix:
    """The matrix of ``docs`` (one result document per target), rows in first-seen order.

    Raises :class:`ResultsError` when a document does not have the documented shape.
    """
    docs = [validate(d) for d in docs]
    by_target = [{r["id"]: r for r in d["results"]} for d in docs]
    ids: dict[str, str] = {}
    for d in docs:
        for r in d["results"]:
            ids.setdefault(r["id"], str(r.get("rule") or ""))
    rows = []
    for check_id, rule in ids.items():
        cells = []
        for results in by_target:
            r = results.get(check_id)
            cells.append(
                MISSING
                if r is None
                else Cell(
                    r["status"], str(r.get("message") or ""), transcript_text(r.get("transcript"))
                )
            )
        rows.append(Row(check_id, rule, tuple(cells)))
    return Matrix(_unique_labels(docs), tuple(rows), tuple(d["summary"] for d in docs))


def render_markdown(matrix: Matrix) -> str:
    """The matrix as Markdown, with the evidence of the differing checks."""
    return render("matrix.md.j2", m=matrix)


def render_html(matrix: Matrix) -> str:
    """The matrix as one self-contained HTML page."""
    return render("matrix.html.j2", m=matrix)


def render_json(matrix: Matrix) -> str:
    """The matrix as indented JSON (see :meth:`Matrix.to_dict`), newline-terminated."""
    return json.dumps(matrix.to_dict(), indent=2) + "\n"


RENDERERS: dict[str, Callable[[Matrix], str]] = {
    "md": render_markdown,
    "json": render_json,
    "html": render_html,
}
