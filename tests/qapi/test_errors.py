"""Bad schemas: each gives one ``file:line: message`` error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.qapi import QAPIError, load

BAD = [
    (
        "undefined type",
        "\n{ 'struct': 'A', 'data': { 'b': 'Nope' } }",
        2,
        "member 'b' of 'A' uses unknown type 'Nope'",
    ),
    (
        "duplicate",
        "{ 'enum': 'E', 'data': [] }\n{ 'struct': 'E', 'data': {} }",
        2,
        "'E' is already defined",
    ),
    (
        "command clashes with type",
        "{ 'struct': 'go', 'data': {} }\n{ 'command': 'go' }",
        2,
        "'go' is already defined",
    ),
    (
        "discriminator not in base",
        "{ 'enum': 'K', 'data': ['a'] }\n{ 'struct': 'B', 'data': { 'k': 'K' } }\n"
        "{ 'struct': 'S', 'data': {} }\n"
        "{ 'union': 'U', 'base': 'B', 'discriminator': 'x', 'data': { 'a': 'S' } }",
        4,
        "discriminator 'x' is not a member of 'base'",
    ),
    (
        "discriminator not an enum",
        "{ 'struct': 'B', 'data': { 'k': 'int' } }\n{ 'struct': 'S', 'data': {} }\n"
        "{ 'union': 'U', 'base': 'B', 'discriminator': 'k', 'data': { 'a': 'S' } }",
        3,
        "must be of enum type",
    ),
    (
        "optional discriminator",
        "{ 'enum': 'K', 'data': ['a'] }\n{ 'struct': 'B', 'data': { '*k': 'K' } }\n"
        "{ 'struct': 'S', 'data': {} }\n"
        "{ 'union': 'U', 'base': 'B', 'discriminator': 'k', 'data': { 'a': 'S' } }",
        4,
        "must not be optional",
    ),
    (
        "branch not in enum",
        "{ 'enum': 'K', 'data': ['a'] }\n{ 'struct': 'S', 'data': {} }\n"
        "{ 'union': 'U', 'base': { 'k': 'K' }, 'discriminator': 'k', 'data': { 'z': 'S' } }",
        3,
        "branch 'z' is not a value of K",
    ),
    (
        "branch not a struct",
        "{ 'enum': 'K', 'data': ['a'] }\n"
        "{ 'union': 'U', 'base': { 'k': 'K' }, 'discriminator': 'k', 'data': { 'a': 'K' } }",
        2,
        "branch 'a' must be an object type, not enum 'K'",
    ),
    (
        "member clash base/branch",
        "{ 'enum': 'K', 'data': ['a'] }\n{ 'struct': 'S', 'data': { 'k': 'int' } }\n"
        "{ 'union': 'U', 'base': { 'k': 'K' }, 'discriminator': 'k', 'data': { 'a': 'S' } }",
        3,
        "member 'k' of branch 'a' of 'U' collides with member 'k'",
    ),
    (
        "member clash with base",
        "{ 'struct': 'B', 'data': { 'a-b': 'int' } }\n"
        "{ 'struct': 'S', 'base': 'B', 'data': { 'a_b': 'str' } }",
        2,
        "member 'a_b' of 'S' collides with member 'a-b'",
    ),
    (
        "alternate ambiguity",
        "{ 'alternate': 'A', 'data': { 'i': 'int', 'n': 'number' } }",
        1,
        "branch 'n' can't be distinguished from 'i'",
    ),
    ("unknown key", "{ 'command': 'c', 'bogus': true }", 1, "unknown key 'bogus'"),
    ("no metatype", "{ 'data': {} }", 1, "missing a metatype"),
    (
        "union argument not boxed",
        "{ 'enum': 'K', 'data': ['a'] }\n{ 'struct': 'S', 'data': {} }\n"
        "{ 'union': 'U', 'base': { 'k': 'K' }, 'discriminator': 'k', 'data': { 'a': 'S' } }\n"
        "{ 'command': 'c', 'data': 'U' }",
        4,
        "can be union 'U' only with 'boxed': true",
    ),
    (
        "coroutine with oob",
        "{ 'command': 'c', 'coroutine': true, 'allow-oob': true }",
        1,
        "isn't compatible with 'allow-oob'",
    ),
    (
        "base cycle",
        "{ 'struct': 'A', 'base': 'B', 'data': {} }\n{ 'struct': 'B', 'base': 'A', 'data': {} }",
        1,
        "cycle of bases",
    ),
    ("bad if", "{ 'struct': 'A', 'data': {}, 'if': { 'maybe': 'X' } }", 1, "'if' condition"),
    ("syntax: missing colon", "{ 'struct' 'A' }", 1, "expected ':'"),
    ("syntax: double quotes", '{ "struct": "A", "data": {} }', 1, "single quotes"),
    ("syntax: stray character", "{ 'struct': 'A', 'data': {} };", 1, "stray ';'"),
    ("syntax: unterminated", "{ 'struct': 'A',\n  'data': {", 2, "found end of file"),
    ("bad enum value", "{ 'enum': 'E', 'data': [ 'ok', 'not ok' ] }", 1, "not a valid value"),
    ("syntax: bad \\u escape", "{ 'struct': 'A',\n  'data': { 'b\\uzz': 'int' } }", 2, "bad \\u"),
]


@pytest.mark.parametrize(("text", "line", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_schema_names_file_and_line(
    write_schema: Callable[..., Path], text: str, line: int, message: str
) -> None:
    path = write_schema(text)
    with pytest.raises(QAPIError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}:{line}:"), str(info.value)
    assert message in str(info.value)


def test_old_spellings_load_only_leniently_and_say_so(
    write_schema: Callable[..., Path],
) -> None:
    """What only an old QEMU accepted is an error by today's rules, and read
    as that QEMU read it otherwise, with a note for each thing tolerated."""
    path = write_schema(
        "{ 'type': 'B', 'data': { 'k': 'str' } }\n{ 'type': 'S', 'data': {} }\n"
        "{ 'union': 'U', 'base': 'B', 'discriminator': 'k', 'data': { 'a': 'S' } }\n"
        "{ 'command': 'c', 'data': { 'p': '**' }, 'gen': 'no' }"
    )
    with pytest.raises(QAPIError, match=r":4: 'gen' must be true or false"):
        load(path, leniency="strict")
    schema = load(path)
    assert len(schema.tolerated) == 3, schema.tolerated
    assert schema.types["UKind"].meta == "enum"
    assert not schema.commands["c"].gen


def test_error_in_included_file_names_that_file(write_schema: Callable[..., Path]) -> None:
    path = write_schema(
        {
            "main.json": "{ 'include': 'sub/part.json' }\n",
            "sub/part.json": "\n\n{ 'struct': 'A', 'data': { 'x': 'Y' } }\n",
        }
    )
    with pytest.raises(QAPIError, match=r"sub/part\.json:3: member 'x' of 'A'"):
        load(path)


def test_missing_include(write_schema: Callable[..., Path]) -> None:
    path = write_schema("\n{ 'include': 'gone.json' }\n")
    with pytest.raises(QAPIError, match=rf"{path}:2: can't read include file .*gone\.json"):
        load(path)


@pytest.mark.parametrize(
    "entries",
    [
        {"no": "list"},
        [{"name": "c", "meta-type": "command", "arg-type": "0", "ret-type": "1"}],
        [{"name": "0", "meta-type": "object"}],
        [{"name": "x", "meta-type": "gizmo"}],
    ],
)
def test_bad_introspection(entries: object) -> None:
    with pytest.raises(QAPIError):
        load(entries)  # type: ignore[arg-type]


def test_cli_prints_one_line_and_exits_2(write_schema: Callable[..., Path]) -> None:
    path = write_schema("{ 'struct': 'A',\n  'data': { 'b': 'Nope' } }")
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "schema", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}:1: member 'b' of 'A' uses unknown type 'Nope'" in lines[0]
