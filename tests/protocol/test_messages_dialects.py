"""Message builders/classifiers and the dialect registry."""

from __future__ import annotations

import dataclasses

import pytest

from conformance.protocol import (
    DIALECTS,
    MISSING,
    QEMU,
    QGA,
    classify,
    encode,
    error_response,
    event,
    get_dialect,
    greeting,
    return_response,
    shape_problems,
    version_info,
)
from conformance.protocol.dialects import QEMU_7_2_VERSION
from conformance.protocol.messages import (
    bad_downstream_name,
    downstream_problems,
    without_downstream,
)


def test_builders_match_qemu_bytes() -> None:
    assert encode(return_response({}, "s1")) == b'{"return": {}, "id": "s1"}\r\n'
    assert encode(return_response({})) == b'{"return": {}}\r\n'
    assert encode(return_response({}, None)) == b'{"return": {}, "id": null}\r\n'
    assert encode(error_response("GenericError", "d", 2)) == (
        b'{"id": 2, "error": {"class": "GenericError", "desc": "d"}}\r\n'
    )
    stamp = {"seconds": 1795307112, "microseconds": 408789}
    assert encode(event("STOP", when=stamp)) == (
        b'{"timestamp": {"seconds": 1795307112, "microseconds": 408789}, "event": "STOP"}\r\n'
    )
    assert event("RESET", {"guest": False}, when=1.5)["data"] == {"guest": False}
    assert event("X", when=1.25)["timestamp"] == {"seconds": 1, "microseconds": 250000}
    assert encode(greeting(QEMU_7_2_VERSION, ["oob"])) == (
        b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
        b'"package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}\r\n'
    )
    assert version_info(1, 2, 3)["qemu"] == {"micro": 3, "minor": 2, "major": 1}
    assert repr(MISSING) == "MISSING" and not MISSING


@pytest.mark.parametrize(
    ("msg", "kind"),
    [
        ({"QMP": {"version": {}, "capabilities": []}}, "greeting"),
        ({"return": {}}, "return"),
        ({"id": 1, "error": {"class": "a", "desc": "b"}}, "error"),
        ({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "E"}, "event"),
        ({"foo": 1}, "unknown"),
        ([1], "unknown"),
    ],
)
def test_classify(msg: object, kind: str) -> None:
    assert classify(msg) == kind  # type: ignore[arg-type]
    assert (shape_problems(msg) == []) is (kind != "unknown")  # type: ignore[arg-type]


def test_shape_problems() -> None:
    assert shape_problems({"return": {}, "extra": 1}) == ["unexpected member 'extra'"]
    assert shape_problems({"return": {}, "__com.x": 1}) == []
    assert shape_problems({"error": {"class": 1}}) == [
        "error.class is not a string",
        "error.desc is not a string",
    ]
    bad_time = {"event": "E", "timestamp": {"seconds": 1, "microseconds": 10**6}}
    assert shape_problems(bad_time) == ["timestamp out of range"]
    assert shape_problems({"event": "E", "timestamp": {"seconds": -1, "microseconds": -1}}) == []
    assert shape_problems({"QMP": {"version": 1, "capabilities": [1]}}) == [
        "QMP.version is not an object",
        "QMP.capabilities is not an array of strings",
    ]


def test_dialect_registry() -> None:
    assert set(DIALECTS) == {"qemu", "oob-draft", "qmp-1.0", "qga"}
    assert get_dialect("qemu") is QEMU
    with pytest.raises(KeyError, match="known"):
        get_dialect("nope")
    assert (
        QEMU.supports_oob and QEMU.queue_limit_for(True) == 8 and QEMU.queue_limit_for(False) == 1
    )
    assert not QGA.greeting and not QGA.negotiation and QGA.sync_sentinel == b"\xff"
    assert QGA.line_terminator == b"\n" and not QGA.supports_oob
    assert not DIALECTS["qmp-1.0"].capabilities
    assert DIALECTS["oob-draft"].oob_style == "control"
    with pytest.raises(dataclasses.FrozenInstanceError):
        QEMU.greeting = False  # type: ignore[misc]
    assert hash(QEMU) == hash(dataclasses.replace(QEMU))


# -- downstream names (Q38) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("__com.redhat_drive-add", False),
        ("__org.example_x", False),
        ("__flavour", True),  # no domain and no underscore after it
        ("__com.redhat_", True),  # a prefix with nothing after it
        ("plain", False),  # not downstream at all
    ],
)
def test_downstream_name_form(name: str, bad: bool) -> None:
    assert bad_downstream_name(name) is bad


def test_downstream_problems_anywhere_and_in_the_greeting() -> None:
    reply = {"return": {"a": [{"__x": 1}], "__com.example_ok": 2}, "id": 1}
    assert downstream_problems(reply) == ["member '__x' is not a __RFQDN_ name"]
    greeting = {"QMP": {"version": {}, "capabilities": [], "__com.example_v": 1}}
    assert downstream_problems(greeting) == [
        "the greeting has a downstream member '__com.example_v'"
    ]


def test_output_is_judged_without_well_formed_downstream_members() -> None:
    from conformance.qapi import load
    from conformance.specs import Specs

    schema = load(
        [
            {"name": "q", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
            {"name": "0", "meta-type": "object", "members": []},
            {"name": "1", "meta-type": "object", "members": [{"name": "a", "type": "int"}]},
            {"name": "int", "meta-type": "builtin", "json-type": "int"},
        ]
    )
    specs = Specs(schema)
    assert specs.errors("return", "q", {"a": 1, "__com.example_b": {"c": 2}}) == []
    assert specs.errors("return", "q", {"a": 1, "__b": 2}) != []
    # Arguments are input: a downstream member there is as unknown as any other.
    assert specs.errors("arguments", "q", {"__com.example_b": 1}) != []
    assert without_downstream({"x": [{"__com.example_y": 1, "z": 2}]}) == {"x": [{"z": 2}]}
