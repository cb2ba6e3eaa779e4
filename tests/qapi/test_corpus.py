"""Every real schema in ../shared/corpus loads, with counts that match a count
taken independently from the raw files (a regex over top-level expressions,
or the meta-types of introspection), not from the loader itself."""

from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.qapi import load
from conformance.specs import Specs
from tests.qapi.conftest import CORPUS

SOURCE_SCHEMAS = [
    "qapi/v1.1.0/qapi-schema.json",
    "qapi/v1.1.0/qapi-schema-guest.json",
    "qapi/v1.1.0/qapi-schema-test.json",
    "qapi/v2.12.0/qapi/qapi-schema.json",
    "qapi/v2.12.0/qga/qapi-schema.json",
    "qapi/v7.2.0/qapi/qapi-schema.json",
    "qapi/v7.2.0/qga/qapi-schema.json",
    "qapi/v7.2.0/storage-daemon/qapi/qapi-schema.json",
    "qapi/v10.2.0/qapi/qapi-schema.json",
    "qapi/v10.2.0/qga/qapi-schema.json",
    "qapi/v10.2.0/storage-daemon/qapi/qapi-schema.json",
]
# Some real files indent a top-level expression; 'type' is only a metatype at
# column 0 (indented, it is the 'type' key of a member definition).
_TOP = re.compile(
    r"^(?:[ \t]*\{\s*'(struct|union|alternate|enum|command|event)'"
    r"|\{\s*'(type)')",
    re.M,
)
# QEMU 1.7 to 2.3 wrote alternates as unions with an empty discriminator,
# on the line after the name.
_ANONYMOUS_UNION = re.compile(r"^[ \t]*\{\s*'union'[^\n]*\n\s*'discriminator':\s*\{\}", re.M)


def _hand_count(files: list[str]) -> dict[str, int]:
    counts = collections.Counter()
    for f in files:
        text = Path(f).read_text()
        for groups in _TOP.findall(text):
            kind = groups[0] or groups[1]
            counts["structs" if kind in ("struct", "type") else kind + "s"] += 1
        anonymous = len(_ANONYMOUS_UNION.findall(text))
        counts["unions"] -= anonymous
        counts["alternates"] += anonymous
    return {
        k: counts[k] for k in ("commands", "events", "structs", "unions", "alternates", "enums")
    }


@pytest.mark.corpus
@pytest.mark.parametrize("rel", SOURCE_SCHEMAS)
def test_source_tree_counts_match_hand_count(corpus: Path, rel: str) -> None:
    schema = load(corpus / rel)
    summary = schema.summary()
    assert {k: summary[k] for k in _hand_count(schema.files)} == _hand_count(schema.files)
    # every command and event has a JSON Schema that compiles
    specs = Specs(schema)
    for name in schema.commands:
        specs.validator("arguments", name)
        specs.validator("return", name)
    for name in schema.events:
        specs.validator("data", name)


@pytest.mark.corpus
def test_v1_1_needs_and_gets_lenient_mode(corpus: Path) -> None:
    schema = load(corpus / "qapi/v1.1.0")
    assert schema.origin == "qapi-lenient"
    with pytest.raises(Exception, match=r"qapi-schema\.json:1163:3: expected ','"):
        load(corpus / "qapi/v1.1.0", leniency="strict")


@pytest.mark.corpus
def test_v7_2_tree_includes_every_module(corpus: Path) -> None:
    schema = load(corpus / "qapi/v7.2.0")
    listed = {
        ln
        for ln in (corpus / "qapi/v7.2.0/FILES.txt").read_text().split()
        if ln.startswith("qapi/") and ln.endswith(".json")
    }
    read = {str(Path(f).relative_to(corpus / "qapi/v7.2.0")) for f in schema.files}
    assert read == listed
    assert schema.commands["blockdev-add"].boxed
    assert schema.summary()["allow-oob"] == [
        "migrate-pause",
        "migrate-recover",
        "query-yank",
        "yank",
    ]


@pytest.mark.corpus
@pytest.mark.parametrize(
    "rel",
    [
        "qapi/prehistory-2011/01-list4-first/qmp-schema.json",
        "qapi/prehistory-2011/03-list3-last/qmp-schema.json",
    ],
)
def test_2011_list_form_counts(corpus: Path, rel: str) -> None:
    text = (corpus / rel).read_text()
    code = re.sub(r"#[^\n]*", "", text)
    commands = len(re.findall(r"^\[\s*'", code, re.M))
    definitions = re.findall(r"^\{\s*'([A-Za-z0-9_]+)'\s*:\s*([\[{])", code, re.M)
    events = sum(1 for name, opener in definitions if name.isupper() and opener == "{")
    enums = sum(1 for _, opener in definitions if opener == "[")
    structs = len(definitions) - events - enums
    schema = load(corpus / rel)
    summary = schema.summary()
    assert schema.origin == "legacy-2011"
    assert (summary["commands"], summary["events"], summary["enums"]) == (commands, events, enums)
    # nested anonymous structs become implicit types, so named ones are counted
    assert summary["structs"] == structs


@pytest.mark.corpus
@pytest.mark.parametrize("version", ["4.2", "6.2", "7.2", "8.2", "10.0"])
def test_introspection_counts(corpus: Path, version: str) -> None:
    path = corpus / f"introspection/qemu-{version}.json"
    raw = json.loads(path.read_text())
    entries = raw["return"] if isinstance(raw, dict) else raw
    metas = collections.Counter(e["meta-type"] for e in entries)
    unions = sum(1 for e in entries if e["meta-type"] == "object" and "tag" in e)
    schema = load(path)
    summary = schema.summary()
    assert schema.masked
    assert summary["commands"] == metas["command"]
    assert summary["events"] == metas["event"]
    assert summary["unions"] == unions
    assert summary["structs"] == metas["object"] - unions
    assert summary["enums"] == metas["enum"]
    assert summary["alternates"] == metas["alternate"]
    oob = sorted(e["name"] for e in entries if e.get("allow-oob"))
    assert summary["allow-oob"] == oob


def _releases() -> list[str]:
    root = CORPUS / "releases"
    if not root.is_dir():
        return []
    return sorted(
        (p.name for p in root.iterdir() if p.is_dir()),
        key=lambda name: [int(part) for part in name.split(".")],
    )


@pytest.mark.corpus
@pytest.mark.parametrize("release", _releases() or ["(no corpus)"])
def test_every_release_loads_with_hand_counts(corpus: Path, release: str) -> None:
    """The schema of every QEMU release, 1.0 to today, loads; what only its
    own era accepted is named in ``tolerated``, and nothing later needs it."""
    schema = load(corpus / "releases" / release)
    summary = schema.summary()
    assert {k: summary[k] for k in _hand_count(schema.files)} == _hand_count(schema.files)
    major, minor = (int(part) for part in release.split(".")[:2])
    if (major, minor) >= (2, 5):
        assert schema.tolerated == []
    specs = Specs(schema)
    for name in schema.commands:
        specs.validator("arguments", name)


@pytest.mark.corpus
def test_the_cli_says_in_one_line_what_an_old_release_needed(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", str(corpus / "releases" / "2.0.0"), "--summary"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "'**' read as 'any'" in warnings[0], warnings
    assert main(["schema", str(corpus / "releases" / "10.2.0"), "--summary"]) == 0
    assert "warning" not in capsys.readouterr().err
