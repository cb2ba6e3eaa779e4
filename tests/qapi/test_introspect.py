"""The introspection writer: masked names, QEMU's shape, and a lossless round trip
for everything introspection can carry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conformance.qapi import load
from conformance.qapi.introspect import introspect
from conformance.specs import Specs
from tests.qapi.test_specs import SCHEMA


def test_masked_introspection_round_trip(write_schema: Callable[..., Path]) -> None:
    source = load(write_schema(SCHEMA))
    entries = introspect(source)
    by_name = {e["name"]: e for e in entries}
    # ABI names stay, type names become numbers, widths collapse to int
    assert by_name["add"]["meta-type"] == "command"
    assert by_name["add"]["arg-type"].isdigit()
    count_args = by_name[by_name["count"]["arg-type"]]
    assert [(m["name"], m["type"], "default" in m) for m in count_args["members"]] == [
        ("n", "int", False),
        ("big", "int", True),
        ("x", "number", True),
    ]
    union = by_name[by_name["add"]["arg-type"]]
    assert union["tag"] == "driver" and {v["case"] for v in union["variants"]} == {"file", "raw"}
    assert by_name[by_name["ping"]["arg-type"]] == {
        "name": by_name["ping"]["arg-type"],
        "meta-type": "object",
        "members": [],
    }

    again = load(entries)
    assert again.masked and set(again.commands) == set(source.commands)
    assert introspect(again) == entries
    # the same values are valid or invalid through either model, apart from
    # the integer widths that introspection cannot carry
    a, b = Specs(source), Specs(again)
    for value in (
        {"driver": "raw", "file": "n"},
        {"driver": "null", "x": 1},
        {"driver": "file", "filename": "f", "size": 3},
    ):
        assert (a.errors("arguments", "add", value) == []) == (
            b.errors("arguments", "add", value) == []
        )
    assert a.errors("arguments", "count", {"n": 40000}) != []
    assert b.errors("arguments", "count", {"n": 40000}) == []
