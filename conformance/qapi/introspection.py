"""Read ``query-qmp-schema`` output into the model.

Introspection is already in the model's shape; reading it is mostly checking
that every entry is well formed and every reference resolves, so that a bad
file is one clear error instead of a KeyError deep inside a consumer.  Type
names stay as sent (masked to numbers by QEMU); commands and events keep their
real names, which are the ABI.
"""

from __future__ import annotations

from typing import Any, cast

from conformance.qapi.builtins import introspection_builtin
from conformance.qapi.errors import QAPIError
from conformance.qapi.model import (
    AlternateBranch,
    AlternateType,
    ArrayType,
    Command,
    EnumType,
    EnumValue,
    Event,
    JsonType,
    Member,
    ObjectType,
    Schema,
    Variant,
    referenced_types,
)

_JSON_TYPES = {"string", "int", "number", "boolean", "null", "object", "array", "value"}


def _features(entry: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(f) for f in entry.get("features", []))


def read(entries: Any, source: str = "<introspection>") -> Schema:
    """The model of a ``query-qmp-schema`` return value (a list of SchemaInfo).

    Raises :class:`QAPIError` when ``entries`` is not such a list, an entry is
    malformed, or a type reference does not resolve.
    """
    if isinstance(entries, dict) and "return" in entries:
        entries = entries["return"]
    if not isinstance(entries, list):
        raise QAPIError(source, "introspection must be a list of SchemaInfo objects")
    schema = Schema(origin="introspection", source=source)
    masked = False
    for index, entry in enumerate(entries):
        where = f"{source}: entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise QAPIError(None, f"{where}: not a SchemaInfo object with a 'name'")
        name, meta = entry["name"], entry.get("meta-type")
        where = f"{where} ('{name}')"
        try:
            _read_entry(schema, entry, name, meta)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise QAPIError(None, f"{where}: malformed {meta} ({exc})") from None
        masked |= name.isdigit()
    schema.masked = masked
    uses: list[tuple[str, str | None]] = [
        (f"type '{t.name}'", ref) for t in schema.types.values() for ref in referenced_types(t)
    ]
    uses += [
        (f"command '{c.name}'", ref)
        for c in schema.commands.values()
        for ref in (c.arg_type, c.ret_type)
    ]
    uses += [(f"event '{e.name}'", e.arg_type) for e in schema.events.values()]
    for what, use in uses:
        if use is not None and use not in schema.types:
            raise QAPIError(source, f"{what} refers to undefined type '{use}'")
    _drop_empty_args(schema)
    return schema


def _read_entry(schema: Schema, entry: dict[str, Any], name: str, meta: Any) -> None:
    features = _features(entry)
    if meta == "command":
        schema.commands[name] = Command(
            name,
            arg_type=entry["arg-type"],
            ret_type=entry["ret-type"],
            allow_oob=bool(entry.get("allow-oob", False)),
            features=features,
        )
    elif meta == "event":
        schema.events[name] = Event(name, arg_type=entry["arg-type"], features=features)
    elif meta == "object":
        members = [
            Member(m["name"], m["type"], optional="default" in m, features=_features(m))
            for m in entry["members"]
        ]
        variants = [Variant(v["case"], v["type"]) for v in entry.get("variants", [])]
        schema.types[name] = ObjectType(
            name, members=members, tag=entry.get("tag"), variants=variants, features=features
        )
    elif meta == "enum":
        if "members" in entry:
            values = [EnumValue(m["name"], _features(m)) for m in entry["members"]]
        else:
            values = [EnumValue(v) for v in entry["values"]]
        schema.types[name] = EnumType(name, values=values, features=features)
    elif meta == "array":
        schema.types[name] = ArrayType(name, element_type=entry["element-type"])
    elif meta == "alternate":
        branches = [AlternateBranch(m["type"], m["type"]) for m in entry["members"]]
        schema.types[name] = AlternateType(name, branches=branches, features=features)
    elif meta == "builtin":
        json_type = entry["json-type"]
        if json_type not in _JSON_TYPES:
            raise ValueError(f"unknown json-type {json_type!r}")
        schema.types[name] = introspection_builtin(name, cast(JsonType, json_type))
    else:
        raise ValueError(f"unknown meta-type {meta!r}")


def _drop_empty_args(schema: Schema) -> None:
    """Point "no arguments" / "returns {}" at None, as source schemas do."""

    def empty(ref: str | None) -> bool:
        t = schema.types.get(ref) if ref is not None else None
        return isinstance(t, ObjectType) and t.empty

    for cmd in schema.commands.values():
        if empty(cmd.arg_type):
            cmd.arg_type = None
        if empty(cmd.ret_type):
            cmd.ret_type = None
    for ev in schema.events.values():
        if empty(ev.arg_type):
            ev.arg_type = None
