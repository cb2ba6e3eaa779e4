"""The diff on real QEMU introspection (7.2 -> 10.0, libvirt's captures)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.qapi import load
from reports.diff import diff

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def real_changes() -> dict[str, tuple[str, str, str]]:
    corpus = Path(__file__).parents[2] / ".." / "shared" / "corpus" / "introspection"
    if not (corpus / "qemu-7.2.json").is_file() or not (corpus / "qemu-10.0.json").is_file():
        pytest.skip("corpus not available")
    report = diff(load(corpus / "qemu-7.2.json"), load(corpus / "qemu-10.0.json"))
    return {c.path: (c.category, c.direction, c.rule) for c in report.changes}


def test_removed_migrate_arguments_are_breaking(
    real_changes: dict[str, tuple[str, str, str]],
) -> None:
    """Found by hand: 7.2's ``migrate`` takes uri, blk, inc, detach, resume; 10.0's
    takes uri, channels, detach, resume (blk/inc went in 9.1).  7.2 did not yet
    mark them deprecated, so from 7.2's point of view this is a plain removal."""
    assert real_changes["migrate.arguments.blk"] == ("breaking", "send", "send.remove")
    assert real_changes["migrate.arguments.inc"] == ("breaking", "send", "send.remove")
    assert real_changes["migrate.arguments.channels"] == ("compatible", "send", "send.add")
    assert real_changes["migrate.arguments.uri"] == ("compatible", "send", "send.make-optional")


def test_removed_deprecated_event_is_a_deprecated_removal(
    real_changes: dict[str, tuple[str, str, str]],
) -> None:
    """Found by hand: 7.2 lists MEM_UNPLUG_ERROR with features [deprecated]; 10.0 has no such
    event."""
    assert real_changes["MEM_UNPLUG_ERROR"] == (
        "deprecated-removal",
        "receive",
        "policy.deprecated",
    )


def test_unchanged_release_has_no_changes(corpus_introspection: Callable[[str], Path]) -> None:
    schema = load(corpus_introspection("10.0"))
    entries = json.loads(corpus_introspection("10.0").read_text())
    assert diff(schema, load(list(reversed(entries)))).changes == []


def test_every_real_path_starts_at_a_command_or_event(
    real_changes: dict[str, tuple[str, str, str]], corpus_introspection: Callable[[str], Path]
) -> None:
    old, new = load(corpus_introspection("7.2")), load(corpus_introspection("10.0"))
    names = old.commands.keys() | new.commands.keys() | old.events.keys() | new.events.keys()
    for path in real_changes:
        root = path.split(".", 1)[0]
        assert root in names, path
        assert not any(part.isdigit() for part in path.split(".")), "a masked name leaked"
