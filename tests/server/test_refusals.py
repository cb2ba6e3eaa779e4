"""Serving QEMU 7.2's schema, the reference server refuses what a bare QEMU
lacks and finds what a session made (reference_server/refusals.py).

test_server_every_command.py holds the refusals to QEMU's own answers; this
file checks the state behind them over a real socket: what creation commands
make, later lookups find, and removal forgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.session import Session
from conformance.transport import open_target
from reference_server import launch

INTROSPECTION = (
    Path(__file__).resolve().parents[3] / "shared" / "corpus" / "introspection" / "qemu-7.2.json"
)


@pytest.fixture
def session() -> Iterator[Session]:
    if not INTROSPECTION.is_file():
        pytest.skip("../shared/corpus is absent")
    with launch(schema=str(INTROSPECTION)) as path, open_target(f"unix:{path}") as target:
        session = Session(target.connect())
        session.read_greeting(5)
        session.execute("qmp_capabilities")
        yield session


def _answer(session: Session, name: str, args: dict[str, Any] | None = None) -> str:
    """'return', or the error class and message."""
    reply = session.execute(name, args)
    return "return" if reply.error_class is None else f"{reply.error_class}: {reply.desc}"


def test_absent_hardware_is_refused_as_qemu_refuses_it(session: Session) -> None:
    assert _answer(session, "query-balloon") == (
        "DeviceNotActive: No balloon device has been activated"
    )
    assert _answer(session, "qom-list", {"path": "/machine"}) == "return"
    assert _answer(session, "qom-list", {"path": "/machine/nothing"}) == (
        "DeviceNotFound: Device '/machine/nothing' not found"
    )
    assert _answer(session, "eject", {}) == "GenericError: Need exactly one of 'device' and 'id'"
    assert _answer(session, "eject", {"id": "cd0"}) == "DeviceNotFound: Device 'cd0' not found"
    # Values, not only names: QEMU's range for the period of a measurement.
    assert _answer(session, "calc-dirty-rate", {"calc-time": 61}) == (
        "GenericError: calc-time is out of range[1, 60]."
    )
    assert _answer(session, "calc-dirty-rate", {"calc-time": 1}) == "return"


def test_what_a_session_makes_is_found_until_removed(session: Session, tmp_path: Path) -> None:
    assert _answer(session, "object-del", {"id": "io0"}) == "GenericError: object 'io0' not found"
    assert _answer(session, "object-add", {"qom-type": "iothread", "id": "0io"}) == (
        "GenericError: Parameter 'id' expects an identifier"
    )
    assert _answer(session, "object-add", {"qom-type": "iothread", "id": "io0"}) == "return"
    assert _answer(session, "object-add", {"qom-type": "iothread", "id": "io0"}).startswith(
        "GenericError: attempt to add duplicate property 'io0'"
    )
    assert _answer(session, "qom-list", {"path": "/objects"}) == "return"
    assert _answer(session, "object-del", {"id": "io0"}) == "return"
    assert _answer(session, "object-del", {"id": "io0"}).startswith("GenericError")

    bitmap = {"node": "disk0", "name": "b0"}
    assert _answer(session, "block-dirty-bitmap-add", bitmap) == (
        "GenericError: Cannot find device='disk0' nor node-name='disk0'"
    )
    assert _answer(session, "blockdev-add", {"driver": "null-co", "node-name": "disk0"}) == "return"
    nodes = session.execute("query-named-block-nodes").value["return"]  # type: ignore[index]
    assert [(n["node-name"], n["drv"], n["image"]["virtual-size"]) for n in nodes] == [
        ("disk0", "null-co", 1 << 30)
    ]
    assert _answer(session, "block-dirty-bitmap-clear", bitmap) == (
        "GenericError: Dirty bitmap 'b0' not found"
    )
    assert _answer(session, "block-dirty-bitmap-add", bitmap) == "return"
    assert _answer(session, "block-dirty-bitmap-clear", bitmap) == "return"
    assert _answer(session, "block-dirty-bitmap-remove", bitmap) == "return"
    assert _answer(session, "block-dirty-bitmap-remove", bitmap).startswith("GenericError")

    unix = {"addr": {"type": "unix", "data": {"path": str(tmp_path / "nbd.sock")}}}
    assert _answer(session, "nbd-server-stop") == "GenericError: NBD server not running"
    assert _answer(session, "nbd-server-start", unix) == "return"
    assert _answer(session, "nbd-server-start", unix) == "GenericError: NBD server already running"
    assert _answer(session, "nbd-server-stop") == "return"


def test_the_release_served_picks_its_answers() -> None:
    source = INTROSPECTION.with_name("qemu-10.0.json")
    if not source.is_file():
        pytest.skip("../shared/corpus is absent")
    vnc = {"protocol": "vnc", "time": "soon"}
    # Through the command line (--release), as a client library's CI runs it.
    with (
        launch(schema=str(source), release="10.0", subprocess=True) as path,
        open_target(f"unix:{path}") as target,
    ):
        session = Session(target.connect())
        greeting = session.read_greeting(5)
        assert greeting is not None
        assert greeting["QMP"]["version"]["qemu"] == {"major": 10, "minor": 0, "micro": 0}
        session.execute("qmp_capabilities")
        # 10.0 reads the time before it looks for a VNC display; 7.2 did not.
        assert _answer(session, "expire_password", vnc) == (
            "GenericError: Parameter 'time' doesn't take value 'soon'"
        )
    with launch(schema=str(source)) as path, open_target(f"unix:{path}") as target:
        session = Session(target.connect())
        session.read_greeting(5)
        session.execute("qmp_capabilities")
        assert _answer(session, "expire_password", vnc) == (
            "GenericError: Could not set password expire time"
        )
