"""Every server-side rule of the checklist has a check, or a written reason why not."""

from __future__ import annotations

from conformance.checks import catalogue
from conformance.checks.coverage import SERVER_RULES, UNCHECKED, checks_by_rule


def test_every_server_rule_is_checked_or_explained() -> None:
    catalogue()  # registers every check
    by_rule = checks_by_rule()
    missing = [rule for rule in SERVER_RULES if not by_rule[rule] and rule not in UNCHECKED]
    assert not missing, f"rules with neither a check nor a reason: {missing}"


def test_explained_rules_really_have_no_check() -> None:
    catalogue()
    by_rule = checks_by_rule()
    stale = {rule: by_rule[rule] for rule in UNCHECKED if by_rule.get(rule)}
    assert not stale, f"rules with a check that are still listed as unchecked: {stale}"
    assert set(UNCHECKED) <= set(SERVER_RULES)
