"""Side by side with QEMU 7.2 and 10.0 on every command of their schemas: the
reference server, serving QEMU's own live introspection under its release,
answers as QEMU does.

Valid arguments from the strategies go to both servers for every command
(but the judge's EXCLUDED ones, which act on the host): the reply kind (a
return, or an error of a class) must agree, except for the commands listed
in DIFFERENCES with their reasons (docs/reference-server.md lists them too).
Invalid arguments go to every command whose arguments QEMU's input visitor
checks: class and message must agree, but for what introspection cannot
tell the reference server (integer widths and the names of types, which
QEMU masks).  A request whose text QEMU's own reader refuses (a string
holding a Unicode noncharacter) gets no reply from QEMU at all, so it is
set aside and counted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import strategies
from conformance import releases
from conformance.protocol.stream import JSONStream, ParseError
from conformance.qapi import load
from conformance.qapi.model import Schema
from conformance.session import Session
from conformance.transport import open_target
from reference_server import launch
from tests.strategies.qemu import QEMU, QemuUnderTest, qemu_available
from tests.strategies.test_qemu_judge import EXCLUDED, KNOWN_CRASHES

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

VALID_EXAMPLES = 3
INVALID_EXAMPLES = 4
#: Commands whose valid requests may be answered differently, and why.
DIFFERENCES = {
    "nbd-server-start": "QEMU opens a listening socket and fails on an address it cannot "
    "resolve or bind; the reference server opens none, so it accepts every address",
    "nbd-server-stop": "follows from nbd-server-start: the reference server's NBD server "
    "started where QEMU's did not",
    "transaction": "actions are not run one by one: the reference server answers the "
    "whole transaction from its return type",
    "blockdev-add": "drivers the reference server does not model are refused with its "
    "own message (QEMU opens them)",
    "device_add": "no device model exists on the reference server",
    "migrate-set-capabilities": "QEMU's rules on which capabilities go together "
    "(postcopy and multifd, compress, ignore-shared) are not modelled",
    "migrate-set-parameters": "the ranges are checked, but not block-bitmap-mapping's "
    "aliases and node names",
    "trace-event-set-state": "the reference server has no trace events: a pattern that "
    "matches an event compiled out of QEMU fails there and not here",
    "netdev_add": "backends' own option rules (dgram needs local=, tap's fds) are not checked",
    "calc-dirty-rate": "QEMU measures for calc-time seconds and refuses a second "
    "measurement meanwhile; the reference server measures nothing",
    "object-add": "properties naming other objects (a chardev, a secret) are not looked up",
}
#: QEMU's message for an integer out of an unsigned member's range, and the
#: reference server's for the same value when it knows only "int".
WIDTH = re.compile(r"^Parameter '([^']*)' expects uint(8|16|32|64)$")
NO_WIDTH = "Invalid parameter type for '{}', expected: integer"
#: A type name in a message, QEMU's own and introspection's masked number.
EXPECTED = re.compile(r"^(Invalid parameter type for '[^']*', expected: )(.*)$")


#: The releases whose answers refusals.py follows: fetched ones, else the system's 7.2.
RELEASES = [
    pytest.param(str(r.binary(QEMU)), id=f"qemu-{r.name}")
    for r in releases.available()
    if r.name in ("7.2", "10.0")
] or [pytest.param(QEMU, id="qemu")]


@pytest.fixture(scope="module", params=RELEASES)
def pair(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[QemuUnderTest, Session, Schema]]:
    if not qemu_available():
        pytest.skip("qemu-system-x86_64 is not installed")
    qemu = QemuUnderTest(request.param)
    try:
        reply = qemu.execute("query-qmp-schema")
        assert reply is not None and reply.ok
        entries: Any = reply.value["return"]  # type: ignore[index]
        source = tmp_path_factory.mktemp("schema") / "qemu.json"
        source.write_text(json.dumps(entries))
        with (
            launch(schema=str(source), release=qemu.release) as path,
            open_target(f"unix:{path}") as target,
        ):
            session = Session(target.connect())
            session.read_greeting(5)
            session.execute("qmp_capabilities")
            yield qemu, session, load(entries)
    finally:
        qemu.close()


def _qemu_reads(message: dict[str, Any]) -> bool:
    """Whether QEMU's reader takes the text the session sends for ``message``."""
    text = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return not any(isinstance(item, ParseError) for item in JSONStream().feed(text))


def _same_desc(qemu_desc: str, ours: str) -> bool:
    if qemu_desc == ours:
        return True
    width = WIDTH.match(qemu_desc)
    if width is not None:
        return ours == NO_WIDTH.format(width[1])
    theirs, mine = EXPECTED.match(qemu_desc), EXPECTED.match(ours)
    # Introspection masks type names as numbers: QEMU says 'StrOrNull'
    # where the reference server can only say '334'.
    return bool(theirs and mine and theirs[1] == mine[1] and mine[2].isdigit())


def _each_example(strategy: Any, examples: int, run: Any) -> None:
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def check(example: Any) -> None:
        run(example)

    check()


def test_valid_arguments_get_the_reply_kind_qemu_gives(
    pair: tuple[QemuUnderTest, Session, Schema],
) -> None:
    qemu, ours, schema = pair
    commands = [n for n in sorted(schema.commands) if n not in EXCLUDED and n != "qmp_capabilities"]
    differences: list[str] = []
    agreed: Counter[str] = Counter()

    for name in commands:

        def run(args: dict[str, Any], name: str = name) -> None:
            message = {"execute": name, **({"arguments": args} if args else {})}
            if not _qemu_reads(message):
                agreed["set aside"] += 1
                return
            theirs = qemu.ask(message)
            if theirs is None:
                # A crash written up in docs/findings.md: nothing to compare.
                assert name in KNOWN_CRASHES[qemu.release], f"{name}: no reply to {message!r}"
                agreed["known crash"] += 1
                return
            mine = ours.execute(name, args or None)
            if theirs.error_class == mine.error_class:
                agreed["error" if mine.error_class else "return"] += 1
            elif name not in DIFFERENCES:
                differences.append(f"{name}: QEMU {theirs.brief()} / ours {mine.brief()}")

        _each_example(strategies.arguments(schema, name), VALID_EXAMPLES, run)
    print(f"\n{len(commands)} commands: {dict(agreed)}, {len(differences)} differ")
    assert agreed["return"] > 100 and agreed["error"] > 200
    assert not differences, "\n".join(differences[:20])


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
    counts: Counter[str] = Counter()

    def run(ex: strategies.Invalid) -> None:
        command = ex.message["execute"]
        if not _qemu_reads(ex.message):
            counts["set aside"] += 1
            return
        counts["compared"] += 1
        theirs = qemu.ask(ex.message)
        assert theirs is not None, f"{command}: no reply to {ex.message!r}"
        mine = ours.execute(command, ex.message.get("arguments"))
        if theirs.error_class != mine.error_class or not _same_desc(theirs.desc, mine.desc):
            differences.append(
                f"{command} ({ex.label}): QEMU {theirs.brief()} / ours {mine.brief()}"
            )

    for name in commands:
        _each_example(strategies.invalid_arguments(schema, name), INVALID_EXAMPLES, run)
    print(f"\n{len(commands)} commands: {dict(counts)}, {len(differences)} differ")
    assert counts["compared"] > 3 * len(commands)
    assert not differences, "\n".join(differences[:20])
