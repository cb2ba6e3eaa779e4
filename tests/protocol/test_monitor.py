"""The per-connection monitor state machine (observed §2, §6, §7)."""

from __future__ import annotations

import pytest
from proto_helpers import OOB_COMMANDS, run_model

from conformance.protocol import (
    NEED_DATA,
    NO_REPLY,
    PAUSED,
    QGA,
    QMP_1_0,
    CommandError,
    Dispatch,
    Monitor,
    MonitorState,
    Send,
    decode,
)
from conformance.protocol.monitor import Event
from conformance.protocol.request import Request
from conformance.protocol.values import JSON

COMMANDS = {"query-name", "query-version", "blockdev-add", "yank", "migrate-pause", "query-yank"}
NEGOTIATE_OOB = b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}'


def new(oob: bool | None = True) -> Monitor:
    """A monitor past the greeting; negotiated with/without oob, or not (None)."""
    mon = Monitor(commands=COMMANDS, oob_commands=OOB_COMMANDS)
    greeting = mon.next_event()
    assert isinstance(greeting, Send) and b'"capabilities": ["oob"]' in greeting.data
    if oob is not None:
        out = run_model(mon, NEGOTIATE_OOB if oob else b'{"execute":"qmp_capabilities"}')
        assert out == b'{"return": {}}\r\n'
    return mon


def drain(mon: Monitor) -> tuple[list[JSON], list[Request], Event]:
    """Collect sends and dispatches until the monitor waits; return the wait reason."""
    sent: list[JSON] = []
    dispatched: list[Request] = []
    while True:
        ev = mon.next_event()
        if isinstance(ev, Send):
            sent.append(decode(ev.data))
        elif isinstance(ev, Dispatch):
            dispatched.append(ev.request)
        else:
            return sent, dispatched, ev


def ids(messages: list[JSON]) -> list[JSON]:
    return [m.get("id") if isinstance(m, dict) else None for m in messages]


def cmd(name: str, rid: str, oob: bool = False, args: str = "") -> bytes:
    key = "exec-oob" if oob else "execute"
    extra = f',"arguments":{args}' if args else ""
    return f'{{"{key}":"{name}","id":"{rid}"{extra}}}'.encode()


# ---------------------------------------------------------------- negotiation
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b'{"execute":"query-version","id":1}',
            [
                {
                    "id": 1,
                    "error": {
                        "class": "CommandNotFound",
                        "desc": "Expecting capabilities negotiation with 'qmp_capabilities'",
                    },
                }
            ],
        ),
        (
            b'{"execute":"no-such"}',
            [
                {
                    "error": {
                        "class": "CommandNotFound",
                        "desc": "Expecting capabilities negotiation with 'qmp_capabilities'",
                    }
                }
            ],
        ),
        (
            b'{"exec-oob":"qmp_capabilities","id":"x"}',
            [
                {
                    "id": "x",
                    "error": {
                        "class": "GenericError",
                        "desc": "QMP input member 'exec-oob' is unexpected",
                    },
                }
            ],
        ),
        (
            b'{"execute":"qmp_capabilities","arguments":{"enable":["nope"]}}',
            [
                {
                    "error": {
                        "class": "GenericError",
                        "desc": "Parameter 'null' does not accept value 'nope'",
                    }
                }
            ],
        ),
        (
            b'{"execute":"qmp_capabilities","arguments":{"enable":null}}',
            [
                {
                    "error": {
                        "class": "GenericError",
                        "desc": "Invalid parameter type for 'enable', expected: array",
                    }
                }
            ],
        ),
        (
            b'{"execute":"qmp_capabilities","arguments":{"enable":["oob",1]}}',
            [
                {
                    "error": {
                        "class": "GenericError",
                        "desc": "Invalid parameter type for 'enable[1]', expected: string",
                    }
                }
            ],
        ),
        (
            b'{"execute":"qmp_capabilities","arguments":{"foo":1}}',
            [{"error": {"class": "GenericError", "desc": "Parameter 'foo' is unexpected"}}],
        ),
    ],
)
def test_negotiation_errors_keep_negotiation_mode(data: bytes, expected: list[JSON]) -> None:
    mon = new(None)
    mon.receive_data(data)
    sent, dispatched, wait = drain(mon)
    assert sent == expected and not dispatched and wait is NEED_DATA
    assert mon.state is MonitorState.NEGOTIATION


def test_negotiation_success_and_repeat() -> None:
    mon = new(None)
    mon.receive_data(
        b'{"execute":"qmp_capabilities","arguments":{"enable":["oob","oob"]},"id":"n"}'
    )
    assert drain(mon)[0] == [{"return": {}, "id": "n"}]
    assert mon.state is MonitorState.COMMAND and mon.oob_enabled
    mon.receive_data(
        b'{"execute":"qmp_capabilities"}{"execute":"qmp_capabilities","arguments":{"x":1}}'
        b'{"exec-oob":"qmp_capabilities","id":"c"}'
    )
    sent = drain(mon)[0]
    assert [m["error"]["desc"] for m in sent] == [  # type: ignore[index, call-overload]
        "Capabilities negotiation is already complete, command ignored",
        "Parameter 'x' is unexpected",
        "The command qmp_capabilities does not support OOB",
    ]


def test_unoffered_capability() -> None:
    mon = Monitor(QMP_1_0, commands=COMMANDS)
    first = mon.next_event()
    assert isinstance(first, Send) and b'"capabilities": []' in first.data
    mon.receive_data(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}')
    assert drain(mon)[0][0]["error"]["desc"] == "Parameter 'null' does not accept value 'oob'"  # type: ignore[index, call-overload]
    oob_known = Monitor(
        QMP_1_0.__class__(**{**QMP_1_0.__dict__, "known_capabilities": frozenset({"oob"})}),
        commands=COMMANDS,
    )
    oob_known.next_event()
    oob_known.receive_data(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}')
    assert drain(oob_known)[0][0]["error"]["desc"] == "Capability oob not available"  # type: ignore[index, call-overload]


def test_events_only_in_command_mode() -> None:
    mon = new(None)
    assert not mon.send_event("STOP", when=1.0)
    assert drain(mon)[0] == []
    mon = new(True)
    assert mon.send_event("STOP", when={"seconds": 5, "microseconds": 6})
    ev = mon.next_event()
    assert isinstance(ev, Send)
    assert ev.data == b'{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "STOP"}\r\n'


# ---------------------------------------------------------------- dispatch
def test_unknown_command_and_results() -> None:
    mon = new(True)
    mon.receive_data(b'{"execute":"nope","id":1}{"execute":"query-name","id":2}')
    sent, dispatched, wait = drain(mon)
    assert sent == [
        {
            "id": 1,
            "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"},
        }
    ]
    (req,) = dispatched
    assert req.command == "query-name" and not req.oob and wait is NEED_DATA
    assert mon.running is req
    mon.complete(req, CommandError("GenericError", "boom"))
    assert drain(mon)[0] == [{"id": 2, "error": {"class": "GenericError", "desc": "boom"}}]
    with pytest.raises(ValueError):
        mon.complete(req, {})


def test_oob_overtakes_blocked_in_band() -> None:
    # observed §6 "Overtaking", plus the malformed-in-band-in-order case
    mon = new(True)
    mon.receive_data(
        cmd("blockdev-add", "ib-blocks-1")
        + cmd("query-name", "ib-quick-1")
        + b'{"id":"err-2"}{]'
        + cmd("migrate-pause", "oob-1", oob=True)
        + cmd("yank", "oob-2", oob=True, args='{"instances":[]}')
        + cmd("query-name", "oob-bad", oob=True)
    )
    sent, dispatched, wait = drain(mon)
    assert [r.id for r in dispatched] == ["ib-blocks-1", "oob-1", "oob-2"]
    assert ids(sent) == ["oob-bad"]  # "does not support OOB", answered at once
    assert wait is NEED_DATA and mon.queue_length == 3
    blocker, pause, yank = dispatched
    mon.complete(pause, CommandError("GenericError", "not now"))
    mon.complete(yank, {})
    assert ids(drain(mon)[0]) == ["oob-1", "oob-2"]
    mon.complete(blocker, {})
    sent, dispatched, _ = drain(mon)
    assert ids(sent) == ["ib-blocks-1"] and [r.id for r in dispatched] == ["ib-quick-1"]
    mon.complete(dispatched[0], {})
    sent = drain(mon)[0]
    assert sent == [
        {"return": {}, "id": "ib-quick-1"},
        {
            "id": "err-2",
            "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"},
        },
        {"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}},
    ]


@pytest.mark.parametrize(("queued", "oob_answered_early"), [(7, True), (8, False), (12, False)])
def test_queue_limit_with_oob(queued: int, oob_answered_early: bool) -> None:
    # observed §6: <= 7 queued behind a blocker still lets exec-oob through; 8 stop reading
    mon = new(True)
    data = cmd("blockdev-add", "blocker")
    data += b"".join(cmd("query-name", f"q{i}") for i in range(queued))
    data += cmd("yank", "oob", oob=True, args='{"instances":[]}')
    mon.receive_data(data)
    _, dispatched, wait = drain(mon)
    assert [r.id for r in dispatched] == (["blocker", "oob"] if oob_answered_early else ["blocker"])
    assert mon.queue_length == min(queued, 8)
    assert mon.want_read is (queued < 8)
    assert wait is (NEED_DATA if queued < 8 else PAUSED)
    # Finish everything.  When the queue was full the exec-oob is only read once
    # the blocker is done and the queue has room again (QEMU's reader races the
    # dispatcher there; observed, the OOB reply came after all 8 queued ones).
    order: list[JSON] = []
    pending = list(dispatched)
    while pending:
        req = pending.pop(0)
        mon.complete(req, {})
        sent, new_dispatch, _ = drain(mon)
        order += ids(sent)
        pending += new_dispatch
    expected_in_band = ["blocker"] + [f"q{i}" for i in range(queued)]
    if oob_answered_early:
        assert order == ["blocker", "oob", *expected_in_band[1:]]
    else:
        assert order.index("oob") > order.index("blocker")
        assert [x for x in order if x != "oob"] == expected_in_band


def test_without_oob_reads_one_command_at_a_time() -> None:
    # observed §6 "Without oob negotiated"
    mon = new(False)
    mon.receive_data(
        cmd("blockdev-add", "blocker") + cmd("query-name", "q") + cmd("yank", "n1", oob=True)
    )
    _, dispatched, wait = drain(mon)
    assert [r.id for r in dispatched] == ["blocker"]
    assert wait is PAUSED and not mon.want_read and mon.queue_length == 0
    assert mon.pending_input > 0
    mon.complete(dispatched[0], {})
    sent, dispatched, _ = drain(mon)
    assert ids(sent) == ["blocker"] and [r.id for r in dispatched] == ["q"]
    mon.complete(dispatched[0], {})
    sent, dispatched, wait = drain(mon)
    assert sent == [
        {"return": {}, "id": "q"},
        {
            "id": "n1",
            "error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"},
        },
    ]
    assert wait is NEED_DATA and mon.want_read


def test_pipelined_in_order() -> None:
    mon = new(True)
    data = b"".join(cmd("query-name", str(i)) for i in range(100))
    out = run_model(mon, data)
    assert ids([decode(line) for line in out.split(b"\r\n")[:-1]]) == [str(i) for i in range(100)]


def test_qga_dialect() -> None:
    mon = Monitor(QGA, commands={"guest-sync-delimited", "guest-ping", "guest-shutdown"})
    assert mon.state is MonitorState.COMMAND
    mon.receive_data(
        b'{"execute":"guest-sync-delimited","arguments":{"id":5}}'
        b'{"execute":"qmp_capabilities"}{"exec-oob":"guest-ping"}'
        b'\xff{"execute":"guest-shutdown"}'
    )
    out = bytearray()
    while True:
        ev = mon.next_event()
        if isinstance(ev, Send):
            out += ev.data
        elif isinstance(ev, Dispatch):
            result: JSON = ev.request.arguments.get("id")
            mon.complete(ev.request, NO_REPLY if ev.request.command == "guest-shutdown" else result)
        else:
            break
    # Bytes as observed from qemu-ga 7.2 (LF lines, 0xFF before the sync reply).
    assert bytes(out) == (
        b'\xff{"return": 5}\n'
        b'{"error": {"class": "CommandNotFound", '
        b'"desc": "The command qmp_capabilities has not been found"}}\n'
        b'{"error": {"class": "GenericError", '
        b'"desc": "QMP input member \'exec-oob\' is unexpected"}}\n'
        b'{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'\\uFFFD\'"}}\n'
    )
    assert not mon.send_event("X", when=0.0)


def test_byte_at_a_time_same_output() -> None:
    data = (
        b'{"execute":"query-name","id":"\xc3\xa9"}{\xff"x\n'
        + cmd("yank", "y", oob=True)
        + b"[1]"
        + cmd("nope", "n")
    )
    whole = run_model(new(True), data)
    mon = new(True)
    pieces = b"".join(run_model(mon, bytes([b])) for b in data)
    assert pieces == whole and whole.count(b"\r\n") == 5


def test_connection_lost() -> None:
    mon = new(True)
    mon.receive_data(cmd("blockdev-add", "b") + cmd("query-name", "q"))
    _, (blocker,), _ = drain(mon)
    mon.connection_lost()
    mon.complete(blocker, {})  # tolerated, nothing sent
    assert mon.next_event() is PAUSED and not mon.want_read


def test_queue_overflow_flag() -> None:
    # Verified live: QEMU 7.2 aborts on exactly this input (see test_qemu_live).
    mon = new(True)
    mon.receive_data(
        cmd("blockdev-add", "b") + b"".join(cmd("query-name", str(i)) for i in range(6))
    )
    drain(mon)
    assert not mon.queue_overflowed
    mon.receive_data(b"1}")  # 7th and 8th: fine
    drain(mon)
    assert not mon.queue_overflowed and mon.queue_length == 8
    mon2 = new(True)
    mon2.receive_data(
        cmd("blockdev-add", "b") + b"".join(cmd("query-name", str(i)) for i in range(7))
    )
    mon2.receive_data(b"1}")  # "1" fills the queue, "}" overflows it
    drain(mon2)
    assert mon2.queue_overflowed and mon2.queue_length == 9
