"""Return values for the commands the reference server has no model of.

A client library's test double must answer every command of the schema it
serves.  For a command without a handler, the server returns the smallest
value its return type allows: required members only, the first enum value,
the first union variant and alternate branch that can be built, empty
arrays, zero, ``false`` and empty strings.  The same command always gets
the same value, and every value validates against the command's return
type (tests/server/test_synth.py checks every command of real schemas).
"""

from __future__ import annotations

from typing import Any

from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    Member,
    ObjectType,
    Schema,
)

#: The smallest value of each builtin JSON type (ints are moved into range).
_SMALLEST: dict[str, Any] = {
    "int": 0,
    "number": 0,
    "string": "",
    "boolean": False,
    "null": None,
    "value": {},
}


class _Unbuildable(Exception):
    """The type needs itself through required members on this path."""


class Synthesizer:
    """Smallest valid values of a schema's types, each built once."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._cache: dict[str, Any] = {}

    def returns(self, command: str) -> Any:
        """What ``command`` returns: ``{}`` without a return type.  Raises
        :class:`KeyError` when the schema has no such command."""
        ret = self.schema.commands[command].ret_type
        return {} if ret is None else self.value(ret)

    def value(self, name: str) -> Any:
        """The smallest valid value of type ``name``.  Raises
        :class:`KeyError` for an unknown type and :class:`ValueError` for
        one no finite value has."""
        if name not in self._cache:
            try:
                self._cache[name] = self._build(name, ())
            except _Unbuildable:
                raise ValueError(f"type {name!r} has no finite value") from None
        return self._cache[name]

    def _build(self, name: str, path: tuple[str, ...]) -> Any:
        if name in self._cache:
            return self._cache[name]
        if name in path:
            raise _Unbuildable(name)
        path = (*path, name)
        t = self.schema.type(name)
        if isinstance(t, BuiltinType):
            smallest = _SMALLEST[t.json_type]
            if t.json_type == "int":
                lo = t.minimum if t.minimum is not None else smallest
                hi = t.maximum if t.maximum is not None else smallest
                smallest = min(max(smallest, lo), hi)
            return smallest
        if isinstance(t, EnumType):
            return t.values[0].name
        if isinstance(t, ArrayType):
            return []
        if isinstance(t, AlternateType):
            return self._first([lambda b=b: self._build(b.type, path) for b in t.branches], name)
        return self._object(t, path)

    def _object(self, t: ObjectType, path: tuple[str, ...]) -> dict[str, Any]:
        if t.tag is None:
            return self._members(t.members, path)
        tag = t.tag
        cases = [(v.case, self._branch(v.type).members) for v in t.variants]
        tag_member = t.member(tag)
        tag_type = self.schema.type(tag_member.type) if tag_member else None
        if isinstance(tag_type, EnumType):
            covered = {case for case, _ in cases}
            cases += [(v.name, []) for v in tag_type.values if v.name not in covered]
        tries = [
            lambda case=case, extra=extra: self._members([*t.members, *extra], path, {tag: case})
            for case, extra in cases
        ]
        return dict(self._first(tries, t.name))

    def _branch(self, name: str) -> ObjectType:
        branch = self.schema.type(name)
        assert isinstance(branch, ObjectType)
        return branch

    def _members(
        self, members: list[Member], path: tuple[str, ...], pins: dict[str, str] | None = None
    ) -> dict[str, Any]:
        pins = pins or {}
        out: dict[str, Any] = {}
        for m in members:
            if m.name in pins:
                out[m.name] = pins[m.name]
            elif not m.optional:
                out[m.name] = self._build(m.type, path)
        return out

    @staticmethod
    def _first(tries: list[Any], name: str) -> Any:
        for attempt in tries:
            try:
                return attempt()
            except _Unbuildable:
                continue
        raise _Unbuildable(name)
