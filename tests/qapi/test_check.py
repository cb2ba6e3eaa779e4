"""``qmp-conform schema --check``: QEMU's current generator rules, one bad schema each.

Every case is a small schema written for this suite, run through the CLI; it
must fail with exit status 1 and one ``file:line: message`` line (with the
column for syntax errors) naming the line QEMU's generator names: the
definition's opening line for rules about a definition, the directive's for
``include`` and ``pragma``.  The real schemas of QEMU 10.x must pass.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.cli import main

Files = dict[str, str] | str

GOOD = """\
{ 'pragma': { 'doc-required': false,
              'command-name-exceptions': [ 'old_style' ],
              'command-returns-exceptions': [ 'get-count' ],
              'member-name-exceptions': [ 'Legacy' ],
              'documentation-exceptions': [ 'Terse' ] } }
{ 'include': 'part.json' }
{ 'include': 'part.json' }
{ 'enum': 'Mode', 'data': [ 'on', { 'name': '2g', 'if': 'CONFIG_G' },
                            { 'name': 'old', 'features': [ 'deprecated' ] } ] }
{ 'struct': 'Base', 'data': { 'mode': 'Mode', '*label': 'str' } }
{ 'struct': 'Legacy', 'data': { 'Camel_Case': 'int' } }
{ 'struct': 'Leaf', 'base': 'Empty',
  'data': { 'depth': { 'type': 'uint8', 'features': [ 'unstable' ] } },
  'features': [ 'fancy' ] }
{ 'union': 'Shape', 'base': 'Base', 'discriminator': 'mode',
  'data': { 'on': 'Leaf',
            'old': { 'type': 'Leaf', 'if': { 'not': 'CONFIG_X' } } } }
{ 'alternate': 'StrOrShape', 'data': { 's': 'str', 'shape': 'Shape', 'n': 'null',
                                        'list': [ 'int' ] } }
{ 'command': 'old_style', 'data': { 'x': 'StrOrShape' }, 'returns': [ 'Leaf' ],
  'allow-oob': true, 'features': [ 'unstable', 'deprecated' ] }
{ 'command': 'get-count', 'returns': 'int', 'gen': false,
  'if': { 'all': [ 'CONFIG_A', { 'any': [ 'CONFIG_B', 'CONFIG_C' ] } ] } }
{ 'command': 'boxed', 'data': 'Shape', 'boxed': true, 'coroutine': true }
{ 'event': 'SHAPE_CHANGED', 'data': 'Shape', 'boxed': true }
{ 'event': '__com.example_THING' }
##
# @Terse:
##
{ 'struct': 'Terse', 'data': { 'quiet': 'int' } }
##
# @Told:
#
# Documented.
#
# @loud: the member
#
# Features:
#
# @shiny: a feature
##
{ 'struct': 'Told', 'data': { 'loud': 'int' }, 'features': [ 'shiny' ] }
"""
PART = "{ 'struct': 'Empty', 'data': {} }\n"


def _features(n: int) -> str:
    """A struct whose features take ``n`` distinct names."""
    names = ", ".join(f"'f{i}'" for i in range(n))
    return f"{{ 'struct': 'Alpha', 'data': {{}},\n  'features': [ {names} ] }}\n"


#: (id, schema, line (or "line:col" for syntax errors), gist of the message)
BAD: list[tuple[str, Files, str, str]] = [
    # -- syntax: strict, with the column
    (
        "missing comma",
        "{ 'struct': 'Alpha',\n  'data': { 'a': 'int' 'b': 'str' } }",
        "2:24",
        "expected ','",
    ),
    (
        "trailing comma in object",
        "{ 'struct': 'Alpha',\n  'data': { 'a': 'int', } }",
        "2:25",
        "trailing ','",
    ),
    ("trailing comma in array", "{ 'enum': 'Enu',\n  'data': [ 'a', ] }", "2:18", "trailing ','"),
    ("column counts tabs", "{ 'enum': 'Enu',\n\t'data': [ 'a' 'b' ] }", "2:23", "expected ','"),
    ("double quotes", '{ "enum": "E", "data": [] }', "1:3", "single quotes"),
    (
        "non-ASCII in a string",
        "{ 'enum': 'Enu', 'data': [ 'caf\u00e9' ] }",
        "1:28",
        "printable ASCII",
    ),
    ("escape other than backslash", "{ 'enum': 'Enu', 'data': [ 'a\\'b' ] }", "1:28", "escape"),
    ("unterminated string", "{ 'enum': 'Enu',\n  'data': [ 'a ] }", "2:13", "not closed"),
    ("duplicate key", "{ 'enum': 'Enu',\n  'enum': 'F', 'data': [] }", "2:3", "duplicate key"),
    ("top-level array", "\n[ 'enum', 'Enu' ]", "2", "list form"),
    # -- directives
    (
        "include loop",
        {"main.json": "{ 'include': 'a.json' }\n", "a.json": "\n{ 'include': 'main.json' }\n"},
        "a.json:2",
        "include loop",
    ),
    ("include not alone", "{ 'include': 'x.json', 'data': {} }", "1", "only key"),
    (
        "unknown pragma",
        "{ 'enum': 'Enu', 'data': [] }\n{ 'pragma': { 'doc-needed': true } }",
        "2",
        "unknown pragma 'doc-needed'",
    ),
    (
        "doc-required not a bool",
        "{ 'pragma': { 'doc-required': 'yes' } }",
        "1",
        "'doc-required' must be true or false",
    ),
    (
        "exception list not names",
        "\n{ 'pragma': { 'member-name-exceptions': [ true ] } }",
        "2",
        "must be a list of names",
    ),
    # -- meta-types and keys
    ("old meta-type 'type'", "{ 'type': 'Alpha', 'data': {} }", "1", "exactly one of the keys"),
    (
        "two meta-types",
        "{ 'struct': 'Alpha', 'enum': 'Beta', 'data': {} }",
        "1",
        "exactly one of the keys",
    ),
    ("struct without data", "\n{ 'struct': 'Alpha' }", "2", "lacks key 'data'"),
    (
        "simple union (no discriminator)",
        "{ 'struct': 'Sub', 'data': {} }\n{ 'union': 'Uni',\n  'data': { 'a': 'Sub' } }",
        "2",
        "lacks key 'base', 'discriminator'",
    ),
    ("unknown key", "{ 'command': 'c',\n  'bogus': true }", "1", "unknown key 'bogus'"),
    (
        "member unknown key",
        "{ 'struct': 'Alpha',\n  'data': { 'a': { 'type': 'int', 'default': true } } }",
        "1",
        "unknown key 'default'",
    ),
    # -- naming per meta-type
    ("type not CamelCase", "{ 'struct': 'my-type', 'data': {} }", "1", "must be CamelCase"),
    ("enum not CamelCase", "{ 'enum': 'MODE', 'data': [] }", "1", "must be CamelCase"),
    ("command upper-case", "{ 'command': 'Query-Things' }", "1", "lower-case words"),
    ("command underscore", "{ 'command': 'query_things' }", "1", "lower-case words"),
    ("event lower-case", "{ 'event': 'Shape_Changed' }", "1", "upper-case words"),
    ("event hyphen", "{ 'event': 'SHAPE-CHANGED' }", "1", "upper-case words"),
    ("name ends in List", "{ 'struct': 'ThingList', 'data': {} }", "1", "reserved for array types"),
    ("command ends in List", "{ 'command': 'get-List' }", "1", "lower-case words"),
    ("invalid characters", "{ 'struct': 'A.B', 'data': {} }", "1", "not a valid name"),
    ("starts with a digit", "{ 'command': '2go' }", "1", "not a valid name"),
    ("bad downstream prefix", "{ 'command': '__com example_go' }", "1", "not a valid name"),
    ("reserved q_ prefix", "{ 'struct': 'q_obj_A', 'data': {} }", "1", "'q_'"),
    # -- naming of members, branches, values, features
    (
        "member upper-case",
        "{ 'struct': 'Alpha',\n  'data': { 'Size': 'int' } }",
        "1",
        "member of struct 'Alpha' 'Size'",
    ),
    ("member underscore", "{ 'command': 'c', 'data': { 'a_b': 'int' } }", "1", "lower-case words"),
    ("member q_ prefix", "{ 'struct': 'Alpha', 'data': { 'q-x': 'int' } }", "1", "'q_'"),
    ("member 'u' reserved", "{ 'struct': 'Alpha', 'data': { 'u': 'int' } }", "1", "reserved"),
    ("member has- reserved", "{ 'event': 'EVT', 'data': { '*has-size': 'int' } }", "1", "reserved"),
    (
        "enum value upper-case",
        "{ 'enum': 'Enu', 'data': [ 'ok', 'Bad' ] }",
        "1",
        "value of enum 'Enu' 'Bad'",
    ),
    ("enum value invalid", "{ 'enum': 'Enu', 'data': [ 'a b' ] }", "1", "not a valid name"),
    (
        "alternate branch upper-case",
        "{ 'alternate': 'Alpha', 'data': { 'Str': 'str' } }",
        "1",
        "branch of alternate 'Alpha'",
    ),
    (
        "feature upper-case",
        "{ 'command': 'c', 'features': [ 'Fancy' ] }",
        "1",
        "feature of command 'c'",
    ),
    # -- clashes, through bases and branches
    (
        "duplicate definition",
        "{ 'struct': 'Alpha', 'data': {} }\n{ 'enum': 'Alpha', 'data': [] }",
        "2",
        "already defined",
    ),
    (
        "member clash through base",
        "{ 'pragma': { 'member-name-exceptions': [ 'Sub' ] } }\n"
        "{ 'struct': 'Beta', 'data': { 'a-b': 'int' } }\n"
        "{ 'struct': 'Sub', 'base': 'Beta',\n"
        "  'data': { 'a_b': 'str' } }",
        "3",
        "collides with member 'a-b'",
    ),
    (
        "branch clash with base",
        "{ 'enum': 'Kind', 'data': [ 'a' ] }\n{ 'struct': 'Sub', 'data': { 'k': 'int' } }\n"
        "{ 'union': 'Uni', 'base': { 'k': 'Kind' }, 'discriminator': 'k',\n"
        "  'data': { 'a': 'Sub' } }",
        "3",
        "of branch 'a' of 'Uni' collides",
    ),
    (
        "enum values clash",
        "{ 'enum': 'Enu',\n"
        "  'data': [ 'a-b', 'a_b' ] }\n"
        "{ 'pragma': { 'member-name-exceptions': [ 'Enu' ] } }",
        "1",
        "clashes",
    ),
    (
        "union without any branch",
        "{ 'enum': 'Kind', 'data': [] }\n"
        "{ 'union': 'Uni', 'base': { 'k': 'Kind' }, 'discriminator': 'k',\n"
        "  'data': {} }",
        "2",
        "no branches",
    ),
    (
        "branch not an enum value",
        "{ 'enum': 'Kind', 'data': [ 'a' ] }\n{ 'struct': 'Sub', 'data': {} }\n"
        "{ 'union': 'Uni', 'base': { 'k': 'Kind' }, 'discriminator': 'k',\n"
        "  'data': { 'z': 'Sub' } }",
        "3",
        "branch 'z' is not a value",
    ),
    # -- alternates the wire cannot tell apart
    (
        "alternate int and number",
        "{ 'alternate': 'Alpha',\n  'data': { 'i': 'int', 'n': 'number' } }",
        "1",
        "distinguished",
    ),
    (
        "alternate str and int",
        "{ 'alternate': 'Alpha',\n  'data': { 's': 'str', 'i': 'int' } }",
        "1",
        "'i' can't be told apart from 's'",
    ),
    (
        "alternate bool and on/off enum",
        "{ 'enum': 'Switch', 'data': [ 'on', 'off' ] }\n"
        "{ 'alternate': 'Alpha',\n"
        "  'data': { 'b': 'bool', 's': 'Switch' } }",
        "2",
        "'s' can't be told apart from 'b'",
    ),
    (
        "alternate number and numeric enum",
        "{ 'enum': 'Size', 'data': [ '1g', '2g' ] }\n"
        "{ 'alternate': 'Alpha', 'data': { 'i': 'int', 's': 'Size' } }",
        "2",
        "'s' can't be told apart from 'i'",
    ),
    (
        "alternate of any",
        "{ 'alternate': 'Alpha', 'data': { 'v': 'any' } }",
        "1",
        "can't be of builtin type 'any'",
    ),
    (
        "alternate without branches",
        "{ 'alternate': 'Alpha', 'data': {} }",
        "1",
        "at least one branch",
    ),
    # -- returns and its pragma
    (
        "returns a builtin",
        "{ 'command': 'c',\n  'returns': 'int' }",
        "1",
        "'returns' must be an object type",
    ),
    (
        "returns an array of str",
        "{ 'command': 'c', 'returns': [ 'str' ] }",
        "1",
        "returns array '[str]'",
    ),
    (
        "returns an enum",
        "{ 'enum': 'Enu', 'data': [] }\n"
        "{ 'pragma': { 'command-returns-exceptions': [ 'd' ] } }\n"
        "{ 'command': 'c', 'returns': 'Enu' }",
        "3",
        "returns enum 'Enu'",
    ),
    # -- flags and boxed
    ("gen true", "{ 'command': 'c', 'gen': true }", "1", "'gen' may only be false"),
    (
        "success-response true",
        "{ 'command': 'c', 'success-response': true }",
        "1",
        "may only be false",
    ),
    (
        "allow-oob false",
        "{ 'command': 'c', 'allow-oob': false }",
        "1",
        "'allow-oob' may only be true",
    ),
    (
        "boxed false",
        "{ 'event': 'EVT', 'data': {}, 'boxed': false }",
        "1",
        "'boxed' may only be true",
    ),
    (
        "coroutine and oob",
        "{ 'command': 'c', 'coroutine': true, 'allow-oob': true }",
        "1",
        "isn't compatible",
    ),
    (
        "boxed with members",
        "{ 'command': 'c', 'data': { 'a': 'int' }, 'boxed': true }",
        "1",
        "needs 'data' to name a type",
    ),
    ("boxed without data", "{ 'event': 'EVT', 'boxed': true }", "1", "needs 'data' to name a type"),
    (
        "union arguments unboxed",
        "{ 'enum': 'Kind', 'data': [ 'a' ] }\n"
        "{ 'union': 'Uni', 'base': { 'k': 'Kind' }, 'discriminator': 'k',\n"
        "  'data': {} }\n{ 'command': 'c',\n  'data': 'Uni' }",
        "4",
        "only with 'boxed': true",
    ),
    # -- features
    ("features not a list", "{ 'command': 'c', 'features': 'deprecated' }", "1", "must be a list"),
    (
        "feature without a name",
        "{ 'command': 'c', 'features': [ { 'if': 'CONFIG_X' } ] }",
        "1",
        "lacks key 'name'",
    ),
    (
        "deprecated on a struct",
        "{ 'struct': 'Alpha', 'data': {},\n  'features': [ 'deprecated' ] }",
        "1",
        "not for types",
    ),
    (
        "unstable on an enum",
        "{ 'enum': 'Enu', 'data': [], 'features': [ 'unstable' ] }",
        "1",
        "not for types",
    ),
    (
        "too many features",
        "{ 'command': 'c' }\n" + _features(63),
        "2",
        "'f62' is the 65th feature name",
    ),
    # -- 'if' conditions
    ("if not a symbol", "{ 'command': 'c', 'if': 'config_x' }", "1", "not a configuration symbol"),
    (
        "if defined() form",
        "{ 'command': 'c', 'if': 'defined(CONFIG_X)' }",
        "1",
        "not a configuration symbol",
    ),
    ("if list form", "{ 'struct': 'Alpha', 'data': {},\n  'if': [ 'CONFIG_X' ] }", "1", "one key"),
    (
        "if two keys",
        "{ 'command': 'c', 'if': { 'all': [ 'Alpha' ], 'any': [ 'Beta' ] } }",
        "1",
        "one key",
    ),
    ("if empty all", "{ 'command': 'c', 'if': { 'all': [] } }", "1", "non-empty list"),
    (
        "if on a member",
        "{ 'struct': 'Alpha',\n  'data': { 'a': { 'type': 'int', 'if': { 'or': [ 'X' ] } } } }",
        "1",
        "member 'a'",
    ),
    (
        "if on a branch",
        "{ 'alternate': 'Alpha', 'data': { 'a': { 'type': 'int', 'if': 'x' } } }",
        "1",
        "branch 'a'",
    ),
    # -- documentation and its pragmas
    (
        "doc required",
        "{ 'pragma': { 'doc-required': true } }\n\n{ 'command': 'c' }",
        "3",
        "no doc comment",
    ),
    ("doc for another symbol", "##\n# @d:\n##\n{ 'command': 'c' }", "4", "is for 'd'"),
    (
        "undocumented member",
        "##\n"
        "# @c:\n"
        "#\n"
        "# @a: documented\n"
        "##\n"
        "{ 'command': 'c',\n"
        "  'data': { 'a': 'int', 'b': 'int' } }",
        "6",
        "'b' is not described",
    ),
    (
        "undocumented enum value",
        "##\n# @Enu:\n##\n{ 'enum': 'Enu', 'data': [ 'x' ] }",
        "4",
        "'x' is not described",
    ),
    (
        "undocumented feature",
        "##\n# @c:\n##\n{ 'command': 'c', 'features': [ 'shiny' ] }",
        "4",
        "feature 'shiny'",
    ),
    # -- types
    (
        "unknown type",
        "{ 'struct': 'Alpha',\n  'data': { 'b': 'Nope' } }",
        "1",
        "unknown type 'Nope'",
    ),
    (
        "nested array",
        "{ 'struct': 'Alpha', 'data': { 'b': [ [ 'int' ] ] } }",
        "1",
        "type name or [ 'TypeName' ]",
    ),
    (
        "union branch array",
        "{ 'enum': 'Kind', 'data': [ 'a' ] }\n"
        "{ 'union': 'Uni', 'base': { 'k': 'Kind' }, 'discriminator': 'k',\n"
        "  'data': { 'a': [ 'int' ] } }",
        "2",
        "must name a struct",
    ),
]


def run_check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["schema", str(path), "--check"])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(("files", "where", "gist"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_each_rule_names_the_line(
    write_schema: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    files: Files,
    where: str,
    gist: str,
) -> None:
    path = write_schema(files)
    if ":" in where and not where.split(":")[0].isdigit():
        fname, where = where.split(":", 1)
        expected_file = path.parent / fname
    else:
        expected_file = path
    status, out, err = run_check(path, capsys)
    assert status == 1, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{expected_file}:{where}: "), lines[0]
    assert gist in lines[0], lines[0]


def test_good_schema_passes(
    write_schema: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schema({"schema.json": GOOD, "part.json": PART})
    status, out, err = run_check(path, capsys)
    assert (status, err) == (0, "")
    assert out == f"{path}: OK by QEMU 10.2's rules (2 files, 3 commands, 2 events)\n"


def test_feature_limit_is_64_names(
    write_schema: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """62 names of its own plus 'deprecated' and 'unstable' is the most."""
    assert run_check(write_schema(_features(62)), capsys)[0] == 0


def test_check_is_strict_where_loading_is_lenient(
    write_schema: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schema("{ 'command': 'c', 'data': { 'a': 'int', } }")
    assert main(["schema", str(path)]) == 0  # read leniently, with a warning
    capsys.readouterr()
    status, _, err = run_check(path, capsys)
    assert status == 1 and f"{path}:1:41: trailing ','" in err


def test_introspection_is_not_source(
    write_schema: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schema('[{"name": "c", "meta-type": "command", "arg-type": "0", "ret-type": "0"}]')
    status, _, err = run_check(path, capsys)
    assert status == 1 and "--check reads QAPI source" in err


def test_missing_source_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "/nonexistent/schema.json", "--check"]) == 2


def test_real_cli_subprocess(write_schema: Callable[..., Path]) -> None:
    path = write_schema("{ 'struct': 'Alpha',\n  'data': {} }\n{ 'event': 'bad' }\n")
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "schema", str(path), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"{path}:3: event name 'bad'")


REAL = [
    "releases/10.0.0",
    "releases/10.1.0",
    "releases/10.2.0",
    "qapi/v10.2.0/qapi/qapi-schema.json",
    "qapi/v10.2.0/qga/qapi-schema.json",
    "qapi/v10.2.0/storage-daemon/qapi/qapi-schema.json",
]


@pytest.mark.corpus
@pytest.mark.parametrize("rel", REAL)
def test_real_10x_schemas_pass(corpus: Path, capsys: pytest.CaptureFixture[str], rel: str) -> None:
    status, out, err = run_check(corpus / rel, capsys)
    assert (status, err) == (0, ""), err
    assert "OK by QEMU 10.2's rules" in out


@pytest.mark.corpus
def test_older_release_fails_todays_rules(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """5.2's pragma had the old name 'returns-whitelist': today's generator
    rejects it, on the pragma's line."""
    status, _, err = run_check(corpus / "releases/5.2.0", capsys)
    assert status == 1
    assert "5.2.0/qapi/pragma.json:5: unknown pragma 'returns-whitelist'" in err
