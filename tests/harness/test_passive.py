"""passive.wire judges every line of the run, not only its own workload's."""

from __future__ import annotations

from conformance.runner import Runner


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
