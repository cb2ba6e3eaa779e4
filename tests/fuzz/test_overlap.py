"""Overlapped campaigns: examples judged late are still confirmed, recorded and
shrunk, and Ctrl-C ends a campaign even when its KeyboardInterrupt is lost."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conformance.fuzz.campaign import IN_FLIGHT, Campaign, CampaignConfig
from conformance.fuzz.findings import load
from tests.fuzz.conftest import reference_available

pytestmark = pytest.mark.skipif(
    not reference_available(), reason="reference_server.launch is not available"
)


@pytest.mark.slow
def test_a_finding_judged_late_is_shrunk_in_a_run_of_its_own(tmp_path: Path) -> None:
    # Every reply's id comes back as a string: the first example with an
    # integer id shows it, and the smallest such program has one request.
    config = CampaignConfig(
        target="reference:defect=id-stringified", out_dir=str(tmp_path), duration=20.0, seed=5
    )
    campaign = Campaign(config)
    shrink_runs: list[int] = []
    shrink_next = campaign._shrink_next

    def counting(*args: object, **kwargs: object) -> None:
        shrink_runs.append(len(campaign.to_shrink))
        shrink_next(*args, **kwargs)  # type: ignore[arg-type]
        config.deadline = time.monotonic()  # one shrink run is what this test is about

    campaign._shrink_next = counting  # type: ignore[method-assign]
    with campaign:
        assert campaign.lanes == IN_FLIGHT > 1, "the reference server should be fuzzed overlapped"
        campaign.run()
    found = [ident for ident in campaign.stats.findings if ident.startswith("Q15")]
    assert found, sorted(campaign.stats.findings)
    assert shrink_runs, "the late finding was never handed to a shrink run"
    finding = load(campaign.stats.findings[found[0]])
    requests = [s for s in finding.program.steps if s.kind == "command"]
    assert len(requests) == 1, "\n".join(finding.transcript)
    assert finding.ident in campaign.known


def test_a_lost_keyboard_interrupt_still_ends_the_campaign(tmp_path: Path) -> None:
    config = CampaignConfig(target="reference", out_dir=str(tmp_path), duration=60.0, seed=2)
    calls = [0]
    with Campaign(config) as campaign:
        example = campaign._example_overlapped

        def example_then_ctrl_c(program: object) -> None:
            calls[0] += 1
            if calls[0] == 20:
                # What the signal handler does; the exception it raises is the
                # part that can be swallowed, so it is left out here.
                campaign.request_stop()
            example(program)  # type: ignore[arg-type]

        campaign._example_overlapped = example_then_ctrl_c  # type: ignore[method-assign]
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            campaign.run()
    assert time.monotonic() - start < 30
    assert 0 < campaign.stats.examples <= 20
