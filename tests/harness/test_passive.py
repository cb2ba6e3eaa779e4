"""passive.wire judges every line of the run, not only its own workload's."""

from __future__ import annotations

import shlex
import sys

from conformance.runner import Runner
from reference_server.defects import INVENTED_ID


def _passive(target: str) -> tuple[str, str]:
    result = Runner(target, only=["ids.*", "passive.*"], reply_timeout=1.5).run()
    [verdict] = [r for r in result.results if r.id == "passive.wire"]
    return verdict.status, verdict.message


def test_clean_server_passes_on_every_line() -> None:
    status, message = _passive("reference")
    assert status == "pass", message
    assert int(message.split()[0]) > 30  # the lines of every ids check


def test_a_bad_line_in_another_check_is_caught_and_attributed() -> None:
    # qemu-numbers writes `inf` only where ids.spellings sends 1e400: a line
    # no framing check ever sees.
    status, message = _passive("reference:defect=qemu-numbers")
    assert status == "fail"
    assert (
        message.splitlines()[0]
        == "lines breaking wire rules, seen in passing: Q37 in ids.spellings (3)"
    )


def test_a_misshapen_error_in_another_check_is_caught() -> None:
    result = Runner(
        "reference:defect=error-without-desc", only=["ids.*", "passive.*"], reply_timeout=1.5
    ).run()
    [verdict] = [r for r in result.results if r.id == "passive.shapes"]
    assert verdict.status == "fail"
    assert "Q20 in ids.on-error" in verdict.message.splitlines()[0]
    assert "error.desc is not a string" in verdict.message


def _verdicts(target: str, only: list[str]) -> dict[str, tuple[str, str]]:
    result = Runner(target, only=only, reply_timeout=1.5).run()
    return {r.id: (r.status, r.message) for r in result.results}


def _stdio_reference(*defects: str) -> str:
    flags = "".join(f" --defect {d}" for d in defects)
    return f"spawn:{shlex.quote(sys.executable)} -m conformance serve --stdio{flags}"


#: On stdio every connection is a server process of its own: few checks.
ONE_MONITOR_CHECKS = ["greeting.shape", "negotiation.no-events-before", "passive.unasked"]


def test_an_event_before_negotiation_is_caught_on_a_one_monitor_target() -> None:
    # On stdio there is no second monitor to watch while another triggers
    # an event, so the dedicated check skips; the passive one still sees it.
    verdicts = _verdicts(_stdio_reference("event-after-greeting"), ONE_MONITOR_CHECKS)
    assert verdicts["negotiation.no-events-before"][0] == "skip"
    status, message = verdicts["passive.unasked"]
    assert status == "fail"
    assert message.startswith("messages nobody asked for, seen in passing: Q11 in greeting.")
    assert '"event": "RESUME"' in message


def test_one_monitor_target_without_the_defect_passes() -> None:
    verdicts = _verdicts(_stdio_reference(), ONE_MONITOR_CHECKS)
    status, message = verdicts["passive.unasked"]
    assert status == "pass", message
    assert int(message.split()[0]) >= 2


def test_a_reply_with_an_id_never_sent_is_caught_and_attributed() -> None:
    status, message = _verdicts("reference:defect=reply-id-invented", ["ids.*", "passive.*"])[
        "passive.unasked"
    ]
    assert status == "fail"
    assert "Q16 in ids." in message.splitlines()[0]
    assert f'"id": "{INVENTED_ID}"' in message
