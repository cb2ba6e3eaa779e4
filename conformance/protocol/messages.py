"""Builders and classifiers for the four kinds of server message.

Builders put members in the order QEMU 7.2 prints them (``id`` after
``return`` but before ``error``; ``timestamp`` before ``event`` before
``data``), so ``encode(msg)`` matches QEMU's bytes even without
``key_order="qdict"``.  :func:`shape_problems` is a light structural check
of a decoded server message against the QMP spec.
"""

from __future__ import annotations

import math
import re
from typing import Final, Literal, TypeAlias

from .values import JSON, JSONObject

__all__ = [
    "DOWNSTREAM_PREFIX",
    "MISSING",
    "TIMESTAMP_OUT_OF_RANGE",
    "MessageKind",
    "Missing",
    "bad_downstream_name",
    "classify",
    "downstream_problems",
    "error_response",
    "event",
    "greeting",
    "is_downstream_name",
    "return_response",
    "shape_problems",
    "timestamp",
    "version_info",
    "without_downstream",
]


class Missing:
    """Type of :data:`MISSING`: "no id member", distinct from an id of ``null``."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        """The one instance, so that ``Missing()`` is always :data:`MISSING`."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = Missing()

MessageKind: TypeAlias = Literal["greeting", "return", "error", "event", "unknown"]


def version_info(major: int, minor: int, micro: int, package: str = "") -> JSONObject:
    """A ``VersionInfo`` value (greeting ``version`` and ``query-version`` return)."""
    return {"qemu": {"micro": micro, "minor": minor, "major": major}, "package": package}


def greeting(version: JSON, capabilities: list[str] | tuple[str, ...]) -> JSONObject:
    """``{"QMP": {"version": ..., "capabilities": [...]}}``."""
    return {"QMP": {"version": version, "capabilities": list(capabilities)}}


def return_response(value: JSON, id: JSON | Missing = MISSING) -> JSONObject:
    """``{"return": value, "id"?: id}``."""
    message: JSONObject = {"return": value}
    if not isinstance(id, Missing):
        message["id"] = id
    return message


def error_response(error_class: str, desc: str, id: JSON | Missing = MISSING) -> JSONObject:
    """``{"id"?: id, "error": {"class": ..., "desc": ...}}``."""
    message: JSONObject = {}
    if not isinstance(id, Missing):
        message["id"] = id
    message["error"] = {"class": error_class, "desc": desc}
    return message


def timestamp(when: float) -> JSONObject:
    """``{"seconds", "microseconds"}`` for a wall-clock time in seconds."""
    seconds = math.floor(when)
    micro = min(999_999, round((when - seconds) * 1_000_000))
    return {"seconds": seconds, "microseconds": micro}


def event(name: str, data: JSONObject | None = None, *, when: JSONObject | float) -> JSONObject:
    """``{"timestamp": ..., "event": name, "data"?: data}``; ``data`` omitted when None."""
    stamp = when if isinstance(when, dict) else timestamp(when)
    message: JSONObject = {"timestamp": stamp, "event": name}
    if data is not None:
        message["data"] = data
    return message


def classify(message: JSON) -> MessageKind:
    """Which kind of server message this is, by its distinguishing member."""
    if not isinstance(message, dict):
        return "unknown"
    if "QMP" in message:
        return "greeting"
    if "return" in message:
        return "return"
    if "error" in message:
        return "error"
    if "event" in message:
        return "event"
    return "unknown"


def _int(value: JSON) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: The one event problem that is about a timestamp's values, not its shape.
TIMESTAMP_OUT_OF_RANGE = "timestamp out of range"


def shape_problems(message: JSON) -> list[str]:
    """Spec violations in a decoded server message's structure (empty if fine).

    Unknown extra members are reported too; the spec allows downstream
    ``__``-prefixed ones only.
    """
    kind = classify(message)
    if not isinstance(message, dict) or kind == "unknown":
        return ["not a greeting, return, error or event"]
    problems: list[str] = []
    allowed: set[str]
    if kind == "greeting":
        allowed = {"QMP"}
        body = message["QMP"]
        if not isinstance(body, dict):
            problems.append("QMP is not an object")
        else:
            if not isinstance(body.get("version"), dict):
                problems.append("QMP.version is not an object")
            caps = body.get("capabilities")
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                problems.append("QMP.capabilities is not an array of strings")
    elif kind == "return":
        allowed = {"return", "id"}
    elif kind == "error":
        allowed = {"error", "id"}
        err = message["error"]
        if not isinstance(err, dict):
            problems.append("error is not an object")
        else:
            for member in ("class", "desc"):
                if not isinstance(err.get(member), str):
                    problems.append(f"error.{member} is not a string")
    else:
        allowed = {"event", "data", "timestamp"}
        if not isinstance(message["event"], str):
            problems.append("event is not a string")
        if "data" in message and not isinstance(message["data"], dict):
            problems.append("data is not an object")
        stamp = message.get("timestamp")
        if (
            not isinstance(stamp, dict)
            or not _int(stamp.get("seconds"))
            or not _int(stamp.get("microseconds"))
        ):
            problems.append("timestamp lacks integer seconds/microseconds")
        else:
            if set(stamp) != {"seconds", "microseconds"}:
                problems.append("timestamp has members besides seconds and microseconds")
            sec, usec = stamp["seconds"], stamp["microseconds"]
            assert isinstance(sec, int) and isinstance(usec, int)
            if not ((sec == -1 and usec == -1) or (sec >= 0 and 0 <= usec <= 999_999)):
                problems.append(TIMESTAMP_OUT_OF_RANGE)
    for member in message:
        if member not in allowed and not member.startswith("__"):
            problems.append(f"unexpected member {member!r}")
    return problems


#: A downstream extension's name prefix (Q38): two underscores, a reversed
#: domain name, one underscore (``__com.redhat_``).  QEMU's generator
#: accepts any of those characters in the domain; so does this.
DOWNSTREAM_PREFIX = r"__[A-Za-z0-9.-]+_"
_DOWNSTREAM_NAME = re.compile(DOWNSTREAM_PREFIX + r"[A-Za-z0-9]")


def bad_downstream_name(name: str) -> bool:
    """Whether ``name`` claims to be downstream (begins with ``__``) but is no
    ``__RFQDN_`` name."""
    return name.startswith("__") and not is_downstream_name(name)


def is_downstream_name(name: str) -> bool:
    """Whether ``name`` is a well-formed downstream ``__RFQDN_`` name."""
    return _DOWNSTREAM_NAME.match(name) is not None


def without_downstream(value: JSON) -> JSON:
    """``value`` without the members with well-formed downstream names, at
    any depth: what an upstream schema judges of a downstream build's output,
    which may add such members anywhere (Q38)."""
    if isinstance(value, dict):
        return {k: without_downstream(v) for k, v in value.items() if not is_downstream_name(k)}
    if isinstance(value, list):
        return [without_downstream(v) for v in value]
    return value


def downstream_problems(message: JSON) -> list[str]:
    """What a server message breaks of the downstream rules (Q38): a member
    named with ``__`` that is no ``__RFQDN_`` name, anywhere in it, and any
    downstream member in a greeting, which a downstream build may change only
    by offering more capabilities."""
    problems: list[str] = []
    greeting = classify(message) == "greeting"
    stack: list[JSON] = [message]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, member in value.items():
                if bad_downstream_name(key):
                    problems.append(f"member {key!r} is not a __RFQDN_ name")
                if greeting and key.startswith("__"):
                    problems.append(f"the greeting has a downstream member {key!r}")
                stack.append(member)
        elif isinstance(value, list):
            stack.extend(value)
    return problems
