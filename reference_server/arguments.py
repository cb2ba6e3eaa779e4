"""Check command arguments against the schema the way QEMU's input visitor does.

The checks run before a command has any effect (Q33, Q34), walk members in
declaration order and stop at the first error, and produce QEMU's exact texts:

* ``Parameter 'a.b[0].c' is missing`` / ``... is unexpected`` (full dotted path);
* ``Invalid parameter type for 'a.b', expected: integer`` (wrong JSON type);
* ``Parameter 'x' expects uint8_t`` (out of range: QEMU names only the last
  path component here, and ``null`` for list elements);
* ``Parameter 'x' does not accept value 'v'`` (bad enum; same naming);
* alternates choose a branch by JSON type and name themselves when none fits.

QEMU's quirks are kept on purpose: ``uint64`` takes negative int64 values,
``number`` takes integers, and an alternate with a ``number`` but no ``int``
branch takes integers too.  ``gen: false`` commands are not checked at all
(their hand-written handlers read the arguments), which the caller decides.
"""

from __future__ import annotations

from typing import Any

from conformance.protocol.values import json_kind
from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    ObjectType,
    Schema,
    TypeEntity,
)
from reference_server.errors import QMPError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1

#: The C type names QEMU prints for range errors of the narrow widths.
_RANGE_NAMES = {
    "int8": "int8_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "uint8": "uint8_t",
    "uint16": "uint16_t",
    "uint32": "uint32_t",
}
_SIGNED_RANGES = {"int8": 2**7, "int16": 2**15, "int32": 2**31}
_UNSIGNED_MAX = {"uint8": 2**8 - 1, "uint16": 2**16 - 1, "uint32": 2**32 - 1}


def _wrong_type(path: str, expected: str) -> QMPError:
    return QMPError(f"Invalid parameter type for '{path}', expected: {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ArgumentChecker:
    """Validates argument dicts against one schema; reusable and stateless."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def check_arguments(self, arg_type: str | None, arguments: dict[str, Any]) -> None:
        """Raise :class:`QMPError` for the first problem in ``arguments``."""
        if arg_type is None:
            self._unexpected("", arguments, set())
            return
        obj = self.schema.type(arg_type)
        assert isinstance(obj, ObjectType)
        self._object(obj, arguments, "")

    # -- visitors -------------------------------------------------------------

    def _visit(self, t: TypeEntity, value: Any, name: str | None, path: str) -> None:
        if isinstance(t, BuiltinType):
            self._builtin(t, value, name, path)
        elif isinstance(t, EnumType):
            if not isinstance(value, str):
                raise _wrong_type(path, "string")
            if value not in t.names:
                raise QMPError(f"Parameter '{name or 'null'}' does not accept value '{value}'")
        elif isinstance(t, ArrayType):
            if not isinstance(value, list):
                raise _wrong_type(path, "array")
            element = self.schema.type(t.element_type)
            for i, item in enumerate(value):
                self._visit(element, item, None, f"{path}[{i}]")
        elif isinstance(t, ObjectType):
            if not isinstance(value, dict):
                raise _wrong_type(path, "object")
            self._object(t, value, path)
        else:
            self._alternate(t, value, name, path)

    def _builtin(self, t: BuiltinType, value: Any, name: str | None, path: str) -> None:
        kind = t.json_type
        if kind == "value":
            return
        if kind == "string":
            if not isinstance(value, str):
                raise _wrong_type(path, "string")
        elif kind == "boolean":
            if not isinstance(value, bool):
                raise _wrong_type(path, "boolean")
        elif kind == "null":
            if value is not None:
                raise _wrong_type(path, "null")
        elif kind == "number":
            if not (_is_int(value) or isinstance(value, float)):
                raise _wrong_type(path, "number")
        elif kind == "int":
            self._integer(t.name, value, name, path)
        elif kind == "object" and not isinstance(value, dict):
            raise _wrong_type(path, "object")

    def _integer(self, width: str, value: Any, name: str | None, path: str) -> None:
        short = name or "null"
        if width in ("uint64", "size") or width in _UNSIGNED_MAX:
            # QEMU reads every unsigned width as uint64 first, taking negative
            # int64 values "for backward compatibility" (wrapping them).
            if not _is_int(value) or not INT64_MIN <= value <= UINT64_MAX:
                raise QMPError(f"Parameter '{path}' expects uint64")
            if width in _UNSIGNED_MAX and value % 2**64 > _UNSIGNED_MAX[width]:
                raise QMPError(f"Parameter '{short}' expects {_RANGE_NAMES[width]}")
            return
        if not _is_int(value) or not INT64_MIN <= value <= INT64_MAX:
            raise _wrong_type(path, "integer")
        if width in _SIGNED_RANGES:
            bound = _SIGNED_RANGES[width]
            if not -bound <= value < bound:
                raise QMPError(f"Parameter '{short}' expects {_RANGE_NAMES[width]}")

    def _object(self, obj: ObjectType, value: dict[str, Any], path: str) -> None:
        known = {m.name for m in obj.members}
        self._members(obj, value, path)
        if obj.tag is not None:
            tag_value = value.get(obj.tag)
            for variant in obj.variants:
                if variant.case == tag_value:
                    branch = self.schema.type(variant.type)
                    assert isinstance(branch, ObjectType)
                    for member in branch.members:
                        known.add(member.name)
                    self._members(branch, value, path)
                    break
        if not obj.open:
            self._unexpected(path, value, known)

    def _members(self, obj: ObjectType, value: dict[str, Any], path: str) -> None:
        """Visit ``obj``'s own members (base or branch); leftovers are checked
        once, by the caller, against every member the value may carry."""
        prefix = f"{path}." if path else ""
        for member in obj.members:
            if member.name not in value:
                if not member.optional:
                    raise QMPError(f"Parameter '{prefix}{member.name}' is missing")
                continue
            self._visit(
                self.schema.type(member.type), value[member.name], member.name, prefix + member.name
            )

    @staticmethod
    def _unexpected(path: str, value: dict[str, Any], known: set[str]) -> None:
        for key in value:
            if key not in known:
                name = f"{path}.{key}" if path else key
                raise QMPError(f"Parameter '{name}' is unexpected")

    def _alternate(self, alt: AlternateType, value: Any, name: str | None, path: str) -> None:
        kind = json_kind(value)
        by_kind: dict[str, TypeEntity] = {}
        for branch in alt.branches:
            t = self.schema.type(branch.type)
            for k in _wire_kinds(t):
                by_kind.setdefault(k, t)
        if kind == "int" and "int" not in by_kind and "number" in by_kind:
            kind = "number"
        target = by_kind.get(kind)
        if target is None:
            raise _wrong_type(name or "null", alt.name)
        self._visit(target, value, name, path)


def _wire_kinds(t: TypeEntity) -> tuple[str, ...]:
    """The JSON kinds (as :func:`json_kind` names them) a branch type takes."""
    if isinstance(t, BuiltinType):
        return {
            "string": ("string",),
            "int": ("int",),
            "number": ("number", "int"),
            "boolean": ("boolean",),
            "null": ("null",),
            "object": ("object",),
            "array": ("array",),
        }.get(t.json_type, ())
    if isinstance(t, EnumType):
        return ("string",)
    if isinstance(t, ArrayType):
        return ("array",)
    if isinstance(t, ObjectType):
        return ("object",)
    return ()
