"""Which server-side rule of the QMP checklist the catalogue checks, and why
the few it does not check have no check.

The Q-numbers are those of the reference notes' checklist, the J-numbers
the job rules of ``conformance.protocol.jobs``; the rules a
client keeps (Q13, Q17, Q21, Q24, Q26, Q35) are for client conformance, not
for this catalogue.
"""

from __future__ import annotations

from conformance.checks.base import REGISTRY
from conformance.protocol.jobs import JOB_RULES

#: Every rule of the checklist a server keeps, and the job rules.
SERVER_RULES: tuple[str, ...] = (
    *(
        f"Q{n}"
        for n in (*range(1, 13), 14, 15, 16, 18, 19, 20, 22, 23, 25, *range(27, 35), *range(36, 40))
    ),
    *JOB_RULES,
)

#: Server-side rules without a check of their own, and why.
UNCHECKED: dict[str, str] = {
    "Q4": "member order is free: the rule binds the checker, which compares objects "
    "regardless of order everywhere (ids as JSON values, replies against wire schemas)",
    "Q36": "informational (x- names and the unstable feature may change freely): it is "
    "how `qmp-conform diff` classifies a change (policy.unstable), not wire behaviour",
}


def checks_by_rule() -> dict[str, list[str]]:
    """Each server-side rule and the ids of the checks that enforce it."""
    found: dict[str, list[str]] = {rule: [] for rule in SERVER_RULES}
    for check in REGISTRY.values():
        for rule in check.rule.split(","):
            if rule in found:
                found[rule].append(check.id)
    return found
