"""JSON Schema (draft 2020-12) for QMP: wire messages and every command and event.

One definition per QAPI type lives under ``$defs`` (arrays are inlined, their
names are not valid URI fragments); a command's or event's document carries
only the definitions reachable from it, so it stands alone when written to a
file.  Unions are ``oneOf`` their branches, each branch a closed object with
the tag pinned by ``const``, which is exactly what QEMU accepts: base and
branch members merged, nothing else.  Alternates are ``anyOf`` their branches,
as QEMU chooses one by the JSON type it sees.

Validators are compiled once per document and cached on the :class:`Specs`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from conformance.protocol.dialects import DEFAULT, Dialect, resolve
from conformance.protocol.messages import without_downstream
from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    Member,
    ObjectType,
    Schema,
    TypeEntity,
)

JSONSchema = dict[str, Any]
DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: QapiErrorClass, for schemas too old to define it.
DEFAULT_ERROR_CLASSES = (
    "GenericError",
    "CommandNotFound",
    "DeviceNotActive",
    "DeviceNotFound",
    "KVMMissingCap",
)

WireKind = Literal["greeting", "request", "success", "error", "event"]
WIRE_KINDS: tuple[WireKind, ...] = ("greeting", "request", "success", "error", "event")

_BUILTIN_JSON = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "object": {"type": "object"},
    "array": {"type": "array"},
    "value": {},
}


def _ref(name: str) -> JSONSchema:
    return {"$ref": f"#/$defs/{name}"}


class Specs:
    """JSON Schemas derived from one :class:`Schema`, built lazily and cached."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._defs: dict[str, JSONSchema] = {}
        self._docs: dict[tuple[str, str], JSONSchema] = {}
        self._validators: dict[tuple[str, str], Draft202012Validator] = {}

    # -- types ---------------------------------------------------------------

    def type_ref(self, name: str) -> JSONSchema:
        """A schema for a value of type ``name``: a ``$ref`` unless inlined.  Raises
        :class:`KeyError` when the schema defines no type ``name``."""
        t = self.schema.type(name)
        if isinstance(t, ArrayType):
            return {"type": "array", "items": self.type_ref(t.element_type)}
        if isinstance(t, BuiltinType):
            return self._builtin(t)
        return _ref(name)

    def definition(self, name: str) -> JSONSchema:
        """The ``$defs`` entry of type ``name``; KeyError when it is not defined."""
        if name not in self._defs:
            self._defs[name] = self._build(self.schema.type(name))
        return self._defs[name]

    def _builtin(self, t: BuiltinType) -> JSONSchema:
        if t.json_type == "int":
            out: JSONSchema = {"type": "integer"}
            if t.minimum is not None:
                out["minimum"] = t.minimum
            if t.maximum is not None:
                out["maximum"] = t.maximum
            return out
        return dict(_BUILTIN_JSON[t.json_type])

    def _build(self, t: TypeEntity) -> JSONSchema:
        if isinstance(t, EnumType):
            return {"type": "string", "enum": t.names}
        if isinstance(t, ObjectType):
            return self._object(t, [], None)
        if isinstance(t, AlternateType):
            return {"anyOf": [self.type_ref(b.type) for b in t.branches]}
        return self.type_ref(t.name)

    def _object(
        self, obj: ObjectType, outer: list[Member], tag: tuple[str, JSONSchema] | None
    ) -> JSONSchema:
        """``obj`` as a closed object, with ``outer`` members of an enclosing
        union merged in and the enclosing tag pinned."""
        members = outer + obj.members
        if not obj.variants:
            return self._closed(members, tag, obj.open)
        assert obj.tag is not None
        tag_member = obj.member(obj.tag)
        assert tag_member is not None
        tag_type = self.schema.type(tag_member.type)
        cases = tag_type.names if isinstance(tag_type, EnumType) else []
        branches: list[JSONSchema] = []
        for v in obj.variants:
            branch = self.schema.type(v.type)
            assert isinstance(branch, ObjectType)
            branches.append(self._object(branch, members, (obj.tag, {"const": v.case})))
        rest = [c for c in cases if c not in {v.case for v in obj.variants}]
        if rest:
            branches.append(self._closed(members, (obj.tag, {"enum": rest}), obj.open))
        out: JSONSchema = {"type": "object", "oneOf": branches}
        if tag is not None:
            out["properties"] = {tag[0]: tag[1]}
        return out

    def _closed(
        self, members: list[Member], tag: tuple[str, JSONSchema] | None, open_: bool
    ) -> JSONSchema:
        props: JSONSchema = {}
        required: list[str] = []
        for m in members:
            prop = self.type_ref(m.type)
            if "deprecated" in m.features:
                prop = {**prop, "deprecated": True}
            props[m.name] = prop
            if not m.optional:
                required.append(m.name)
        if tag is not None:
            props[tag[0]] = {**props.get(tag[0], {}), **tag[1]}
        out: JSONSchema = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        if not open_:
            out["additionalProperties"] = False
        return out

    def _document(
        self, root: JSONSchema, roots: list[str], title: str, extra: JSONSchema | None = None
    ) -> JSONSchema:
        doc: JSONSchema = {"$schema": DRAFT, "title": title, **(extra or {}), **root}
        defs = {
            n: self.definition(n)
            for n in self.schema.walk_types(roots)
            if not isinstance(self.schema.type(n), ArrayType | BuiltinType)
        }
        if defs:
            doc["$defs"] = defs
        return doc

    # -- commands and events ---------------------------------------------------

    def type_document(self, name: str) -> JSONSchema:
        """A standalone document for a value of type ``name``; KeyError when the
        schema defines no such type."""
        key = ("type", name)
        if key not in self._docs:
            self._docs[key] = self._document(self.type_ref(name), [name], name)
        return self._docs[key]

    def command_arguments(self, name: str) -> JSONSchema:
        """The ``arguments`` object of command ``name`` (``{}`` when it takes none);
        KeyError for a command the schema does not have."""
        key = ("arguments", name)
        if key not in self._docs:
            cmd = self.schema.commands[name]
            extra = _annotations(cmd.features)
            if cmd.arg_type is None:
                root: JSONSchema = {"type": "object", "additionalProperties": cmd.gen is False}
                self._docs[key] = self._document(root, [], f"{name} arguments", extra)
            else:
                self._docs[key] = self._document(
                    self.type_ref(cmd.arg_type), [cmd.arg_type], f"{name} arguments", extra
                )
        return self._docs[key]

    def command_return(self, name: str) -> JSONSchema:
        """The ``return`` value of command ``name`` (``{}`` when it returns none);
        KeyError for a command the schema does not have."""
        key = ("return", name)
        if key not in self._docs:
            cmd = self.schema.commands[name]
            if cmd.ret_type is None:
                root: JSONSchema = {"type": "object", "maxProperties": 0}
                self._docs[key] = self._document(root, [], f"{name} return")
            else:
                self._docs[key] = self._document(
                    self.type_ref(cmd.ret_type), [cmd.ret_type], f"{name} return"
                )
        return self._docs[key]

    def event_data(self, name: str) -> JSONSchema:
        """The ``data`` object of event ``name``; events without data send none.
        KeyError for an event the schema does not have."""
        key = ("data", name)
        if key not in self._docs:
            ev = self.schema.events[name]
            extra = _annotations(ev.features)
            if ev.arg_type is None:
                root: JSONSchema = {"type": "object", "maxProperties": 0}
                self._docs[key] = self._document(root, [], f"{name} data", extra)
            else:
                self._docs[key] = self._document(
                    self.type_ref(ev.arg_type), [ev.arg_type], f"{name} data", extra
                )
        return self._docs[key]

    def all_documents(self) -> dict[str, JSONSchema]:
        """Every command's and event's documents, keyed by a file-like name."""
        out: dict[str, JSONSchema] = {}
        for name in sorted(self.schema.commands):
            out[f"commands/{name}.arguments"] = self.command_arguments(name)
            out[f"commands/{name}.return"] = self.command_return(name)
        for name in sorted(self.schema.events):
            out[f"events/{name}.data"] = self.event_data(name)
        return out

    # -- validation ------------------------------------------------------------

    def validator(
        self, kind: Literal["arguments", "return", "data", "type"], name: str
    ) -> Draft202012Validator:
        """A compiled validator for a command's arguments or return, an
        event's data, or a type; built once.  KeyError when the schema has no
        such command, event or type."""
        key = (kind, name)
        if key not in self._validators:
            doc = {
                "arguments": self.command_arguments,
                "return": self.command_return,
                "data": self.event_data,
                "type": self.type_document,
            }[kind](name)
            self._validators[key] = Draft202012Validator(doc)
        return self._validators[key]

    def errors(
        self, kind: Literal["arguments", "return", "data", "type"], name: str, value: Any
    ) -> list[str]:
        """Every way ``value`` breaks the schema, as ``path: message`` lines;
        KeyError as :meth:`validator` raises it.  What a server sends (a
        return, event data) may carry downstream members the schema does not
        declare, which a downstream build may add to any output (Q38): it
        passes when it is valid with them or without them."""
        validator = self.validator(kind, name)
        found = [line for e in validator.iter_errors(value) for line in _explain(e)]
        if found and kind in ("return", "data") and validator.is_valid(without_downstream(value)):
            return []
        return found

    # -- wire messages -----------------------------------------------------------

    def wire(self, kind: WireKind, dialect: Dialect | str = DEFAULT) -> JSONSchema:
        """The schema of one kind of wire message in ``dialect`` (an object or
        its name; KeyError for an unknown name)."""
        d = resolve(dialect)
        key = (f"wire-{d.name}", kind)
        if key not in self._docs:
            self._docs[key] = self._wire(kind, d)
        return self._docs[key]

    def wire_validator(
        self, kind: WireKind, dialect: Dialect | str = DEFAULT
    ) -> Draft202012Validator:
        """A compiled validator for :meth:`wire`'s schema; KeyError for an unknown
        dialect name."""
        key = (f"wire-{resolve(dialect).name}", kind)
        if key not in self._validators:
            self._validators[key] = Draft202012Validator(self.wire(kind, dialect))
        return self._validators[key]

    def _wire(self, kind: WireKind, dialect: Dialect) -> JSONSchema:
        if kind == "greeting":
            version: JSONSchema = {"type": "object"}
            roots: list[str] = []
            query_version = self.schema.commands.get("query-version")
            if query_version is not None and query_version.ret_type is not None:
                version = self.type_ref(query_version.ret_type)
                roots = [query_version.ret_type]
            caps: JSONSchema = {"type": "array", "items": {"type": "string"}}
            if not dialect.known_capabilities:
                caps["maxItems"] = 0  # a server that knows no capability offers none
            root = _closed_object(
                {"QMP": _closed_object({"version": version, "capabilities": caps})}
            )
            return self._document(root, roots, f"QMP greeting ({dialect})")
        if kind == "request":
            props: JSONSchema = {
                "execute": {"type": "string"},
                "arguments": {"type": "object"},
                "id": {},
            }
            one_of = [{"required": ["execute"]}]
            if dialect.oob_style == "exec-oob":
                props["exec-oob"] = {"type": "string"}
                one_of.append({"required": ["exec-oob"]})
            elif dialect.oob_style == "control":
                props["control"] = _closed_object({"run-oob": {"type": "boolean"}}, [])
            root = {
                "type": "object",
                "properties": props,
                "additionalProperties": False,
                "oneOf": one_of,
            }
            return self._document(root, [], f"QMP request ({dialect})")
        if kind == "success":
            root = _closed_object({"return": {}, "id": {}}, ["return"])
            return self._document(root, [], f"QMP success response ({dialect})")
        if kind == "error":
            classes = self.error_classes()
            error = _closed_object(
                {"class": {"type": "string", "enum": classes}, "desc": {"type": "string"}}
            )
            root = _closed_object({"error": error, "id": {}}, ["error"])
            return self._document(root, [], f"QMP error response ({dialect})")
        timestamp = {
            "type": "object",
            "required": ["seconds", "microseconds"],
            "additionalProperties": False,
            "properties": {"seconds": {"type": "integer"}, "microseconds": {"type": "integer"}},
            "oneOf": [
                {"properties": {"seconds": {"const": -1}, "microseconds": {"const": -1}}},
                {
                    "properties": {
                        "seconds": {"minimum": 0},
                        "microseconds": {"minimum": 0, "maximum": 999999},
                    }
                },
            ],
        }
        root = _closed_object(
            {"event": {"type": "string"}, "data": {"type": "object"}, "timestamp": timestamp},
            ["event", "timestamp"],
        )
        return self._document(root, [], f"QMP event ({dialect})")

    def error_classes(self) -> list[str]:
        """The error classes the schema defines, else QEMU's long-standing five."""
        t = self.schema.types.get("QapiErrorClass")
        if isinstance(t, EnumType):
            return t.names
        return list(DEFAULT_ERROR_CLASSES)

    def export(self, directory: str, dialects: Iterable[Dialect | str] = (DEFAULT,)) -> list[str]:
        """Write every document under ``directory``; returns the paths written.
        Raises :class:`KeyError` for an unknown dialect name and :class:`OSError`
        when a file cannot be written."""
        written: list[str] = []
        documents = dict(self.all_documents())
        for dialect in map(resolve, dialects):
            for kind in WIRE_KINDS:
                if kind == "greeting" and not dialect.greeting:
                    continue
                documents[f"wire/{dialect.name}/{kind}"] = self.wire(kind, dialect)
        for rel, doc in documents.items():
            path = os.path.join(directory, rel + ".schema.json")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=False)
                f.write("\n")
            written.append(path)
        return written


def _annotations(features: tuple[str, ...]) -> JSONSchema:
    out: JSONSchema = {}
    if "deprecated" in features:
        out["deprecated"] = True
    if "unstable" in features:
        out["x-unstable"] = True
    return out


def _closed_object(props: JSONSchema, required: list[str] | None = None) -> JSONSchema:
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


def _path(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return path.lstrip(".") or "(root)"


def _explain(error: ValidationError) -> list[str]:
    """``path: message`` lines, descending into the union branch the value's
    tag selects: "not valid under any of the given schemas" helps nobody."""
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        branches: list[Any] = (
            list(error.schema.get("oneOf", [])) if isinstance(error.schema, dict) else []
        )
        tag = _union_tag(branches)
        if tag is not None:
            if tag not in error.instance:
                return [f"{_path(error)}: {tag!r} is a required property"]
            value = error.instance[tag]
            for index, branch in enumerate(branches):
                pinned = branch["properties"][tag]
                if pinned.get("const", object()) == value or value in pinned.get("enum", ()):
                    inner = [e for e in error.context or () if e.relative_schema_path[0] == index]
                    return [line for e in inner for line in _explain(e)]
            allowed = [
                v
                for b in branches
                for v in (
                    [b["properties"][tag]["const"]]
                    if "const" in b["properties"][tag]
                    else b["properties"][tag].get("enum", [])
                )
            ]
            where = f"{_path(error)}.{tag}" if error.absolute_path else tag
            return [f"{where}: {value!r} is not one of {allowed}"]
    if error.validator == "anyOf" and error.context:
        # An alternate: explain the branch of the value's JSON type, if one is.
        by_branch: dict[int, list[ValidationError]] = {}
        for e in error.context:
            by_branch.setdefault(int(e.relative_schema_path[0]), []).append(e)
        typed = [
            errs
            for errs in by_branch.values()
            if not any(e.validator == "type" and not e.relative_path for e in errs)
        ]
        if len(typed) == 1:
            return [line for e in typed[0] for line in _explain(e)]
    return [f"{_path(error)}: {error.message}"]


def _union_tag(branches: Any) -> str | None:
    """The member every branch pins with ``const``/``enum``: a union's tag."""
    if not isinstance(branches, list) or not branches:
        return None
    common: set[str] | None = None
    for b in branches:
        props = b.get("properties", {}) if isinstance(b, dict) else {}
        pinned = {
            k
            for k, v in props.items()
            if isinstance(v, dict) and ("const" in v or ("enum" in v and "type" not in v))
        }
        common = pinned if common is None else common & pinned
    return min(common) if common else None
