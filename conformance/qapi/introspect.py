"""Write the model back out as ``query-qmp-schema`` would return it.

This is what a server built on the model (the bundled reference server)
answers to ``query-qmp-schema``.  As QEMU does, only what commands and events
reach is written, every integer width collapses to ``int``, and non-ABI type
names are masked to numbers "to reduce the temptation" of depending on them:
command and event names are the ABI, type names are not.
"""

from __future__ import annotations

from typing import Any

from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    ObjectType,
    Schema,
)

EMPTY_OBJECT = "q_empty"


def introspect(schema: Schema, *, mask: bool = True) -> list[dict[str, Any]]:
    """SchemaInfo entries for ``schema``: commands, events, then reachable types."""
    names: dict[str, str] = {}

    def name_of(type_name: str) -> str:
        t = schema.types.get(type_name)
        if isinstance(t, BuiltinType):
            return "int" if t.json_type == "int" else _BUILTIN_NAMES[t.json_type]
        if isinstance(t, ArrayType):
            return f"[{name_of(t.element_type)}]"
        if type_name not in names:
            names[type_name] = str(len(names)) if mask else type_name
        return names[type_name]

    entries: list[dict[str, Any]] = []
    roots: list[str] = []
    uses_empty = any(c.arg_type is None or c.ret_type is None for c in schema.commands.values())
    if uses_empty or any(e.arg_type is None for e in schema.events.values()):
        name_of(EMPTY_OBJECT)  # QEMU numbers the empty object first
    for cmd in schema.commands.values():
        entry: dict[str, Any] = {
            "name": cmd.name,
            "meta-type": "command",
            "arg-type": name_of(cmd.arg_type or EMPTY_OBJECT),
            "ret-type": name_of(cmd.ret_type or EMPTY_OBJECT),
        }
        if cmd.allow_oob:
            entry["allow-oob"] = True
        _add_features(entry, cmd.features)
        entries.append(entry)
        roots += [t for t in (cmd.arg_type, cmd.ret_type) if t]
    for ev in schema.events.values():
        entry = {
            "name": ev.name,
            "meta-type": "event",
            "arg-type": name_of(ev.arg_type or EMPTY_OBJECT),
        }
        _add_features(entry, ev.features)
        entries.append(entry)
        roots += [ev.arg_type] if ev.arg_type else []
    written: set[str] = set()
    if EMPTY_OBJECT in names:
        entries.append({"name": names[EMPTY_OBJECT], "meta-type": "object", "members": []})
    for type_name in schema.walk_types(roots):
        out_name = name_of(type_name)
        if out_name in written:
            continue
        written.add(out_name)
        entries.append(_type_entry(schema, type_name, out_name, name_of))
    return entries


_BUILTIN_NAMES = {
    "string": "str",
    "number": "number",
    "boolean": "bool",
    "null": "null",
    "value": "any",
    "object": "any",
    "array": "any",
    "int": "int",
}


def _add_features(entry: dict[str, Any], features: tuple[str, ...]) -> None:
    if features:
        entry["features"] = list(features)


def _type_entry(schema: Schema, type_name: str, out_name: str, name_of: Any) -> dict[str, Any]:
    t = schema.type(type_name)
    entry: dict[str, Any] = {"name": out_name}
    if isinstance(t, BuiltinType):
        entry.update({"meta-type": "builtin", "json-type": t.json_type})
    elif isinstance(t, ArrayType):
        entry.update({"meta-type": "array", "element-type": name_of(t.element_type)})
    elif isinstance(t, EnumType):
        entry.update(
            {
                "meta-type": "enum",
                "values": t.names,
                "members": [
                    {"name": v.name, **({"features": list(v.features)} if v.features else {})}
                    for v in t.values
                ],
            }
        )
    elif isinstance(t, AlternateType):
        entry.update(
            {"meta-type": "alternate", "members": [{"type": name_of(b.type)} for b in t.branches]}
        )
    else:
        assert isinstance(t, ObjectType)
        members = []
        for m in t.members:
            member: dict[str, Any] = {"name": m.name, "type": name_of(m.type)}
            if m.optional:
                member["default"] = None
            if m.features:
                member["features"] = list(m.features)
            members.append(member)
        entry.update({"meta-type": "object", "members": members})
        if t.tag is not None:
            entry["tag"] = t.tag
            entry["variants"] = [{"case": v.case, "type": name_of(v.type)} for v in t.variants]
    _add_features(entry, t.features)
    return entry
