"""The 2011 list form, translated to ordinary QAPI expressions.

Anthony Liguori's 2011 prototype wrote commands as lists and types as bare
one-key objects:

* ``[ NAME, REQUIRED, OPTIONAL, RETURNS ]`` (first form) or
  ``[ NAME, ARGS-with-*optional, RETURNS ]`` (later form);
* ``{ 'TypeName': {members} }`` a struct, ``{ 'TypeName': [values] }`` an enum,
  ``{ 'ALL_CAPS': {members} }`` a signal (an event);
* ``'none'`` for no return, ``'**'`` for free-form arguments (a ``gen: false``
  command in today's terms), ``'dict'`` for a free-form value.

A command returning a signal returned a handle to it (an int) that
``put-event`` released, so such returns become ``int``.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.qapi.errors import QAPIError
from conformance.qapi.model import Doc, SourceInfo
from conformance.qapi.source import Expr

_SIGNAL = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _fix_type(value: Any) -> Any:
    if value == "dict":
        return "any"
    if isinstance(value, list):
        return [_fix_type(v) for v in value]
    if isinstance(value, dict):
        return {k: _fix_type(v) for k, v in value.items()}
    return value


def _args(required: Any, optional: Any, info: SourceInfo) -> tuple[dict[str, Any], bool]:
    """Arguments in ``*optional`` form, and whether free-form ones are allowed."""
    if not isinstance(required, dict) or not isinstance(optional, dict):
        raise QAPIError(info, "list-form command arguments must be objects")
    free_form = False
    members: dict[str, Any] = {}
    for key, value, prefix in [
        *((k, v, "") for k, v in required.items()),
        *((k, v, "*") for k, v in optional.items()),
    ]:
        if "**" in (key, value):
            free_form = True
            continue
        members[prefix + key] = _fix_type(value)
    return members, free_form


def translate(values: list[tuple[Any, SourceInfo, Doc | None]]) -> list[Expr]:
    """Modern expressions for the top-level ``values`` of a list-form schema.

    Raises :class:`QAPIError` for a value that is neither a well-formed list-form
    command nor a one-key type definition.
    """
    signals = {
        next(iter(v))
        for v, _, _ in values
        if isinstance(v, dict) and len(v) == 1 and _SIGNAL.match(next(iter(v)))
    }
    exprs: list[Expr] = []
    for value, info, doc in values:
        if isinstance(value, list):
            if len(value) == 4:
                name, required, optional, returns = value
            elif len(value) == 3:
                name, required, returns = value
                optional = {}
            else:
                raise QAPIError(info, "a list-form command has 3 or 4 elements")
            if not isinstance(name, str):
                raise QAPIError(info, "a list-form command starts with its name")
            data, free_form = _args(required, optional, info)
            expr: dict[str, Any] = {"command": name}
            if data:
                expr["data"] = data
            if isinstance(returns, str) and returns in signals:
                expr["returns"] = "int"
            elif returns != "none":
                expr["returns"] = _fix_type(returns)
            if free_form:
                expr["gen"] = False
            exprs.append(Expr(expr, info, doc))
        elif isinstance(value, dict) and len(value) == 1:
            name, body = next(iter(value.items()))
            if isinstance(body, list):
                exprs.append(Expr({"enum": name, "data": body}, info, doc))
            elif isinstance(body, dict):
                kind = "event" if name in signals else "struct"
                exprs.append(Expr({kind: name, "data": _fix_type(body)}, info, doc))
            else:
                raise QAPIError(info, f"list-form definition '{name}' must be an object or list")
        else:
            raise QAPIError(info, "expected a list-form command or a one-key type definition")
    return exprs
