"""Dispatcher-level validation of one parsed request, as QEMU does it.

QEMU checks the members of a request object in its hash-table order, not in
the order they were sent, and stops at the first problem; so with several
problems the one reported depends on the member names.  That order is
reproduced with :func:`~conformance.protocol._qemu.qdict_order`.  The id is
echoed on every error once the input is an object (even when the id member
itself comes after the faulty one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._qemu import qdict_keys
from .dialects import QEMU, Dialect
from .values import JSON, JSONObject

__all__ = [
    "GENERIC_ERROR",
    "Request",
    "RequestError",
    "is_oob_request",
    "validate_request",
]

GENERIC_ERROR = "GenericError"


@dataclass(frozen=True)
class Request:
    """A well-formed command request.  ``arguments`` is ``{}`` when absent."""

    command: str
    arguments: JSONObject = field(default_factory=dict)
    id: JSON = None
    has_id: bool = False
    oob: bool = False
    raw: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class RequestError:
    """A request rejected before any command lookup."""

    error_class: str
    desc: str
    id: JSON = None
    has_id: bool = False


def is_oob_request(value: JSON, dialect: Dialect = QEMU) -> bool:
    """Whether QEMU's reader would run this input at once instead of queueing it.

    Deliberately independent of negotiation: QEMU 7.2 sends every
    ``exec-oob``-without-``execute`` object down the immediate path, where
    the dispatcher then rejects it if OOB was not negotiated.
    """
    if not isinstance(value, dict):
        return False
    if dialect.oob_style == "exec-oob":
        return "exec-oob" in value and "execute" not in value
    if dialect.oob_style == "control":
        control = value.get("control")
        return isinstance(control, dict) and control.get("run-oob") is True
    return False


def validate_request(
    value: JSON,
    *,
    oob_enabled: bool,
    dialect: Dialect = QEMU,
    raw: bytes = b"",
) -> Request | RequestError:
    """Check one top-level input value; return the request or QEMU's error.

    ``oob_enabled`` is whether this session negotiated the ``oob``
    capability (it decides whether ``exec-oob`` is a member at all).
    """
    if not isinstance(value, dict):
        return RequestError(GENERIC_ERROR, "QMP input must be a JSON object")
    exec_oob_member = dialect.oob_style == "exec-oob" and oob_enabled
    control_member = dialect.oob_style == "control"
    exec_key: str | None = None
    problem: str | None = None
    for name in qdict_keys(value):
        member = value[name]
        if name == "execute" or (name == "exec-oob" and exec_oob_member):
            if not isinstance(member, str):
                problem = f"QMP input member '{name}' must be a string"
            elif exec_key is not None:
                problem = f"QMP input member '{name}' clashes with '{exec_key}'"
            else:
                exec_key = name
                continue
        elif name == "arguments":
            if isinstance(member, dict):
                continue
            problem = "QMP input member 'arguments' must be an object"
        elif name == "id":
            continue
        elif name == "control" and control_member:
            if isinstance(member, dict):
                continue
            # Wording of the 2.12-era check is approximated, not observed.
            problem = "QMP input member 'control' must be an object"
        else:
            problem = f"QMP input member '{name}' is unexpected"
        break
    if problem is None and exec_key is None:
        problem = "QMP input lacks member 'execute'"
    oob = exec_key == "exec-oob"
    if problem is None and control_member and is_oob_request(value, dialect):
        if not oob_enabled:
            # QEMU 2.12 refused run-oob unless negotiated (approximate wording).
            problem = (
                "Please enable Out-Of-Band first for the session during capabilities negotiation"
            )
        oob = True
    has_id = "id" in value
    if problem is not None:
        return RequestError(GENERIC_ERROR, problem, value.get("id"), has_id)
    assert exec_key is not None
    command = value[exec_key]
    assert isinstance(command, str)
    arguments = value.get("arguments")
    if arguments is None:
        arguments = {}
    assert isinstance(arguments, dict)
    return _request(command, arguments, value.get("id"), has_id, oob, raw)


_new = object.__new__


def _request(
    command: str, arguments: JSONObject, rid: JSON, has_id: bool, oob: bool, raw: bytes
) -> Request:
    # Once per request: filling the frozen instance's dict directly skips the
    # object.__setattr__ call per field that a frozen dataclass's __init__ makes.
    request = _new(Request)
    fields = request.__dict__
    fields["command"] = command
    fields["arguments"] = arguments
    fields["id"] = rid
    fields["has_id"] = has_id
    fields["oob"] = oob
    fields["raw"] = raw
    return request
