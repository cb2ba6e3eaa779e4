"""Power: every seeded defect of the reference server is caught by the check
that enforces the rule it breaks (the pairs are in power_matrix.py)."""

from __future__ import annotations

import pytest
from harness_power_matrix import CATCHES, DIALECT

from conformance.runner import Runner
from reference_server.defects import CATALOGUE


def test_every_defect_has_a_catching_check() -> None:
    assert {d.name for d in CATALOGUE} <= set(CATCHES)


@pytest.mark.parametrize("defect", [d for d in CATALOGUE], ids=lambda d: d.name)
def test_defect_is_caught(defect: object) -> None:
    name, rule = defect.name, defect.rule  # type: ignore[attr-defined]
    check_id = CATCHES[name]
    target = f"reference:defect={name}"
    if name in DIALECT:
        target += f",dialect={DIALECT[name]}"
    # A passive check judges what other checks received: give it traffic.
    only = [check_id, "greeting.*", "ids.*"] if check_id.startswith("passive.") else [check_id]
    result = Runner(target, only=only, reply_timeout=1.5).run()
    [r] = [r for r in result.results if r.id == check_id]
    assert r.status == "fail", f"{check_id} did not catch {name}: {r.status} {r.message}"
    # The check enforces the broken rule (Q15/Q16 and Q2/Q37 are the same rule family).
    families = [{"Q15", "Q16"}, {"Q2", "Q30", "Q37"}, {"Q3", "Q7"}]
    rules = set(r.rule.split(","))
    assert rule in rules or any(rule in f and rules & f for f in families), (rule, r.rule)
    assert r.transcript, "a failure carries its transcript"


def test_clean_reference_server_passes() -> None:
    result = Runner("reference").run()
    bad = [f"{r.id}: {r.message}" for r in result.results if r.status in ("fail", "error")]
    assert not bad, "\n".join(bad)
    assert result.summary["pass"] >= 30


@pytest.mark.parametrize("dialect", ["qga", "qmp-1.0", "oob-draft"])
def test_clean_reference_server_passes_in_each_dialect(dialect: str) -> None:
    result = Runner(f"reference:dialect={dialect}").run()
    assert result.dialect == dialect
    bad = [f"{r.id}: {r.message}" for r in result.results if r.status in ("fail", "error")]
    assert not bad, "\n".join(bad)
