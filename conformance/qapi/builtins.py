"""QAPI's builtin types, with the integer ranges only source schemas know."""

from __future__ import annotations

from conformance.qapi.model import BuiltinType, EnumType, EnumValue, JsonType

INT_RANGES: dict[str, tuple[int, int]] = {
    "int": (-(2**63), 2**63 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "size": (0, 2**64 - 1),
}

_JSON_TYPES: dict[str, JsonType] = {
    "str": "string",
    "number": "number",
    "bool": "boolean",
    "null": "null",
    "any": "value",
    **{name: "int" for name in INT_RANGES},
}

#: QType's values, as QEMU defines the builtin enum.
QTYPE_VALUES = ("none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool")


def builtin_types() -> list[BuiltinType | EnumType]:
    """Fresh builtin entities for a source schema."""
    types: list[BuiltinType | EnumType] = []
    for name, json_type in _JSON_TYPES.items():
        lo, hi = INT_RANGES.get(name, (None, None))
        types.append(BuiltinType(name, json_type=json_type, minimum=lo, maximum=hi))
    # Builtin, so it counts among the implicit types, not the ones a schema defines.
    types.append(
        EnumType(
            "QType", values=[EnumValue(v) for v in QTYPE_VALUES], prefix="QTYPE", implicit=True
        )
    )
    return types


def introspection_builtin(name: str, json_type: JsonType) -> BuiltinType:
    """A builtin as introspection describes it: ``int`` covers every width.

    QEMU accepts ``int`` arguments from int64's minimum to uint64's maximum
    across its integer widths, so that is the only range introspection allows.
    """
    if json_type == "int":
        return BuiltinType(name, json_type="int", minimum=-(2**63), maximum=2**64 - 1)
    return BuiltinType(name, json_type=json_type)
