"""The team's own positive schemas: every construct of every era reaches the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conformance.qapi import load
from conformance.qapi.model import AlternateType, ArrayType, EnumType, ObjectType

MODERN = """
# A comment before anything
{ 'include': 'common.json' }
{ 'include': 'common.json' }
{ 'pragma': { 'doc-required': true } }

##
# @Colour:
#
# A colour.
#
# @red: warm
#
# Since: 2.0
##
{ 'enum': 'Colour', 'prefix': 'COL',
  'data': [ 'red', { 'name': 'green', 'if': 'CONFIG_GREEN' },
            { 'name': 'blue', 'features': [ 'deprecated' ] } ] }

{ 'struct': 'Base', 'data': { 'kind': 'Colour', '*label': 'str' } }
{ 'struct': 'Red', 'data': { 'depth': 'uint8' } }
{ 'struct': 'Green', 'base': 'Empty', 'data': { '*leaves': ['int16'] } }
{ 'union': 'Paint', 'base': 'Base', 'discriminator': 'kind',
  'data': { 'red': 'Red', 'green': { 'type': 'Green', 'if': 'CONFIG_GREEN' } } }
{ 'union': 'Inline', 'base': { 'kind': 'Colour' }, 'discriminator': 'kind',
  'data': { 'red': 'Red' } }
{ 'alternate': 'StrOrPaint', 'data': { 's': 'str', 'p': 'Paint', 'n': 'null' } }
{ 'struct': 'Tree', 'data': { 'name': 'str', '*children': [ 'Tree' ] },
  'if': { 'all': [ 'CONFIG_A', { 'not': 'CONFIG_B' } ] } }
{ 'command': 'paint', 'data': { 'what': 'Paint', '*why': 'str' },
  'returns': [ 'Tree' ], 'features': [ 'unstable' ], 'allow-preconfig': true }
{ 'command': 'boxed-paint', 'data': 'Paint', 'boxed': true }
{ 'command': 'oob-ping', 'allow-oob': true }
{ 'command': 'fire-and-forget', 'success-response': false, 'gen': false,
  'data': { 'x': 'any' } }
{ 'command': 'slow', 'coroutine': true, 'if': 'defined(CONFIG_SLOW)' }
{ 'event': 'PAINTED', 'data': { 'paint': 'Paint', 'size': 'size' } }
{ 'event': 'BOXED_PAINTED', 'data': 'Paint', 'boxed': true }
{ 'event': 'BARE' }
"""

COMMON = "{ 'struct': 'Empty', 'data': {} }\n"


def test_modern_schema_builds_every_construct(write_schema: Callable[..., Path]) -> None:
    schema = load(write_schema({"schema.json": MODERN, "common.json": COMMON}))
    assert schema.origin == "qapi"
    assert len(schema.files) == 2  # the repeated include is read once
    assert schema.pragmas == {"doc-required": True}
    colour = schema.types["Colour"]
    assert isinstance(colour, EnumType)
    assert colour.names == ["red", "green", "blue"] and colour.prefix == "COL"
    assert colour.values[1].ifcond is not None and str(colour.values[1].ifcond) == "CONFIG_GREEN"
    assert colour.values[2].features == ("deprecated",)
    assert colour.doc is not None and colour.doc.since == "2.0"
    assert colour.doc.members == {"red": "warm"}

    paint = schema.types["Paint"]
    assert isinstance(paint, ObjectType) and paint.is_union and paint.tag == "kind"
    assert [m.name for m in paint.members] == ["kind", "label"]
    assert [(v.case, v.type) for v in paint.variants] == [("red", "Red"), ("green", "Green")]
    inline = schema.types["Inline"]
    assert isinstance(inline, ObjectType) and inline.base == "q_obj_Inline-base"

    tree = schema.types["Tree"]
    assert isinstance(tree, ObjectType) and tree.ifcond is not None
    assert tree.ifcond.holds({"CONFIG_A"}) and not tree.ifcond.holds({"CONFIG_A", "CONFIG_B"})
    assert isinstance(schema.types["[Tree]"], ArrayType)
    assert isinstance(schema.types["StrOrPaint"], AlternateType)

    paint_cmd = schema.commands["paint"]
    assert paint_cmd.arg_type == "q_obj_paint-arg" and paint_cmd.ret_type == "[Tree]"
    assert paint_cmd.unstable and paint_cmd.allow_preconfig
    assert schema.commands["boxed-paint"].boxed
    assert schema.commands["oob-ping"].allow_oob and schema.commands["oob-ping"].arg_type is None
    fire = schema.commands["fire-and-forget"]
    assert not fire.success_response and not fire.gen
    arg = schema.object_type(fire.arg_type)
    assert arg is not None and arg.open
    slow = schema.commands["slow"]
    assert slow.coroutine and slow.ifcond is not None and slow.ifcond.name == "CONFIG_SLOW"
    assert schema.events["BARE"].arg_type is None
    assert schema.events["BOXED_PAINTED"].boxed

    assert schema.summary() == {
        "origin": "qapi",
        "commands": 5,
        "events": 3,
        "structs": 5,
        "unions": 2,
        "alternates": 1,
        "enums": 1,
        "allow-oob": ["oob-ping"],
    }


def test_old_forms_type_keyword_simple_union_and_anonymous_union(
    write_schema: Callable[..., Path],
) -> None:
    schema = load(
        write_schema("""
{ 'type': 'Snap', 'data': { 'device': 'str', 'nested': { 'a': 'int', '*b': 'str' } } }
{ 'union': 'Action', 'data': { 'snap': 'Snap', 'count': 'int' } }
{ 'union': 'Anon', 'discriminator': {}, 'data': { 'n': 'int', 's': 'Snap' } }
{ 'command': 'act', 'data': { 'a': 'Action' }, 'gen': 'no', 'returns': 'visitor' }
{ 'command': 'quiet', 'success-response': 'no' }
""")
    )
    snap = schema.types["Snap"]
    assert isinstance(snap, ObjectType)
    nested = schema.object_type(snap.members[1].type)
    assert nested is not None and [m.optional for m in nested.members] == [False, True]
    action = schema.types["Action"]
    assert isinstance(action, ObjectType) and action.tag == "type"
    kind = schema.types["ActionKind"]
    assert isinstance(kind, EnumType) and kind.names == ["snap", "count"]
    wrapper = schema.object_type(action.variants[1].type)
    assert wrapper is not None and [(m.name, m.type) for m in wrapper.members] == [("data", "int")]
    assert isinstance(schema.types["Anon"], AlternateType)
    assert not schema.commands["act"].gen and schema.commands["act"].ret_type == "any"
    assert not schema.commands["quiet"].success_response


def test_lenient_mode_is_picked_by_itself(write_schema: Callable[..., Path]) -> None:
    path = write_schema("""
{ 'enum': 'Mode'
  'data': [ 'a', 'b', ] }
{ 'command': 'go', 'data': { 'mode': 'Mode', }, }
""")
    schema = load(path)
    assert schema.origin == "qapi-lenient"
    assert schema.commands["go"].arg_type is not None


def test_list_form_of_2011(write_schema: Callable[..., Path]) -> None:
    schema = load(
        write_schema("""
# the first form: name, required, optional, returns
[ 'eject', {'device': 'str'}, {'force': 'bool'}, 'none' ]
[ 'device_add', {'driver': 'str'}, {'**': 'dict'}, 'none' ]
{ 'VersionInfo': {'qemu': {'major': 'int'}, 'package': 'str'} }
[ 'query-version', {}, {}, 'VersionInfo' ]
[ 'query-block', {}, {}, ['VersionInfo'] ]
{ 'RunState': [ 'running', 'paused' ] }
{ 'SHUTDOWN': {} }
{ 'BLOCK_IO_ERROR': { 'device': 'str' } }
[ 'get-shutdown-event', {}, 'SHUTDOWN' ]
[ 'put-event', {'tag': 'int'}, 'none' ]
[ 'change', {'device': 'str', '*arg': 'str'}, 'none' ]
""")
    )
    assert schema.origin == "legacy-2011"
    eject = schema.object_type(schema.commands["eject"].arg_type)
    assert eject is not None and [(m.name, m.optional) for m in eject.members] == [
        ("device", False),
        ("force", True),
    ]
    add = schema.commands["device_add"]
    assert not add.gen
    assert schema.commands["query-block"].ret_type == "[VersionInfo]"
    assert set(schema.events) == {"SHUTDOWN", "BLOCK_IO_ERROR"}
    assert schema.commands["get-shutdown-event"].ret_type == "int"
    change = schema.object_type(schema.commands["change"].arg_type)
    assert change is not None and change.members[1].optional
    assert schema.summary()["commands"] == 7
