"""The JSON value model shared by the protocol core.

Objects are ``dict`` (insertion order = wire order), arrays ``list``, and the
scalars ``str``, ``int``, ``float``, ``bool`` and ``None``.  ``bool`` is never a
number here even though Python makes it an ``int`` subclass.
"""

from __future__ import annotations

from typing import TypeAlias

JSON: TypeAlias = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
JSONObject: TypeAlias = dict[str, JSON]

INT64_MIN = -(1 << 63)
UINT64_MAX = (1 << 64) - 1


def as_object(value: JSON) -> JSONObject:
    """``value`` when it is a JSON object, else an empty one: for reading
    members of server output whose shape is not guaranteed."""
    return value if isinstance(value, dict) else {}


def qemu_number(value: int | float) -> int | float:
    """The number QEMU would hold for ``value``.

    QEMU stores an integer as int64, else uint64, else (losing precision) as a
    double; any other number is a double.  Python's int->float conversion
    rounds to nearest like glibc's strtod, so this matches QEMU's parse of the
    decimal text of ``value``.
    """
    if isinstance(value, int) and not INT64_MIN <= value <= UINT64_MAX:
        try:
            return float(value)
        except OverflowError:  # strtod saturates to infinity
            return float("inf") if value > 0 else float("-inf")
    return value


def json_kind(value: object) -> str:
    """The JSON kind of a decoded value: ``null``, ``boolean``, ``int``,
    ``number`` (a double, even a whole one), ``string``, ``array`` or ``object``.

    Integers and doubles are apart because QEMU's input visitor tells them
    apart: an integer parameter rejects ``1.0``.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"
