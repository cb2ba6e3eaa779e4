"""The check catalogue: one module per area, each check with a stable id.

Importing this package registers every check; :func:`catalogue` lists them
in a stable order (area by area, as the modules list them).
"""

from __future__ import annotations

import fnmatch

from conformance.checks import (  # noqa: F401  (importing registers the checks)
    arguments,
    errors,
    events,
    framing,
    grammar,
    greeting,
    ids,
    jobs,
    negotiation,
    oob,
    ordering,
    passive,
    returns,
    robustness,
)
from conformance.checks.base import REGISTRY, Check, Fail, Skip

__all__ = ["Check", "Fail", "Skip", "catalogue"]


#: Areas in the order a run visits them (and the issue lists them).
AREAS = (
    "framing",
    "greeting",
    "negotiation",
    "ids",
    "grammar",
    "ordering",
    "oob",
    "errors",
    "arguments",
    "returns",
    "events",
    "jobs",
    "robustness",
    "passive",
)


def catalogue(only: str | list[str] | None = None) -> list[Check]:
    """The checks, optionally only those whose id matches a glob (or any of several)."""
    patterns = [only] if isinstance(only, str) else (only or [])
    rank = {area: i for i, area in enumerate(AREAS)}
    checks = sorted(REGISTRY.values(), key=lambda c: rank.get(c.id.split(".")[0], len(rank)))
    if not patterns:
        return checks
    return [c for c in checks if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
