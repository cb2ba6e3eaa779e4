"""Side by side with QEMU 7.2 on every command: the reference server, serving
QEMU's own live schema, refuses what QEMU refuses, as QEMU does.

For every command of the live introspection whose arguments QEMU's input
visitor checks (not ``gen: false``, and not the strategies judge's EXCLUDED
commands), invalid arguments from the strategies go to both servers: the
error classes must agree, and the messages too, except the one thing
introspection cannot tell: it shows every integer type as ``int``, so where
QEMU names a member's width (``Parameter 'x' expects uint64``) the
reference server can only say the value is no integer it accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import strategies
from conformance.qapi import load
from conformance.qapi.model import Schema
from conformance.session import Session
from conformance.transport import open_target
from reference_server import launch
from tests.strategies.qemu import QemuUnderTest, qemu_available
from tests.strategies.test_qemu_judge import EXCLUDED

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

EXAMPLES = 4
#: QEMU's message for an integer out of an unsigned member's range, and the
#: reference server's for the same value when it knows only "int".
WIDTH = re.compile(r"^Parameter '([^']*)' expects uint(8|16|32|64)$")
NO_WIDTH = "Invalid parameter type for '{}', expected: integer"


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[QemuUnderTest, Session, Schema]]:
    if not qemu_available():
        pytest.skip("qemu-system-x86_64 is not installed")
    qemu = QemuUnderTest()
    try:
        reply = qemu.execute("query-qmp-schema")
        assert reply is not None and reply.ok
        entries: Any = reply.value["return"]  # type: ignore[index]
        source = tmp_path_factory.mktemp("schema") / "qemu.json"
        source.write_text(json.dumps(entries))
        with launch(schema=str(source)) as path, open_target(f"unix:{path}") as target:
            session = Session(target.connect())
            session.read_greeting(5)
            session.execute("qmp_capabilities")
            yield qemu, session, load(entries)
    finally:
        qemu.close()


def _same(qemu_desc: str, ours: str) -> bool:
    width = WIDTH.match(qemu_desc)
    return qemu_desc == ours or (width is not None and ours == NO_WIDTH.format(width[1]))


def test_invalid_arguments_are_refused_as_qemu_refuses_them(
    pair: tuple[QemuUnderTest, Session, Schema],
) -> None:
    qemu, ours, schema = pair
    compiled = strategies.compiled(schema)
    commands = [
        n
        for n in sorted(schema.commands)
        if n not in EXCLUDED
        and n not in compiled.lenient_commands
        and schema.commands[n].arg_type is not None
    ]
    differences: list[str] = []
    examples = 0
    for name in commands:

        @settings(
            max_examples=EXAMPLES,
            database=None,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategies.invalid_arguments(schema, name))
        def check(ex: strategies.Invalid) -> None:
            nonlocal examples
            examples += 1
            command = ex.message["execute"]
            theirs = qemu.ask(ex.message)
            assert theirs is not None, f"{command}: QEMU gave no reply to {ex.message!r}"
            mine = ours.execute(command, ex.message.get("arguments"))
            if theirs.error_class != mine.error_class or not _same(theirs.desc, mine.desc):
                differences.append(
                    f"{command} ({ex.label}): QEMU {theirs.brief()} / ours {mine.brief()}"
                )

        check()
    print(f"\n{len(commands)} commands, {examples} invalid examples, {len(differences)} differ")
    assert not differences, "\n".join(differences[:20])
