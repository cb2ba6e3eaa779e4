"""Session and transport behaviour against real peers (a socketpair server
written here, the reference server, and spawned processes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from harness_targets import QEMU_STDIO, needs_qemu

from conformance.protocol.messages import MISSING
from conformance.runner import run
from conformance.session import (
    MAX_LINE,
    ReplyTimeout,
    Session,
    fetch_schema,
    json_equal,
)
from conformance.transport import (
    ConnectionClosed,
    SocketConnection,
    TargetError,
    open_target,
    parse_target,
)


@pytest.fixture
def pair() -> Iterator[tuple[Session, socket.socket]]:
    """A session whose peer is a raw socket the test writes to."""
    ours, theirs = socket.socketpair()
    session = Session(SocketConnection(ours, "pair"))
    yield session, theirs
    session.close()
    theirs.close()


def test_parse_target_forms() -> None:
    assert parse_target("unix:/tmp/x").address == "/tmp/x"
    assert parse_target("tcp:127.0.0.1:4444").address == ("127.0.0.1", 4444)
    assert parse_target("spawn:qemu -qmp stdio").command == "qemu -qmp stdio"
    assert parse_target("reference:dialect=qga,defect=a,defect=b").options == {
        "dialect": ["qga"],
        "defect": ["a", "b"],
    }
    for bad in ("nope", "tcp:host", "unix:", "spawn:", "reference:junk"):
        with pytest.raises(TargetError):
            parse_target(bad)


def test_json_equal_compares_values_not_text() -> None:
    assert json_equal(18446744073709551616, 1.8446744073709552e19)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal(True, 1) and not json_equal(0, False)
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    deep_a: object = []
    deep_b: object = []
    for _ in range(5000):  # iterative: no RecursionError
        deep_a, deep_b = [deep_a], [deep_b]
    assert json_equal(deep_a, deep_b)


def test_decoding_survives_anything(pair: tuple[Session, socket.socket]) -> None:
    session, peer = pair
    deep = b'{"return": {}, "id": ' + b"[" * 1000 + b"]" * 1000 + b"}\r\n"
    peer.sendall(
        b'{"return": {}, "id": 1}\r\n' + deep + b"\xff\xfe garbage\r\n" + b'[1, 2]\r\n{"partial": '
    )
    first = session.recv(2)
    assert first is not None and first.ok and first.id == 1
    second = session.recv(2)
    assert second is not None and second.error is None and isinstance(second.id, list)
    third = session.recv(2)
    assert third is not None and third.error is not None and not third.ok
    fourth = session.recv(2)
    assert fourth is not None and fourth.value == [1, 2] and not fourth.ok
    assert session.recv(0.2) is None  # the partial line waits, with a deadline
    peer.close()
    tail = session.recv(2)
    assert tail is not None and tail.raw == b'{"partial": ' and tail.error
    with pytest.raises(ConnectionClosed):
        session.recv(1)
    text = "\n".join(session.transcript.render())
    assert "<- " in text and "connection closed" in text


def test_oversized_line_is_cut_not_buffered(pair: tuple[Session, socket.socket]) -> None:
    session, peer = pair
    big = b'"' + b"a" * (MAX_LINE + 10) + b'"\r\n{"return": {}}\r\n'
    writer = threading.Thread(target=peer.sendall, args=(big,), daemon=True)
    writer.start()
    cut = session.recv(20)
    assert cut is not None and "longer than" in (cut.error or "")
    after = session.recv(20)
    assert after is not None and after.value == {"return": {}}
    writer.join(5)


def test_demultiplexing_replies_and_events(pair: tuple[Session, socket.socket]) -> None:
    session, peer = pair
    peer.sendall(
        b'{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n'
        b'{"return": 2, "id": "b"}\r\n{"return": 1, "id": "a"}\r\n'
    )
    assert session.wait_reply("a", 2).value["return"] == 1
    assert session.wait_reply("b", 2).value["return"] == 2  # from the inbox
    assert [e.value["event"] for e in session.events] == ["STOP"]
    with pytest.raises(ReplyTimeout):
        session.wait_reply("never", 0.2)


def test_transcript_records_every_byte_with_direction(pair: tuple[Session, socket.socket]) -> None:
    session, peer = pair
    session.send_raw(b"\x01{bad")
    assert peer.recv(100) == b"\x01{bad"
    peer.sendall(b'{"error": {"class": "GenericError", "desc": "x"}}\r\n')
    msg = session.recv(2)
    assert msg is not None and msg.id is MISSING and msg.error_class == "GenericError"
    lines = session.transcript.render()
    assert "-> \\x01{bad" in lines[1]
    assert lines[2].split("] ", 1)[1].startswith("<- {")


@needs_qemu
def test_spawn_target_is_restarted_and_cleaned_up() -> None:
    target = open_target(f"spawn:{QEMU_STDIO}")
    first = target.connect()
    pid = first.proc.pid  # type: ignore[attr-defined]
    second = target.connect()
    assert second.proc.pid != pid  # type: ignore[attr-defined]
    target.close()
    for conn in (first, second):
        assert conn.proc.poll() is not None  # type: ignore[attr-defined]


def test_spawn_of_missing_program_is_a_target_error() -> None:
    with pytest.raises(TargetError):
        open_target("spawn:/nonexistent/qemu -qmp stdio").connect()


def test_connect_has_a_deadline(tmpdir_short: str) -> None:
    path = f"{tmpdir_short}/jammed.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(0)
    started = time.monotonic()
    target = open_target(f"unix:{path}")
    session = Session(target.connect())
    assert session.read_greeting(0.3) is None  # accepted by the backlog, never greeted
    target.close()
    listener.close()
    assert time.monotonic() - started < 5


def test_fetch_schema_from_reference_server() -> None:
    schema = fetch_schema("reference")
    names = {e["name"] for e in schema if e.get("meta-type") == "command"}
    assert {"qmp_capabilities", "query-version", "query-qmp-schema"} <= names


def test_a_server_that_drops_ids_still_describes_itself() -> None:
    """Replies without ids: the negotiation's ``{"return": {}}`` must not be
    taken for the schema, so the checks that need the schema still run."""
    schema = fetch_schema("reference:defect=reply-drops-id")
    assert any(e.get("name") == "query-qmp-schema" for e in schema)
    result = run("reference:defect=reply-drops-id", only=["returns.query", "ids.echo"])
    assert result.by_id()["returns.query"].status == "pass"
    assert result.by_id()["ids.echo"].status == "fail"


@needs_qemu
def test_fetch_schema_from_qemu() -> None:
    schema = fetch_schema(f"spawn:{QEMU_STDIO}")
    assert any(e.get("name") == "query-qmp-schema" for e in schema)
