"""The diff engine, rule by rule, on the hand-written pair in schemas/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.qapi import Schema, load
from conformance.qapi.introspect import introspect
from reports.diff import diff
from reports.rules import RULES

B, C, IO, DR, U = "breaking", "compatible", "introspection-only", "deprecated-removal", "unstable"

#: Every change old.json -> new.json must produce: path -> (class, direction, rule).
EXPECTED: dict[str, tuple[str, str, str]] = {
    # send direction (command arguments)
    "drop-me": (B, "send", "send.remove"),
    "new-cmd": (C, "send", "send.add"),
    "keep.arguments.old-opt": (B, "send", "send.remove"),
    "keep.arguments.mode:old-mode": (B, "send", "send.remove"),
    "keep.arguments.mode:new-mode": (C, "send", "send.add"),
    "keep.arguments.new-mandatory": (B, "send", "send.add-mandatory"),
    "keep.arguments.new-opt": (C, "send", "send.add"),
    "keep.arguments.flag": (B, "send", "send.make-mandatory"),
    "keep.arguments.must": (C, "send", "send.make-optional"),
    "keep.arguments.count": (B, "send", "both.type-change"),
    "keep.arguments.level": (B, "send", "send.narrow"),
    "alt.arguments.a|boolean": (C, "send", "send.add"),
    "alt.arguments.b": (IO, "send", "send.alternate-of"),
    "alt.arguments.c|number": (B, "send", "send.remove"),
    "blk-add.arguments.cache.direct": (B, "send", "send.remove"),
    "blk-add.arguments.driver:ssh": (C, "send", "send.add"),
    "blk-add.arguments.node-name": (IO, "send", "both.reshape"),
    "blk-add.arguments[driver=nbd].export": (B, "send", "send.make-mandatory"),
    "oob-cmd": (B, "send", "command.oob"),
    "tree.arguments.root.extra": (C, "send", "send.add"),
    # receive direction (returns, event data)
    "GONE_EVENT": (B, "receive", "receive.remove-event"),
    "NEW_EVENT": (C, "receive", "receive.add"),
    "STATE_CHANGED.data.new": (C, "receive", "receive.add"),
    "STATE_CHANGED.data.old": (B, "receive", "receive.remove"),
    "STATE_CHANGED.data.state:gone": (C, "receive", "receive.remove-unreachable"),
    "STATE_CHANGED.data.state:suspended": (C, "receive", "verdict.receive-enum-value"),
    "keep.returns.added": (C, "receive", "receive.add"),
    "keep.returns.gone-member": (B, "receive", "receive.remove"),
    "keep.returns.always": (B, "receive", "receive.make-optional"),
    "keep.returns.sometimes": (C, "receive", "receive.add"),
    "keep.returns.kind": (IO, "receive", "verdict.receive-str-to-enum"),
    "keep.returns.n": (B, "receive", "receive.new-json-kind"),
    "keep.returns.state:gone": (C, "receive", "receive.remove-unreachable"),
    "keep.returns.state:suspended": (C, "receive", "verdict.receive-enum-value"),
    "alt.returns.q|number": (C, "receive", "receive.narrow"),
    "alt.returns.r": (B, "receive", "receive.new-json-kind"),
    "tree.returns.extra": (C, "receive", "receive.add"),
    # one type (Shared) used in both directions is judged by both columns
    "both-cmd.arguments.b": (B, "send", "send.remove"),
    "both-cmd.returns.b": (B, "receive", "receive.remove"),
    "both-cmd.arguments.c": (C, "send", "send.add"),
    "both-cmd.returns.c": (C, "receive", "receive.add"),
    "both-cmd.arguments.e:blue": (C, "send", "send.add"),
    "both-cmd.returns.e:blue": (C, "receive", "verdict.receive-enum-value"),
    # features: deprecated removals, unstable things, new deprecations
    "drop-deprecated": (DR, "send", "policy.deprecated"),
    "GONE_DEP_EVENT": (DR, "receive", "policy.deprecated"),
    "keep.arguments.dep-opt": (DR, "send", "policy.deprecated"),
    "drop-unstable": (U, "send", "policy.unstable"),
    "x-drop-experimental": (U, "send", "policy.unstable"),
    "keep.arguments.x-exp": (U, "send", "policy.unstable"),
    "keep": (C, "send", "both.feature"),
    "x-tweak.arguments.b": (U, "send", "send.remove"),
    "x-tweak.arguments.c": (U, "send", "send.add-mandatory"),
    "tune.arguments.a": (U, "send", "both.type-change"),
    "tune.arguments.b": (U, "send", "send.remove"),
    # a struct that became a union: its branches add members to existing tag values
    "set-job.arguments.type": (B, "send", "send.narrow"),
    "set-job.arguments[type=mirror].synced": (B, "send", "send.add-mandatory"),
    "query-jobs.returns[].type": (IO, "receive", "verdict.receive-str-to-enum"),
    "query-jobs.returns[][type=mirror].synced": (C, "receive", "receive.add"),
}


def triples(old: Schema, new: Schema) -> dict[str, tuple[str, str, str]]:
    report = diff(old, new)
    found: dict[str, tuple[str, str, str]] = {
        c.path: (c.category, c.direction, c.rule) for c in report.changes
    }
    assert len(found) == len(report.changes), "one change per path in this fixture"
    return found


def test_every_change_classified_as_the_rules_say(schema_pair: tuple[Schema, Schema]) -> None:
    found = triples(*schema_pair)
    assert {p: found.get(p) for p in EXPECTED} == EXPECTED
    assert set(found) - set(EXPECTED) == set(), "unexpected changes reported"


def test_every_change_cites_a_known_rule_and_says_why(schema_pair: tuple[Schema, Schema]) -> None:
    report = diff(*schema_pair)
    for change in report.changes:
        assert change.rule in RULES
        assert change.reason
        assert change.to_dict()["citation"].startswith("§3.")


def test_identical_schemas_have_no_changes(schema_pair: tuple[Schema, Schema]) -> None:
    old, new = schema_pair
    assert diff(old, old).changes == []
    assert diff(new, new).changes == []


def test_reverse_diff_swaps_additions_and_removals(schema_pair: tuple[Schema, Schema]) -> None:
    old, new = schema_pair
    back = {c.path: c for c in diff(new, old).changes}
    assert back["drop-me"].rule == "send.add"
    assert back["new-cmd"].category == "breaking"
    assert back["keep.arguments.new-mandatory"].rule == "send.remove"
    assert back["keep.arguments.flag"].rule == "send.make-optional"
    assert back["keep.returns.always"].rule == "receive.add"
    assert back["blk-add.arguments.node-name"].rule == "both.reshape"
    assert back["alt.arguments.c"].rule == "send.alternate-of"


def test_counts_follow_the_changes(schema_pair: tuple[Schema, Schema]) -> None:
    report = diff(*schema_pair)
    counts = report.counts()
    assert sum(counts.values()) == len(report.changes)
    assert counts["breaking"] == sum(1 for v in EXPECTED.values() if v[0] == B)
    assert list(counts) == [
        "breaking",
        "deprecated-removal",
        "unstable",
        "introspection-only",
        "compatible",
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_masked_introspection_diffs_like_the_source(
    schema_pair: tuple[Schema, Schema], masked: Callable[[Schema, int], Schema], seed: int
) -> None:
    """Type names masked to numbers, numbered differently on each side, entries
    shuffled: structural matching must still find exactly the same changes."""
    old, new = schema_pair
    old_masked, new_masked = masked(old, seed), masked(new, seed + 100)
    assert old_masked.masked and new_masked.masked
    # The same type got different numbers: matching by name would pair wrong types.
    old_keep, new_keep = old_masked.commands["keep"], new_masked.commands["keep"]
    assert old_keep.arg_type != new_keep.arg_type or old_keep.ret_type != new_keep.ret_type
    assert triples(old_masked, new_masked) == triples(old, new)


def test_source_against_masked_introspection(
    schema_pair: tuple[Schema, Schema], masked: Callable[[Schema, int], Schema]
) -> None:
    old, new = schema_pair
    assert triples(old, masked(new, 7)) == triples(old, new)
    assert diff(old, masked(old, 8)).changes == []


def test_integer_widths_judged_only_when_both_sides_know_them(tmp_path: Path) -> None:
    """§3.3: widths exist only in source; a narrower send type rejects old values."""
    base = tmp_path
    (base / "a.json").write_text("{ 'command': 'set', 'data': { 'n': 'int32' } }\n")
    (base / "b.json").write_text("{ 'command': 'set', 'data': { 'n': 'uint8' } }\n")
    a, b = load(base / "a.json"), load(base / "b.json")
    [change] = diff(a, b).changes
    assert (change.path, change.category, change.rule) == ("set.arguments.n", B, "send.narrow")
    [widened] = diff(b, a).changes
    assert widened.category == C
    assert diff(load(introspect(a)), load(introspect(b))).changes == []
