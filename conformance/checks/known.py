"""Known deviations: real servers breaking a rule on purpose or by a known bug.

A failure that matches an entry here (same check, same server version, the
same symptom in its evidence) is reported as a skip that names the deviation
and keeps the full evidence, so a CI gate stays green on the known problem
but nobody mistakes it for a pass.  Each entry is written up, with its
transcript, in ``docs/known-deviations.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KnownDeviation:
    key: str
    check: str
    #: Regex on the greeting's ``major.minor.micro``.
    version: str
    #: Regex searched in the failure message and transcript.
    symptom: str
    reason: str


KNOWN: tuple[KnownDeviation, ...] = (
    KnownDeviation(
        "KD-1", "robustness.error-flood", r"^7\.2\.",
        r"QMP_REQ_QUEUE_LEN_MAX|connection closed|process output ended",
        "QEMU 7.2 can abort on a burst of input errors with oob enabled: one input byte "
        "may queue two error responses, overrunning the 8-entry in-band queue "
        "(assertion in monitor/qmp.c handle_qmp_command). Intermittent: it depends on "
        "thread timing."),
)


def server_version(greeting: dict[str, Any] | None) -> str:
    try:
        v = greeting["QMP"]["version"]["qemu"]  # type: ignore[index]
        return f"{v['major']}.{v['minor']}.{v['micro']}"
    except (KeyError, TypeError):
        return ""


def match(check_id: str, greeting: dict[str, Any] | None, evidence: str) -> KnownDeviation | None:
    version = server_version(greeting)
    for known in KNOWN:
        if (known.check == check_id and version and re.search(known.version, version)
                and re.search(known.symptom, evidence)):
            return known
    return None
