"""Every server program of every fetched QEMU release passes the catalogue,
its failures all explained by the built-in known deviations.

The releases come from ``scripts/fetch-releases.sh`` (run by
``scripts/test.sh``); without them these tests skip.
"""

from __future__ import annotations

import pytest

from conformance import baseline, releases
from conformance.runner import RunResult, run

FETCHED = releases.available()
CASES = [
    pytest.param(r, program, target, id=f"{r.name}-{program}")
    for r in FETCHED
    for program, target in r.targets()
]
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not CASES, reason="no QEMU release fetched (scripts/fetch-releases.sh)"),
]

KNOWN = {e.key: e for e in baseline.builtin().entries}


def _explained(result: RunResult, release: releases.Release, program: str) -> None:
    bad = [f"{r.id}: {r.message}" for r in result.results if r.status in ("fail", "error")]
    assert not bad, "\n".join(bad)
    for r in result.results:
        assert r.status != "skip" or r.message, f"{r.id} skipped without a reason"
        if r.status == "xfail":
            assert r.expected is not None and r.transcript, r.id
            seen = " ".join(KNOWN[r.expected.key].seen_on)
            # The entry was written up from this very release and program.
            assert f"QEMU {release.name}" in seen and program in seen, (r.id, seen)


@pytest.mark.parametrize(("release", "program", "target"), CASES)
def test_release_passes_with_every_failure_explained(
    release: releases.Release, program: str, target: str
) -> None:
    result = run(target)
    _explained(result, release, program)
    assert result.program == program
    assert result.version.startswith(release.name + "."), result.version
    by_id = result.by_id()
    if program == "qemu-ga":
        assert result.dialect == "qga" and by_id["ids.echo"].status in ("pass", "xfail")
        return
    assert result.dialect == "qemu"
    assert release.package in (result.greeting or {})["QMP"]["version"]["package"]
    for check_id in ("greeting.shape", "ids.one-reply", "robustness.nesting-limit"):
        assert by_id[check_id].status == "pass", by_id[check_id].message
    if program == "qemu-system-x86_64":
        # The OOB recipe really ran against every release: passes, not skips.
        for check_id in ("oob.overtake", "oob.queue-limit", "events.timestamp"):
            assert by_id[check_id].status == "pass", by_id[check_id].message


def test_a_server_that_dies_is_reported_once_and_restarted() -> None:
    """qemu-storage-daemon 5.2 aborts on query-events (KD-3): that check says
    how it died, and the checks after it run on a fresh server instead of
    failing with "connection refused"."""
    release = next((r for r in FETCHED if r.name == "5.2"), None)
    if release is None:
        pytest.skip("QEMU 5.2 not fetched")
    result = run(
        release.target("qemu-storage-daemon"),
        only=["returns.query", "robustness.malformed", "errors.shape"],
    )
    died = result.by_id()["returns.query"]
    assert died.status == "xfail" and died.expected is not None and died.expected.key == "KD-3"
    assert "died in this check" in died.message and "exit status -6" in died.message
    assert "qapi_enum_lookup" in "\n".join(died.transcript)
    for later in ("robustness.malformed", "errors.shape"):
        assert result.by_id()[later].status == "pass", result.by_id()[later].message
