"""What the campaign's generator writes is what it judges against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from conformance.fuzz.generate import EVERY_COMMAND, GenConfig, programs
from conformance.fuzz.program import ID_LIMIT, VALUE_SPELLING, Program
from conformance.protocol.spellings import NUMBER_SPELLINGS, STRING_SPELLINGS, Spelling
from conformance.qapi import load
from conformance.session import json_equal

SCHEMA = Path(__file__).resolve().parents[2] / "reference_server" / "schema" / "qapi-schema.json"
CONFIG = GenConfig.for_schema(load(SCHEMA), max_connections=2)
EVERYTHING = GenConfig.for_schema(load(SCHEMA), EVERY_COMMAND, max_connections=2)
#: One command with an argument of each spellable type.
SPELLABLE = GenConfig.for_schema(
    load(
        [
            {"name": "frob", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
            {
                "name": "0",
                "meta-type": "object",
                "members": [
                    {"name": n, "type": t}
                    for n, t in (("i", "int"), ("x", "number"), ("s", "str"), ("v", "any"))
                ],
            },
            {"name": "1", "meta-type": "object", "members": []},
            *(
                {"name": t, "meta-type": "builtin", "json-type": j}
                for t, j in (
                    ("int", "int"),
                    ("number", "number"),
                    ("str", "string"),
                    ("any", "value"),
                )
            ),
        ]
    ),
    EVERY_COMMAND,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(programs(CONFIG), programs(EVERYTHING)))
def test_every_request_is_the_json_it_is_judged_as(program: Program) -> None:
    # Spelled ids are spliced into the bytes as text: the bytes must still be
    # one JSON object, and spell the request the oracles expect a reply to.
    for step in program.steps:
        if step.kind != "command" or not step.data.isascii():
            continue
        sent = json.loads(step.data)
        assert isinstance(sent, dict), step.data
        if ID_LIMIT not in step.meta:
            assert json_equal(sent, step.value), step.data


@pytest.mark.parametrize("spellings", [NUMBER_SPELLINGS, STRING_SPELLINGS])
def test_argument_values_are_spelled_from_the_grammar(spellings: tuple[Spelling, ...]) -> None:
    labels = {s.label for s in spellings}

    def spelled(program: Program) -> bool:
        return any(s.meta.get(VALUE_SPELLING) in labels for s in program.steps)

    program = find(
        programs(SPELLABLE),
        spelled,
        settings=settings(
            max_examples=2000, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
        ),
    )
    step = next(s for s in program.steps if s.meta.get(VALUE_SPELLING) in labels)
    # The text is in the bytes as written, and the value as a reader reads it.
    [text] = [s.text for s in spellings if s.label == step.meta[VALUE_SPELLING]]
    assert text.encode() in step.data
    if ID_LIMIT not in step.meta:
        assert json_equal(json.loads(step.data), step.value)
