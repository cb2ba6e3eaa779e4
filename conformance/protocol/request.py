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

from ._qemu import qdict_order
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
    has_id = "id" in value
    rid = value.get("id")

    def fail(desc: str) -> RequestError:
        return RequestError(GENERIC_ERROR, desc, rid, has_id)

    exec_oob_member = dialect.oob_style == "exec-oob" and oob_enabled
    control_member = dialect.oob_style == "control"
    exec_key: str | None = None
    for name in qdict_order(value):
        member = value[name]
        if name == "execute" or (name == "exec-oob" and exec_oob_member):
            if not isinstance(member, str):
                return fail(f"QMP input member '{name}' must be a string")
            if exec_key is not None:
                return fail(f"QMP input member '{name}' clashes with '{exec_key}'")
            exec_key = name
        elif name == "arguments":
            if not isinstance(member, dict):
                return fail("QMP input member 'arguments' must be an object")
        elif name == "id":
            continue
        elif name == "control" and control_member:
            # Wording of the 2.12-era check is approximated, not observed.
            if not isinstance(member, dict):
                return fail("QMP input member 'control' must be an object")
        else:
            return fail(f"QMP input member '{name}' is unexpected")
    if exec_key is None:
        return fail("QMP input lacks member 'execute'")

    command = value[exec_key]
    assert isinstance(command, str)
    oob = exec_key == "exec-oob"
    if control_member and is_oob_request(value, dialect):
        if not oob_enabled:
            # QEMU 2.12 refused run-oob unless negotiated (approximate wording).
            return fail(
                "Please enable Out-Of-Band first for the session during capabilities negotiation"
            )
        oob = True
    arguments = value.get("arguments", {})
    assert isinstance(arguments, dict)
    return Request(command, arguments, rid, has_id, oob, raw)
