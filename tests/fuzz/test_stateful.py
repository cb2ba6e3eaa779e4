"""Stateful campaigns (``qmp-conform fuzz --stateful``): a short campaign
against the reference server with one seeded job defect finds it, names the
job rule it breaks, and the stored run replays (it reproduces on the
defective server, not on the correct one); a campaign against the correct
server finds nothing.  All over real sockets and server processes.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from conformance.confine import confine
from conformance.fuzz.campaign import Campaign, CampaignConfig, CampaignOver
from conformance.fuzz.findings import load
from conformance.fuzz.program import MachineRun
from conformance.fuzz.replay import Replayer
from conformance.fuzz.stateful import BY_NAME, Driver
from conformance.qapi import load as load_schema
from conformance.transport import parse_target
from tests.fuzz.conftest import QEMU_SPAWN, assert_replays, cli, reference_available

#: Seeded job defect -> the rule a stateful campaign's finding names.
STATEFUL_DEFECTS: dict[str, str] = {
    "job-illegal-transition": "J1",
    "job-completed-with-error": "J2",
    "job-vanishes": "J3",
    "snapshot-never-concludes": "J8",
    "job-listing-disagrees": "J3",
}
#: Seconds a campaign gets to find its defect (each takes 2 to 8 s).
BUDGET = 20.0

pytestmark = pytest.mark.skipif(
    not reference_available(), reason="reference_server.launch is not available"
)


def test_every_job_defect_is_covered() -> None:
    from reference_server.defects import CATALOGUE

    jobs = {d.name: d.rule for d in CATALOGUE if d.rule.startswith("J")}
    assert jobs == STATEFUL_DEFECTS


@pytest.mark.slow
@pytest.mark.parametrize("defect", sorted(set(STATEFUL_DEFECTS) - {"job-vanishes"}))
def test_stateful_campaign_finds_defect_and_it_replays(
    defect: str, tmp_path: Path, correct_server: Replayer
) -> None:
    target = f"reference:defect={defect}"
    rule = STATEFUL_DEFECTS[defect]
    hits: list[str] = []

    def stop_at_rule(ident: str, path: str) -> None:
        if ident.startswith(f"{rule}-"):
            hits.append(path)
            raise CampaignOver

    config = CampaignConfig(
        target=target,
        out_dir=str(tmp_path),
        duration=BUDGET,
        seed=0,
        stateful="only",
        on_finding=stop_at_rule,
    )
    start = time.monotonic()
    with Campaign(config) as campaign:
        campaign.run()
    assert hits, f"{defect}: nothing for {rule} within {BUDGET:g} s: {campaign.stats.findings}"
    finding = load(hits[0])
    print(
        f"{defect}: {finding.ident} by {finding.header['machine']} after "
        f"{time.monotonic() - start:.1f} s, {campaign.stats.stateful_examples} runs"
    )
    assert isinstance(finding.program, MachineRun) and finding.program.machine in BY_NAME
    assert finding.header["oracle"] == "stateful" and finding.program.steps
    assert any(" -> " in line for line in finding.transcript)
    assert any(" <- " in line for line in finding.transcript)
    assert any(f" -- {rule} " in line for line in finding.transcript), "the failure is not noted"
    assert_replays(finding, target, correct_server)


@pytest.mark.slow
def test_cli_finds_replays_and_summarises(tmp_path: Path) -> None:
    """``fuzz --stateful only`` exits 1 with the finding on disk and counted in
    summary.json; ``replay`` exits 1 on the defect and 0 on the correct server."""
    target = "reference:defect=job-vanishes"
    out = tmp_path / "out"
    fuzz = cli(
        "fuzz",
        "--target",
        target,
        "--stateful",
        "only",
        "--machine",
        "SnapshotJobMachine",
        "--max-examples",
        "3",
        "--seed",
        "0",
        "--out",
        str(out),
        "--quiet",
    )
    assert fuzz.returncode == 1, fuzz.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stateful"] == "only" and summary["examples"] == 0
    assert summary["stateful_examples"] >= 1
    assert summary["stateful_machines"].keys() == {"SnapshotJobMachine"}
    [path] = summary["finding_files"]
    assert Path(path).name.startswith("J3-vanished-")
    assert "machine: SnapshotJobMachine" in Path(path).read_text()
    assert cli("replay", path, "--target", target, "--quiet").returncode == 1
    healthy = cli("replay", path, "--target", "reference", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout)["reproduced"] is False


@pytest.mark.slow
def test_mixed_campaign_against_the_correct_server_finds_nothing(tmp_path: Path) -> None:
    """Protocol programs and every machine take turns (20 s: two seconds or so
    each, with room for a slow machine); a correct server gives no finding."""
    out = tmp_path / "out"
    run = cli(
        "fuzz",
        "--target",
        "reference",
        "--stateful",
        "mix",
        "--duration",
        "20",
        "--seed",
        "1",
        "--out",
        str(out),
        "--quiet",
    )
    summary = json.loads((out / "summary.json").read_text())
    assert run.returncode == 0, summary["finding_files"]
    assert summary["findings"] == 0 and summary["examples"] > 50
    assert summary["stateful_machines"].keys() == set(BY_NAME), summary["stateful_machines"]
    assert summary["stateful_examples"] == sum(summary["stateful_machines"].values())
    assert not summary["stateful_skipped"]


def test_machines_a_target_cannot_run_are_named_with_the_reason() -> None:
    """The snapshot machine needs snapshot-save (QEMU 6.0) and an image the
    target can open (not on another host, not confined); the negotiation
    machine needs the oob capability."""
    from reference_server import DEFAULT_SCHEMA

    schema = load_schema(DEFAULT_SCHEMA)
    remote = Driver(lambda: parse_target("tcp:192.0.2.1:4444"))
    runnable, skipped = remote.plan(schema, ["oob"])
    assert "SnapshotJobMachine" not in {m.__name__ for m in runnable}
    assert "not on this host" in skipped["SnapshotJobMachine"]
    if shutil.which("bwrap") and shutil.which("prlimit"):
        boxed = Driver(lambda: parse_target(confine(QEMU_SPAWN)))
        assert "confined" in boxed.plan(schema, ["oob"])[1]["SnapshotJobMachine"]
    del schema.commands["snapshot-save"]
    local = Driver(lambda: parse_target("reference"))
    runnable, skipped = local.plan(schema, [])
    assert {m.__name__ for m in runnable} == {"BlockJobMachine", "JobFrameworkMachine"}
    assert "snapshot-save" in skipped["SnapshotJobMachine"]
    assert "6.0" in skipped["SnapshotJobMachine"]
    assert "oob" in skipped["NegotiationMachine"]
