"""What the campaign's generator writes is what it judges against."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from conformance.fuzz.generate import GenConfig, programs
from conformance.fuzz.program import ID_LIMIT, Program
from conformance.qapi import load
from conformance.session import json_equal

SCHEMA = Path(__file__).resolve().parents[2] / "reference_server" / "schema" / "qapi-schema.json"
CONFIG = GenConfig.for_schema(load(SCHEMA), max_connections=2)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(CONFIG))
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
