"""check-client against real clients over real sockets: the two QMP clients on
PyPI, and two written here to break what each verdict is about."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.client import liberties
from conformance.client.campaign import campaign, load, replay
from conformance.client.runner import check_client, client_command
from conformance.runner import RunResult
from tests.server.server_wire import WireClient, wait_for_path

CLIENTS = Path(__file__).with_name("clients")


def _run(script: str) -> RunResult:
    return check_client(
        client_command(f"{sys.executable} {CLIENTS / script} {{socket}}"), timeout=30
    )


def _verdicts(result: RunResult) -> dict[str, str]:
    return {r.id: r.status for r in result.results}


def _failed(result: RunResult) -> set[str]:
    return {r.id for r in result.results if r.status == "fail"}


def test_every_liberty_and_rule_is_judged() -> None:
    pytest.importorskip("qemu.qmp")
    result = _run("qemu_qmp_session.py")
    ids = set(_verdicts(result))
    assert {f"client.liberty.{lib.name}" for lib in liberties.CATALOGUE} <= ids
    assert {"client.plain", *(f"client.rule.{r}" for r in ("C1", "C2", "Q13", "Q24", "Q26"))} <= ids
    # qemu.qmp survives every liberty and keeps every rule.
    assert not _failed(result), [r.message for r in result.results if r.status == "fail"]


def test_the_older_qmp_client_is_caught_where_it_is_fragile() -> None:
    pytest.importorskip("qmp")
    result = _run("legacy_qmp_session.py")
    # docs/client-conformance.md: it takes the next reply whatever its id
    # (Q17), raises a bare Exception for an error reply, and a JSONDecodeError
    # for a message cut by a disconnect.
    assert _failed(result) == {
        "client.liberty.stray-replies",
        "client.liberty.error-replies",
        "client.liberty.disconnect",
    }
    stray = next(r for r in result.results if r.id == "client.liberty.stray-replies")
    assert any("qmp-conformance-future" in line for line in stray.transcript)


def test_a_rude_client_breaks_each_rule_on_the_wire() -> None:
    result = _run("rude_client.py")
    failed = _failed(result)
    for rule in ("C1", "C2", "Q13", "Q24", "Q26"):
        assert f"client.rule.{rule}" in failed
    q13 = next(r for r in result.results if r.id == "client.rule.Q13")
    assert "nope" in q13.message and q13.transcript


def test_a_naive_client_fails_the_liberties_it_leans_against() -> None:
    result = _run("naive_client.py")
    failed = _failed(result)
    # It takes the next line for its reply and reads desc.
    assert {
        "client.liberty.interleaved-events",
        "client.liberty.stray-replies",
        "client.liberty.desc-reworded",
    } <= failed
    assert "client.liberty.slow-writes" not in failed
    assert "client.liberty.unknown-members" not in failed


def test_cli(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "conformance", "check-client"]
    listed = subprocess.run([*cli, "--list"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0
    assert all(lib.name in listed.stdout for lib in liberties.CATALOGUE)
    no_socket = subprocess.run(
        [*cli, "--client", "python client.py"], capture_output=True, text=True, check=False
    )
    assert no_socket.returncode == 2 and "{socket}" in no_socket.stderr
    unknown = subprocess.run(
        [*cli, "--client", "x {socket}", "--liberty", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unknown.returncode == 2 and "nope" in unknown.stderr
    # A Python function as the client, one liberty, a JSON report.
    pytest.importorskip("qmp")
    out = tmp_path / "verdict.json"
    done = subprocess.run(
        [
            *cli,
            "--client-function",
            "tests.client.clients.legacy_qmp_session:session",
            "--liberty",
            "stray-replies",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert '"client.liberty.stray-replies"' in out.read_text()


def test_serve_takes_a_liberty_for_a_clients_own_tests(tmp_path: Path) -> None:
    path = tmp_path / "qmp.sock"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance",
            "serve",
            "--unix",
            str(path),
            "--liberty",
            "stray-replies",
        ]
    )
    try:
        wait_for_path(str(path), timeout=20)
        with WireClient(str(path), timeout=10) as client:
            client.greet_and_negotiate(oob=False)
            reply, _ = client.command("query-name", id=7)
            assert reply == {"return": {}, "id": 7}
            stray = [json.loads(line) for line in client.lines[1:]]
            assert {"return": {}, "id": "qmp-conformance-future-0"} in stray
            client.command("quit", id=8)
        assert server.wait(10) == 0
    finally:
        server.kill()
        server.wait(10)


def test_a_campaign_finds_stores_and_replays_what_a_client_does_not_survive(
    tmp_path: Path,
) -> None:
    pytest.importorskip("qmp")
    pytest.importorskip("qemu.qmp")
    legacy = client_command(f"{sys.executable} {CLIENTS / 'legacy_qmp_session.py'} {{socket}}")
    _, finding, ran = campaign(legacy, 20, tmp_path, seed_value=1, timeout=30)
    assert finding is not None and finding.path is not None and ran <= 20
    assert finding.verdict.status == "fail" and finding.verdict.transcript
    stored, profile = load(finding.path)
    assert stored == legacy and profile == finding.profile
    assert replay(stored, profile, timeout=30).status == "fail"
    # The same profile against qemu.qmp, which survives it.
    modern = client_command(f"{sys.executable} {CLIENTS / 'qemu_qmp_session.py'} {{socket}}")
    assert replay(modern, profile, timeout=30).status == "pass"
    _, none, _ = campaign(modern, 6, tmp_path / "modern", seed_value=1, timeout=30)
    assert none is None


def test_qmp_shell_is_held_to_ending_cleanly(tmp_path: Path) -> None:
    shell = Path(sys.executable).with_name("qmp-shell")
    if not shell.exists():
        pytest.skip("qmp-shell (qemu.qmp) is not installed")
    script = tmp_path / "commands"
    script.write_text("query-version\nquery-status\nblockdev-del node-name=none\nstop\ncont\n")
    argv = ["sh", "-c", f"{shell} {{socket}} < {script}"]
    result = check_client(argv, timeout=30, echoes=True)
    # It prints what it receives, so only crashes and hangs count; it dies
    # with a traceback on a reply cut by a disconnect (docs/client-conformance.md).
    assert _failed(result) == {"client.liberty.disconnect"}
    cut = next(r for r in result.results if r.id == "client.liberty.disconnect")
    assert "DeserializationError" in cut.message
