"""The generators against our own JSON Schema and re-checks (no QEMU needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

import strategies
from conformance.qapi import load
from conformance.qapi.model import Schema
from conformance.specs import Specs

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
FAST = settings(
    max_examples=40, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


def _load(rel: str) -> Schema:
    path = CORPUS / rel
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return load(str(path))


@pytest.fixture(scope="module", params=["introspection/qemu-7.2.json", "qapi/v7.2.0"])
def schema(request: pytest.FixtureRequest) -> Schema:
    return _load(request.param)


@pytest.mark.corpus
@pytest.mark.parametrize(
    "command",
    [
        "blockdev-add",
        "blockdev-reopen",
        "object-add",
        "device_add",
        "qom-set",
        "migrate-set-parameters",
    ],
)
def test_valid_arguments_match_our_json_schema(schema: Schema, command: str) -> None:
    specs = Specs(schema)

    @FAST
    @given(strategies.arguments(schema, command))
    def check(args: dict[str, Any]) -> None:
        assert specs.errors("arguments", command, args) == []
        json.dumps(args)  # every value is encodable JSON

    check()


@pytest.mark.corpus
def test_recursive_arguments_nest_and_stay_bounded(schema: Schema) -> None:
    def depth(v: Any) -> int:
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        return 0

    def nested_options(v: Any) -> bool:
        # A BlockdevOptions inside a BlockdevOptions: a dict with a driver below the top.
        return any(isinstance(x, dict) and "driver" in x for x in v.values())

    deep = find(
        strategies.arguments(schema, "blockdev-add"),
        nested_options,
        settings=settings(max_examples=3000, database=None),
    )
    assert nested_options(deep)

    @FAST
    @given(strategies.arguments(schema, "blockdev-add", depth=1))
    def shallow(v: dict[str, Any]) -> None:
        assert not nested_options(v)  # the budget bounds the recursion

    shallow()


@pytest.mark.corpus
def test_integer_widths_hit_their_edges() -> None:
    source = _load("qapi/v7.2.0")
    edge = find(
        strategies.values(source, "uint8"), lambda v: v == 255, settings=settings(database=None)
    )
    assert edge == 255
    intro = _load("introspection/qemu-7.2.json")

    # An introspected int stays where every hidden width agrees.
    @FAST
    @given(strategies.values(intro, "int"))
    def check(v: int) -> None:
        assert 0 <= v <= 127

    check()


@pytest.mark.corpus
def test_invalid_arguments_keep_their_label(schema: Schema) -> None:
    @FAST
    @given(
        st.sampled_from(
            ["blockdev-add", "qom-list", "block-job-set-speed", "object-add", "stop"]
        ).flatmap(lambda c: strategies.invalid_arguments(schema, c))
    )
    def check(ex: strategies.Invalid) -> None:
        assert ex.rule == "Q33"
        assert strategies.label_still_holds(schema, ex), ex

    check()


@pytest.mark.corpus
@pytest.mark.parametrize("label", sorted(strategies.ARGUMENT_LABELS))
def test_shrunk_negatives_still_break_their_rule(label: str) -> None:
    """Shrink toward the smallest example of each label; it must still hold."""
    schema = _load("qapi/v7.2.0")
    # watchdog-set-action's members are all enums: every label has a command
    # where it is common, so the search does not hang on one union's odds.
    commands = [
        "blockdev-add",
        "block-job-set-speed",
        "qom-list",
        "object-add",
        "watchdog-set-action",
    ]
    found = find(
        st.sampled_from(commands).flatmap(lambda c: strategies.invalid_arguments(schema, c)),
        lambda ex: ex.label == label,
        # Derandomized and without the timing health checks: the same search
        # on a loaded machine (CI runs servers beside it) as on a quiet one.
        settings=settings(
            max_examples=1000,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert strategies.label_still_holds(schema, found), found
    # Removing the violation must make the re-check fail: the check is not vacuous.
    if label == "missing-member":
        node = found.arguments
        for step in found.path:
            node = node[step]
        node[found.detail] = None
        assert not strategies.label_still_holds(schema, found)


@pytest.mark.corpus
def test_request_level_negatives(schema: Schema) -> None:
    seen: set[str] = set()

    @settings(
        max_examples=300, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategies.invalid_requests(schema, ["query-version", "yank", "qom-list"]))
    def check(ex: strategies.Invalid) -> None:
        seen.add(ex.label)
        assert strategies.label_still_holds(schema, ex), ex

    check()
    assert {
        "not-an-object",
        "execute-not-string",
        "arguments-not-object",
        "unknown-top-level-member",
        "exec-oob-without-oob",
        "duplicate-key",
    } <= seen


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("negotiated", "oob", "expected"),
    [
        (False, False, {"command-before-negotiation", "unknown-capability"}),
        (True, False, {"unknown-command", "repeat-negotiation", "exec-oob-without-oob"}),
        (True, True, {"unknown-command", "repeat-negotiation", "exec-oob-not-allowed"}),
    ],
)
def test_negatives_follow_the_connection_state(
    schema: Schema, negotiated: bool, oob: bool, expected: set[str]
) -> None:
    """The labels a state allows are drawn, the others never are."""
    seen: set[str] = set()
    labels = sorted({*strategies.REQUEST_RULES, *strategies.NEGOTIATION_RULES})

    @settings(
        max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        strategies.invalid_requests(
            schema,
            ["query-version", "qmp_capabilities", "yank"],
            negotiated=negotiated,
            oob=oob,
            labels=labels,
        )
    )
    def check(ex: strategies.Invalid) -> None:
        seen.add(ex.label)
        assert strategies.label_still_holds(schema, ex), ex
        if ex.label in strategies.ERROR_CLASSES:
            assert ex.error_class == strategies.ERROR_CLASSES[ex.label]
        elif ex.raw is None and isinstance(ex.message, dict):
            assert ex.error_class == "GenericError"

    check()
    assert expected <= seen
    if not negotiated:
        assert seen == expected
    assert ("exec-oob-without-oob" in seen) != oob or not negotiated


def test_raw_inputs_break_their_rule() -> None:
    seen: set[str] = set()

    @settings(
        max_examples=200, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategies.raw_inputs(token_limit=4096, depth_limit=64))
    def check(ex: strategies.Invalid) -> None:
        seen.add(ex.label)
        assert ex.raw is not None
        assert strategies.label_still_holds(Schema(), ex, token_limit=4096, depth_limit=64), ex

    check()
    assert seen == set(strategies.RAW_RULES)


@pytest.mark.corpus
def test_requests_in_each_dialect(schema: Schema) -> None:
    @FAST
    @given(strategies.requests(schema, ["yank", "query-yank"], dialect="oob-draft", oob=True))
    def draft(msg: dict[str, Any]) -> None:
        assert "exec-oob" not in msg
        assert msg.get("control", {"run-oob": True}) == {"run-oob": True}

    draft()
    oob = find(
        strategies.requests(schema, ["yank"], oob=True),
        lambda m: "exec-oob" in m,
        settings=settings(database=None),
    )
    assert oob["exec-oob"] == "yank"
    with_id = find(
        strategies.requests(schema, ["stop"], with_ids=True),
        lambda m: isinstance(m["id"], dict | list),
        settings=settings(database=None),
    )
    assert "id" in with_id
