"""JSON Schema export: what it accepts and rejects, and the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conformance.qapi import load
from conformance.specs import Specs

SCHEMA = """
{ 'enum': 'Kind', 'data': [ 'file', 'null', 'raw' ] }
{ 'struct': 'FileOpts', 'data': { 'filename': 'str', '*size': 'uint8' } }
{ 'struct': 'RawOpts', 'data': { 'file': 'Ref' } }
{ 'union': 'Opts', 'base': { 'driver': 'Kind', '*node-name': 'str' },
  'discriminator': 'driver', 'data': { 'file': 'FileOpts', 'raw': 'RawOpts' } }
{ 'alternate': 'Ref', 'data': { 'definition': 'Opts', 'reference': 'str' } }
{ 'command': 'add', 'data': 'Opts', 'boxed': true }
{ 'command': 'count', 'data': { 'n': 'int16', '*big': 'uint64', '*x': 'number' },
  'returns': 'FileOpts' }
{ 'command': 'loose', 'data': { 'a': 'int' }, 'gen': false }
{ 'command': 'ping' }
{ 'event': 'DONE', 'data': { 'ok': 'bool' } }
{ 'event': 'BARE' }
"""


@pytest.fixture
def specs(write_schema: Callable[..., Path]) -> Specs:
    return Specs(load(write_schema(SCHEMA)))


def test_integer_widths_are_ranges(specs: Specs) -> None:
    assert specs.errors("arguments", "count", {"n": 32767, "big": 2**64 - 1, "x": 1}) == []
    assert specs.errors("arguments", "count", {"n": 32768}) == [
        "n: 32768 is greater than the maximum of 32767"
    ]
    assert specs.errors("arguments", "count", {"n": -32769}) == [
        "n: -32769 is less than the minimum of -32768"
    ]
    assert specs.errors("arguments", "count", {"n": 1, "big": -1}) == [
        "big: -1 is less than the minimum of 0"
    ]
    assert specs.errors("arguments", "count", {"n": 1.5}) == ["n: 1.5 is not of type 'integer'"]
    assert specs.errors("arguments", "count", {}) == ["(root): 'n' is a required property"]
    assert specs.errors("arguments", "count", {"n": 1, "m": 2}) == [
        "(root): Additional properties are not allowed ('m' was unexpected)"
    ]


def test_recursive_union_and_alternate(specs: Specs) -> None:
    good = {"driver": "raw", "file": {"driver": "raw", "file": {"driver": "file", "filename": "x"}}}
    assert specs.errors("arguments", "add", good) == []
    assert specs.errors("arguments", "add", {"driver": "raw", "file": "node0"}) == []
    assert specs.errors("arguments", "add", {"driver": "null"}) == []  # branch-less value
    assert specs.errors("arguments", "add", {"driver": "null", "filename": "x"}) == [
        "(root): Additional properties are not allowed ('filename' was unexpected)"
    ]
    assert specs.errors("arguments", "add", {"driver": "floppy"}) == [
        "driver: 'floppy' is not one of ['file', 'raw', 'null']"
    ]
    deep = {"driver": "raw", "file": {"driver": "file", "filename": "x", "size": 256}}
    assert specs.errors("arguments", "add", deep) == [
        "file.size: 256 is greater than the maximum of 255"
    ]
    assert specs.errors("arguments", "add", {"driver": "raw", "file": 7}) == [
        "file: 7 is not valid under any of the given schemas"
    ]


def test_gen_false_takes_extra_members_and_no_args_takes_none(specs: Specs) -> None:
    assert specs.errors("arguments", "loose", {"a": 1, "extra": [1]}) == []
    assert specs.errors("arguments", "ping", {}) == []
    assert specs.errors("arguments", "ping", {"a": 1}) != []
    assert specs.errors("return", "ping", {}) == []
    assert specs.errors("return", "ping", {"a": 1}) != []
    assert specs.errors("data", "BARE", {}) == []
    assert specs.errors("data", "DONE", {"ok": "yes"}) == ["ok: 'yes' is not of type 'boolean'"]


@pytest.mark.parametrize(
    ("timestamp", "valid"),
    [
        ({"seconds": 1795307112, "microseconds": 408789}, True),
        ({"seconds": -1, "microseconds": -1}, True),
        ({"seconds": 0, "microseconds": 999999}, True),
        ({"seconds": 5, "microseconds": 1000000}, False),
        ({"seconds": -1, "microseconds": 5}, False),
        ({"seconds": 5}, False),
        ({"seconds": 5, "microseconds": 1, "nanoseconds": 1}, False),
    ],
)
def test_event_timestamps(specs: Specs, timestamp: dict[str, int], valid: bool) -> None:
    event = {"event": "DONE", "data": {"ok": True}, "timestamp": timestamp}
    assert specs.wire_validator("event").is_valid(event) is valid


def test_wire_messages_by_dialect(specs: Specs) -> None:
    request = specs.wire_validator("request", "qemu")
    assert request.is_valid({"execute": "ping", "id": [1, {"a": None}]})
    assert request.is_valid({"exec-oob": "ping"})
    assert not request.is_valid({"execute": "ping", "exec-oob": "ping"})
    assert not request.is_valid({"execute": "ping", "control": {"run-oob": True}})
    draft = specs.wire_validator("request", "oob-draft")
    assert draft.is_valid({"execute": "ping", "control": {"run-oob": True}})
    assert not draft.is_valid({"exec-oob": "ping"})
    error = specs.wire_validator("error")
    assert error.is_valid({"id": 1, "error": {"class": "GenericError", "desc": "x"}})
    assert not error.is_valid({"error": {"class": "GenericError"}})
    assert not error.is_valid({"error": {"class": "Whoops", "desc": "x"}})
    greeting = specs.wire_validator("greeting", "qmp-1.0")
    assert greeting.is_valid({"QMP": {"version": {}, "capabilities": []}})
    assert not greeting.is_valid({"QMP": {"version": {}, "capabilities": ["oob"]}})


def test_export_writes_valid_standalone_documents(
    write_schema: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "schema",
            str(write_schema(SCHEMA)),
            "--jsonschema",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.json"))
    assert "commands/add.arguments.schema.json" in files
    assert "events/DONE.data.schema.json" in files
    assert "wire/qga/request.schema.json" in files and "wire/qga/greeting.schema.json" not in files
    for rel in files:
        doc = json.loads((out / rel).read_text())
        Draft202012Validator.check_schema(doc)
    add = json.loads((out / "commands/add.arguments.schema.json").read_text())
    assert set(add["$defs"]) == {"Opts", "Kind", "FileOpts", "RawOpts", "Ref"}
    assert Draft202012Validator(add).is_valid({"driver": "raw", "file": "n"})
