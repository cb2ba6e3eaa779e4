"""Confined targets (``--confine``): what the server may touch, and a
full-schema campaign on real QEMU that finds a crash by itself."""

from __future__ import annotations

import fnmatch
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.confine import confine
from conformance.fuzz.campaign import Campaign, CampaignConfig
from conformance.fuzz.findings import load
from conformance.fuzz.generate import DEFAULT_COMMANDS
from conformance.session import Session
from conformance.transport import TargetError, open_target

CLI = [sys.executable, "-m", "conformance"]
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed"
)


@pytest.mark.parametrize("spec", ["reference", "tcp:127.0.0.1:4444", "unix:/tmp/x.sock"])
def test_only_a_target_the_harness_starts_can_be_confined(spec: str) -> None:
    with pytest.raises(TargetError, match="only a spawn: target"):
        confine(spec)


def _settle_migration(session: Session) -> None:
    """Wait (5 s at most) until a migration this session started has ended:
    closing the session stops the server, and the program it started with it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = session.execute("query-migrate").obj.get("return")
        if not isinstance(status, dict) or status.get("status") in (None, "completed", "failed"):
            return
        time.sleep(0.05)


def _try_to_touch_the_host(spec: str, host: Path, port: int) -> list[str]:
    """Ask the server to create ``host`` twice (a RAM backing file, a program
    started by migration) and to connect to ``port``, each on a server of its
    own (a migration leaves the next one refused); the replies' texts."""
    backing = {"qom-type": "memory-backend-file", "id": "m", "size": 4096}
    requests = [
        ("object-add", {**backing, "mem-path": str(host)}),
        ("migrate", {"uri": f"exec:touch {host}.exec"}),
        ("migrate", {"uri": f"tcp:127.0.0.1:{port}"}),
    ]
    replies = []
    with open_target(spec) as target:
        for name, arguments in requests:
            session = Session(target.connect())
            session.read_greeting(5)
            session.execute("qmp_capabilities")
            replies.append(session.execute(name, arguments).brief())
            _settle_migration(session)
            session.close()
    return replies


@needs_bwrap
@pytest.mark.qemu
def test_a_confined_server_cannot_touch_the_host(qemu: str, tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    # The control: unconfined, the same requests do reach the host.
    _try_to_touch_the_host(qemu, tmp_path / "open", port)
    assert (tmp_path / "open").exists()
    assert (tmp_path / "open.exec").exists()
    listener.settimeout(10)
    assert listener.accept()[0] is not None
    listener.settimeout(0.5)

    replies = _try_to_touch_the_host(confine(qemu), tmp_path / "shut", port)
    assert "No such file or directory" in replies[0], replies
    assert not (tmp_path / "shut").exists() and not (tmp_path / "shut.exec").exists()
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()


@needs_bwrap
@pytest.mark.slow
@pytest.mark.qemu
def test_a_confined_campaign_finds_a_crash_by_itself(qemu: str, tmp_path: Path) -> None:
    with Campaign(
        CampaignConfig(
            target=confine(qemu),
            out_dir=str(tmp_path),
            max_examples=120,
            seed=1,
            commands=("blockdev-reopen", "query-*"),
        )
    ) as campaign:
        campaign.run()
    assert "blockdev-reopen" in campaign.stats.commands
    crashes = [
        load(path)
        for path in sorted((tmp_path / "findings").glob("*.qmp"))
        if "bdrv_reopen_multiple: Assertion" in path.read_text()
    ]
    assert crashes, "the campaign did not find QEMU 7.2's blockdev-reopen abort"


FIXED = ("--max-examples", "40", "--seed", "2", "--quiet")


@needs_bwrap
@pytest.mark.slow
@pytest.mark.qemu
def test_fuzz_confine_draws_from_every_command(qemu: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [*CLI, "fuzz", "--target", qemu, "--confine", *FIXED, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode in (0, 1), done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "bwrap --unshare-all" in summary["target"] and "-sandbox on" in summary["target"]
    # Beyond the read-only ones an unconfined campaign is kept to (a 150 s
    # confined campaign covers 211 of QEMU 7.2's 216 commands).
    beyond = [
        c for c in summary["commands"] if not any(fnmatch.fnmatch(c, g) for g in DEFAULT_COMMANDS)
    ]
    assert len(beyond) >= 10, summary["commands"]
