"""Acceptance: campaigns against correct servers report nothing false.

Against the reference server without defects, and against real QEMU 7.2, a
short campaign (kept to ~25 s each for CI) must report only the genuine
deviations documented in docs/fuzzing.md, each recognised by its evidence,
not by its name.  The several-minutes run is a documented command
(docs/fuzzing.md, "False-alarm runs").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.fuzz.campaign import Campaign, CampaignConfig
from conformance.fuzz.findings import load

DURATION = 25.0

#: QEMU 7.2's genuine deviation: an abort on the in-band queue length assertion.
QEMU_ASSERTION = "Assertion `mon->qmp_requests->length < QMP_REQ_QUEUE_LEN_MAX' failed"
#: Every genuine QEMU 7.2 deviation a campaign may find: (rule, evidence).
QEMU_DEVIATIONS = [
    ("Q32", QEMU_ASSERTION),
    ("Q16", QEMU_ASSERTION),
    ("Q37", "unexpected word 'inf'"),
    ("Q37", "unexpected word '-inf'"),
    # An id or an argument 0E0 or 0e5 (a leading zero, then an exponent)
    # draws parse errors and no reply: seen as the reply without its id, or
    # as no reply.
    *((rule, f":{zero}") for rule in ("Q15", "Q16") for zero in ("0e", "0E", "-0e", "-0E")),
]


def _campaign(target: str, out: Path) -> Campaign:
    with Campaign(
        CampaignConfig(target=target, out_dir=str(out), duration=DURATION, seed=1)
    ) as campaign:
        campaign.run()
    return campaign


def _unexplained(out: Path, allowed: list[tuple[str, str]]) -> list[str]:
    bad = []
    for path in sorted((out / "findings").glob("*.qmp")):
        finding = load(path)
        text = path.read_text()
        if not any(finding.rule == rule and evidence in text for rule, evidence in allowed):
            bad.append(f"{path.name}: {finding.header.get('summary', '')}")
    return bad


@pytest.mark.slow
def test_reference_server_without_defects(reference: str, tmp_path: Path) -> None:
    campaign = _campaign(reference, tmp_path)
    stats = campaign.stats
    assert stats.examples > 50 and len(stats.commands) > 10, "the campaign hardly ran"
    assert _unexplained(tmp_path, []) == []
    print(
        f"reference: {stats.examples} examples, {stats.messages} messages, "
        f"{len(stats.findings)} finding(s), {len(stats.commands)} commands"
    )


@pytest.mark.slow
@pytest.mark.qemu
def test_qemu_72(qemu: str, tmp_path: Path) -> None:
    campaign = _campaign(qemu, tmp_path)
    stats = campaign.stats
    assert stats.examples > 50 and len(stats.commands) > 20, "the campaign hardly ran"
    # Only QEMU's documented deviations: the abort (a crash, and the campaign
    # went on after it), and KD-4's numbers (0E0 refused, inf written back).
    assert _unexplained(tmp_path, QEMU_DEVIATIONS) == []
    print(
        f"qemu: {stats.examples} examples, {stats.messages} messages, "
        f"{len(stats.findings)} finding(s) (documented), restarts {stats.restarts}"
    )


DOCUMENTED = Path(__file__).resolve().parents[2] / "docs/fuzz-findings/qemu-7.2-oob-queue-abort.qmp"


@pytest.mark.qemu
def test_documented_qemu_deviation_replays_from_its_file(qemu: str, reference: str) -> None:
    """The genuine QEMU 7.2 abort in docs/ replays from its stored bytes on QEMU,
    and the reference server survives the same bytes."""
    from conformance.fuzz.replay import replay_file

    assert replay_file(DOCUMENTED, qemu).reproduced
    assert not replay_file(DOCUMENTED, reference).reproduced


def _documented_replays() -> list[tuple[str, set[str]]]:
    """The table of docs/findings.md: each finding file and the releases it
    reproduces on."""
    text = (DOCUMENTED.parents[1] / "findings.md").read_text(encoding="utf-8")
    table = text.split("## Files in `docs/fuzz-findings/`", 1)[1]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith(".qmp` (older)"):
            cells[0] = cells[0].removesuffix(" (older)")
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith(".qmp`"):
            rows.append((cells[0].strip("`"), {r.strip() for r in cells[2].split(",")}))
    return rows


@pytest.mark.qemu
@pytest.mark.parametrize(("name", "releases"), _documented_replays())
def test_documented_findings_reproduce_on_the_releases_the_docs_name(
    name: str, releases: set[str]
) -> None:
    """What docs/findings.md says of each stored finding, checked on every
    fetched release: it reproduces where listed, and only there."""
    from conformance import releases as fetched
    from conformance.fuzz.replay import replay_file

    available = fetched.available()
    if not available:
        pytest.skip("no QEMU release fetched (scripts/fetch-releases.sh)")
    path = DOCUMENTED.parent / name
    for release in available:
        result = replay_file(path, release.target("qemu-system-x86_64"), attempts=3)
        assert result.reproduced == (release.name in releases), (name, release.name)
