"""Every seeded defect changes what goes over the wire, in the way it claims.

Each scenario runs against a clean server and against one with the defect
switched on; the observations must differ, and the defective one must show
the specific deviation (the rule the defect names is what breaks).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from server_wire import WireClient, release_fifo

from conformance.protocol.jobs import JOB_RULES
from reference_server import DEFECTS, launch

Scenario = Callable[[str], Any]


def _session(path: str, *sends: str, negotiate: bool = True, quiet: float = 0.3) -> list[Any]:
    with WireClient(path) as c:
        if negotiate:
            c.negotiate_leniently()
        out: list[Any] = []
        for data in sends:
            c.send(data)
        out += c.read_quiet(quiet)
        return out


def greeting_raw(path: str) -> Any:
    with WireClient(path) as c:
        return c.read_line(timeout=0.5)


def greeting_and_version(path: str) -> Any:
    with WireClient(path) as c:
        greeting = c.greet_and_negotiate()
        reply, _ = c.command("query-version", id=1)
        return greeting["QMP"].get("version") == reply["return"], greeting["QMP"]


def before_negotiation(path: str) -> Any:
    return _session(path, '{"execute":"query-status","id":1}', negotiate=False)[1:]


def events_while_negotiating(path: str) -> Any:
    with WireClient(path) as a, WireClient(path) as b:
        a.greet_and_negotiate()
        b.read_message()
        a.command("stop", id="s")
        a.command("cont", id="c")
        return [m.get("event") for m in b.read_quiet(0.3)]


def negotiate_twice(path: str) -> Any:
    return _session(path, '{"execute":"qmp_capabilities","id":"again"}')


def unknown_capability(path: str) -> Any:
    return _session(
        path,
        '{"execute":"qmp_capabilities","arguments":{"enable":["nope"]},"id":"n"}',
        '{"execute":"query-name","id":"q"}',
        negotiate=False,
    )[1:]


def ids(path: str) -> Any:
    return _session(
        path,
        '{"execute":"query-name","id":{"k":[1,2]}}',
        '{"execute":"query-name","id":7}',
        '{"execute":"query-name","id":"s"}',
    )


def pipelined(path: str) -> Any:
    return _session(path, "".join(f'{{"execute":"query-name","id":{i}}}' for i in range(4)))


def empty_return(path: str) -> Any:
    return _session(
        path,
        '{"execute":"query-name","id":1}',
        '{"execute":"stop","id":2}',
        '{"execute":"cont","id":3}',
    )


def errors(path: str) -> Any:
    return _session(path, '{"execute":"no-such-command","id":1}')


def oob_overtake(path: str) -> Any:
    with WireClient(path) as c:
        fifo = os.path.join(os.path.dirname(path), "d.fifo")
        os.mkfifo(fifo)
        c.greet_and_negotiate()
        c.send(
            json.dumps(
                {
                    "execute": "blockdev-add",
                    "id": "blocker",
                    "arguments": {
                        "driver": "blkdebug",
                        "node-name": "b",
                        "config": fifo,
                        "image": {"driver": "null-co"},
                    },
                }
            )
        )
        c.send('{"exec-oob":"query-yank","id":"oob"}')
        first = c.read_message(timeout=0.5)
        release_fifo(fifo)
        rest = c.read_quiet(0.3)
        return [m.get("id") for m in [first, *rest] if m is not None]


def oob_non_oob_command(path: str) -> Any:
    return _session(path, '{"exec-oob":"query-name","id":"o"}')


def oob_not_negotiated(path: str) -> Any:
    with WireClient(path) as c:
        c.greet_and_negotiate(oob=False)
        c.send('{"exec-oob":"yank","arguments":{"instances":[]},"id":"o"}')
        return c.read_quiet(0.3)


def event_timestamps(path: str) -> Any:
    out = _session(path, '{"execute":"stop","id":1}', '{"execute":"cont","id":2}')
    return [m["timestamp"]["microseconds"] <= 999_999 for m in out if "event" in m]


def raw_lines(path: str) -> Any:
    with WireClient(path) as c:
        c.negotiate_leniently()
        c.raw = b""
        c.send('{"execute":"stop","id":"\\u00e9"}{"execute":"cont","id":2}')
        c.drain_lines(0.3)
        return c.raw


def number_ids(path: str) -> Any:
    with WireClient(path) as c:
        c.negotiate_leniently()
        c.raw = b""
        c.send(
            '{"execute":"query-name","id":0.1234567}{"execute":"query-name","id":1e400}'
            '{"execute":"query-name","id":0E0}'
        )
        c.drain_lines(0.3)
        return c.raw


def sync_line(path: str) -> Any:
    # The guest agent: no greeting, no negotiation.
    with WireClient(path) as c:
        c.raw = b""
        c.send('{"execute":"guest-sync-delimited","arguments":{"id":7}}')
        c.drain_lines(0.3)
        return c.raw


def garbage_then_command(path: str) -> Any:
    with WireClient(path) as c:
        c.negotiate_leniently()
        c.send(b"{\x01")
        c.send('{"execute":"query-name","id":"after"}')
        return c.read_quiet(0.3), c.eof


def invalid_arguments(path: str) -> Any:
    return _session(path, '{"execute":"query-status","arguments":{"bogus":1},"id":1}')


def side_effect(path: str) -> Any:
    out = _session(
        path,
        '{"execute":"stop","arguments":{"bogus":1},"id":1}',
        '{"execute":"query-status","id":2}',
        '{"execute":"cont","id":3}',
    )
    return [m for m in out if "event" in m or m.get("id") == 2]


def after_greeting(path: str) -> Any:
    """What comes before negotiating: the greeting and anything after it."""
    with WireClient(path) as c:
        return c.read_quiet(0.3)


def idless_command(path: str) -> Any:
    return _session(path, '{"execute":"query-name"}')


def returned_members(path: str) -> Any:
    return _session(path, '{"execute":"query-version","id":1}')


def throttled_burst(path: str) -> Any:
    """How many QUORUM_REPORT_BAD a burst of five failing reads brings within 0.5 s."""
    node = {
        "driver": "quorum",
        "node-name": "q",
        "vote-threshold": 2,
        "children": [
            {"driver": "null-co"},
            {"driver": "null-co"},
            {
                "driver": "raw",
                "file": {
                    "driver": "blkdebug",
                    "inject-error": [{"event": "read_aio"}],
                    "image": {"driver": "null-co"},
                },
            },
        ],
    }
    with WireClient(path) as c:
        c.greet_and_negotiate()
        c.command("blockdev-add", node, id="add")
        seen = []
        for i in range(5):
            read = {"command-line": 'qemu-io q "read 0 512"'}
            seen += c.command("human-monitor-command", read, id=i)[1]
        seen += c.read_quiet(0.5)
        return sum(1 for m in seen if m.get("event") == "QUORUM_REPORT_BAD")


def _job_events(seen: list[Any], job: str) -> list[Any]:
    return [
        m
        for m in seen
        if m.get("event") in ("JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED")
        and job in (m["data"].get("id"), m["data"].get("device"))
    ]


def snapshot_job(path: str) -> Any:
    """A snapshot-save job's status changes, and whether query-jobs lists it after."""
    node = {"driver": "qcow2", "node-name": "n", "file": {"driver": "null-co"}}
    save = {"job-id": "j", "tag": "t", "vmstate": "n", "devices": ["n"]}
    with WireClient(path) as c:
        c.greet_and_negotiate()
        c.command("blockdev-add", node, id="add")
        seen = c.command("snapshot-save", save, id="save")[1] + c.read_quiet(0.5)
        listed, more = c.command("query-jobs", id="jobs")
        statuses = [m["data"]["status"] for m in _job_events(seen + more, "j")]
        return statuses, [j["id"] for j in listed["return"]]


def mirror(path: str, *then: tuple[str, dict[str, Any]], speed: int = 0) -> list[Any]:
    """A mirror of one null-co node into another, then ``then`` commands; the
    messages that came (replies and events)."""
    with WireClient(path) as c:
        c.greet_and_negotiate()
        for node in ("s", "d"):
            c.command("blockdev-add", {"driver": "null-co", "node-name": node}, id=node)
        arguments = {"job-id": "m", "device": "s", "target": "d", "sync": "full"}
        seen = c.command("blockdev-mirror", {**arguments, "speed": speed}, id="mirror")[1]
        if not speed:
            seen += c.read_until(lambda m: m.get("event") == "BLOCK_JOB_READY")
        for i, (name, args) in enumerate(then):
            reply, events = c.command(name, args, id=i)
            seen += [*events, reply]
        return seen + c.read_quiet(0.3)


def completed_mirror(path: str) -> Any:
    """The BLOCK_JOB_COMPLETED of a mirror completed once ready."""
    seen = mirror(path, ("block-job-complete", {"device": "m"}))
    return [m["data"] for m in seen if m.get("event") == "BLOCK_JOB_COMPLETED"]


def paused_mirror(path: str) -> Any:
    """A slow mirror paused while running: its status changes, and its listed status."""
    seen = mirror(path, ("block-job-pause", {"device": "m"}), ("query-block-jobs", {}), speed=1)
    listed = next(m["return"] for m in seen if isinstance(m.get("return"), list))
    return [m["data"]["status"] for m in _job_events(seen, "m")], listed[0]["status"]


SCENARIOS: dict[str, tuple[Scenario, Callable[[Any], bool]]] = {
    "no-greeting": (greeting_raw, lambda obs: obs is None),
    "greeting-version-mismatch": (greeting_and_version, lambda obs: obs[0] is False),
    "greeting-without-capabilities": (
        greeting_and_version,
        lambda obs: "capabilities" not in obs[1],
    ),
    "commands-before-negotiation": (before_negotiation, lambda obs: "return" in obs[0]),
    "events-before-negotiation": (events_while_negotiating, lambda obs: obs == ["STOP", "RESUME"]),
    "renegotiation-accepted": (negotiate_twice, lambda obs: obs[0].get("return") == {}),
    "unknown-capability-accepted": (
        unknown_capability,
        lambda obs: obs[0].get("return") == {} and obs[1].get("return") == {},
    ),
    "reply-drops-id": (ids, lambda obs: all("id" not in m for m in obs)),
    "reply-id-invented": (idless_command, lambda obs: obs[0].get("id") == "reply"),
    "event-after-greeting": (after_greeting, lambda obs: obs[1:2] and "event" in obs[1]),
    "greeting-downstream-member": (
        after_greeting,
        lambda obs: "__org.example_flavour" in obs[0]["QMP"],
    ),
    "downstream-name-malformed": (returned_members, lambda obs: "__flavour" in obs[0]["return"]),
    "events-unthrottled": (throttled_burst, lambda count: count > 1),
    "id-stringified": (ids, lambda obs: obs[0]["id"] == '{"k": [1, 2]}'),
    "float-id-rounded": (number_ids, lambda raw: b'"id": 0.123457}' in raw),
    "qemu-numbers": (
        number_ids,
        lambda raw: b'"id": inf}' in raw and b"stray 'E'" in raw and b'"id": 0}' not in raw,
    ),
    "quote-escape-kept": (
        lambda path: _session(path, "{'execute':'query-name','id':'it\\'s'}"),
        lambda obs: obs[0]["id"] == "it\\'s",
    ),
    "sync-without-0xff": (sync_line, lambda raw: raw.startswith(b'{"return": 7}')),
    "lost-reply": (pipelined, lambda obs: [m.get("id") for m in obs] == [1, 3]),
    "duplicate-reply": (pipelined, lambda obs: [m["id"] for m in obs] == [0, 0, 1, 1, 2, 2, 3, 3]),
    "empty-return-null": (empty_return, lambda obs: obs[0]["return"] is None),
    "error-without-desc": (errors, lambda obs: "desc" not in obs[0]["error"]),
    "wrong-error-class": (errors, lambda obs: obs[0]["error"]["class"] == "GenericError"),
    "in-band-reordered": (
        pipelined,  # the held-back negotiation reply comes late
        lambda obs: [m.get("id") for m in obs] == [0, None, 2, 1],
    ),
    "oob-no-overtake": (oob_overtake, lambda obs: obs[0] == "blocker"),
    "exec-oob-any-command": (oob_non_oob_command, lambda obs: obs[0].get("return") == {}),
    "oob-without-negotiation": (oob_not_negotiated, lambda obs: obs[0].get("return") == {}),
    "bad-event-timestamp": (event_timestamps, lambda obs: obs and not any(obs)),
    "event-inside-reply": (
        raw_lines,
        lambda raw: (
            b'{"timestamp"' in raw
            and any(
                line.startswith(b'{"return"') and b"timestamp" in line
                for line in raw.split(b"\r\n")
            )
        ),
    ),
    "no-parser-recovery": (garbage_then_command, lambda obs: len(obs[0]) == 1),
    "dies-on-garbage": (garbage_then_command, lambda obs: obs[1] is True and not obs[0]),
    "accepts-invalid-arguments": (invalid_arguments, lambda obs: "return" in obs[0]),
    "side-effect-before-error": (side_effect, lambda obs: obs[0].get("event") == "STOP"),
    "non-ascii-output": (raw_lines, lambda raw: any(b >= 0x80 for b in raw)),
    "lf-only-line-ending": (raw_lines, lambda raw: b"\r\n" not in raw.split(b"\n", 1)[1]),
    "invalid-json-output": (raw_lines, lambda raw: b", }" in raw),
    "job-illegal-transition": (
        snapshot_job,
        lambda obs: "pending" in obs[0] and "waiting" not in obs[0],
    ),
    "job-completed-with-error": (completed_mirror, lambda obs: "error" in obs[0]),
    "job-vanishes": (
        snapshot_job,
        lambda obs: obs[0][-1] == "concluded" and "j" not in obs[1],
    ),
    "snapshot-never-concludes": (
        snapshot_job,
        lambda obs: obs[0] == ["created", "running"] and "j" in obs[1],
    ),
    "job-listing-disagrees": (
        paused_mirror,
        lambda obs: obs[0][-1] == "paused" and obs[1] == "standby",
    ),
}


#: Defects of the guest agent's dialect, shown on a server in that dialect.
GUEST_AGENT = {"sync-without-0xff"}


def test_catalogue_is_complete() -> None:
    assert len(DEFECTS) >= 20
    assert {d.name for d in DEFECTS} == set(SCENARIOS)
    assert all(d.rule.startswith("Q") or d.rule in JOB_RULES for d in DEFECTS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_defect_shows_on_the_wire(name: str) -> None:
    scenario, deviates = SCENARIOS[name]
    dialect = "qga" if name in GUEST_AGENT else "qemu"
    with launch(dialect) as clean:
        expected = scenario(clean)
    with launch(dialect, defects=[name]) as broken:
        observed = scenario(broken)
    assert not deviates(expected), f"clean server already deviates: {expected!r}"
    assert deviates(observed), f"defect {name} not visible: {observed!r}"


def test_dies_on_garbage_kills_the_process() -> None:
    with launch(defects=["dies-on-garbage"], subprocess=True) as path:
        with WireClient(path) as c:
            c.greet_and_negotiate()
            c.send(b"\x01")
            assert c.read_line(timeout=2) is None and c.eof
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.socket(socket.AF_UNIX).connect(path)
            except OSError:
                return
            time.sleep(0.05)
        pytest.fail("server still accepts connections after dying")


def test_launch_names_why_the_server_did_not_start() -> None:
    """An unknown defect ends the launch at once, with the server's own reason."""
    with (
        pytest.raises(RuntimeError, match="unknown defect 'no-such-defect'"),
        launch(defects=["no-such-defect"], timeout=30.0),
    ):
        pass
