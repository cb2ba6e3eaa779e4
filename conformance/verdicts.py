"""The verdicts a check can end with, shared by the harness and the renderers.

``xfail`` and ``xpass`` come from a baseline (:mod:`conformance.baseline`): a
failure the baseline expects, and a check that passes although the baseline
still expects it to fail (a stale entry).
"""

from __future__ import annotations

#: Every verdict, in the order summaries list them.
STATUSES = ("pass", "fail", "skip", "error", "xfail", "xpass")

#: What each verdict means, for help texts and reports.
MEANING = {
    "pass": "the server kept the rule",
    "fail": "the server broke the rule (evidence attached)",
    "skip": "the check does not apply, or could not run (reason attached)",
    "error": "the harness itself broke while running the check",
    "xfail": "a failure the baseline expects (its reason attached)",
    "xpass": "a pass where the baseline expects a failure: the entry is stale",
}


def gate_ok(summary: dict[str, int], strict: bool = False) -> bool:
    """Whether a run with ``summary`` passes a CI gate: nothing failed or broke,
    and in strict mode no baseline entry went stale."""
    bad = summary.get("fail", 0) + summary.get("error", 0)
    if strict:
        bad += summary.get("xpass", 0)
    return bad == 0
