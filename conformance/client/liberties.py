"""The liberties a QMP server may take, each a pure rewrite of its output.

None of them breaks a rule a server keeps; each is something a conforming
client must survive.  A liberty sees every message the server writes, in
order, and says what to write instead: messages (encoded as QEMU encodes),
raw bytes, or nothing.  The proxy (:mod:`conformance.client.proxy`) does the
writing, with the pacing and the cut a liberty asks for.

Whether a conforming client gets the *same result* under a liberty as
without it is part of the liberty: under ``member-order`` it must, under
``error-replies`` it cannot (its commands fail), and there it must only end,
without crashing, in its own time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol.encoding import encode
from conformance.protocol.messages import classify

#: A name a future QEMU could give an event, a member or a capability.
FUTURE = "qmp-conformance-future"
#: A downstream name, as Q38 lets a downstream build add to any output.
DOWNSTREAM = "__org.qmp-conformance_extra"
#: How deep the ``deep-nesting`` member goes: well inside what JSON readers take.
NESTING = 64
#: The size of the ``large-replies`` padding.
PADDING = 1 << 20


@dataclass
class State:
    """What a liberty remembers across one connection's messages."""

    count: itertools.count[int] = field(default_factory=itertools.count)
    #: Replies written so far; the first ends negotiation, before which a
    #: server may send nothing unasked (Q11).
    replies: int = 0
    #: Each part's own state, for a combination of liberties.
    parts: dict[int, State] = field(default_factory=dict)

    def negotiated(self, msg: dict[str, Any]) -> bool:
        """Whether ``msg`` comes after the reply that ended negotiation (counting it)."""
        after = self.replies > 0
        if classify(msg) in ("return", "error"):
            self.replies += 1
        return after


Rewrite = Callable[[dict[str, Any], State], list[dict[str, Any] | bytes]]


@dataclass(frozen=True)
class Liberty:
    """One liberty: its name, the client rule it tests, what it does."""

    name: str
    #: The rule a client keeps by surviving it.
    rule: str
    summary: str
    #: Whether a conforming client gets the same result under it as without.
    same_result: bool
    rewrite: Rewrite
    #: Bytes per write and the pause between writes (None: whole lines at once).
    chunk: int | None = None
    pause: float = 0.0
    #: Close the connection halfway through the server's message of this
    #: index (0 is the greeting; None: never).
    cut_in_message: int | None = None
    #: Close the connection once this many bytes of output are written.
    cut_at_byte: int | None = None


def _event(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": name,
        "timestamp": {"seconds": 1700000000, "microseconds": 0},
    }
    if data is not None:
        event["data"] = data
    return event


def _reversed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(v) for v in value]
    return value


def _member_order(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    return [_reversed(msg)]


def _add(msg: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``msg`` with ``key`` added where a server may add members: the greeting's
    QMP object, a return that is an object, an event's data."""
    kind = classify(msg)
    out = dict(msg)
    if kind == "greeting" and isinstance(msg.get("QMP"), dict):
        out["QMP"] = {**msg["QMP"], key: value}
    elif kind == "return" and isinstance(msg.get("return"), dict):
        out["return"] = {**msg["return"], key: value}
    elif kind == "event":
        data = msg.get("data")
        out["data"] = {**(data if isinstance(data, dict) else {}), key: value}
    return out


def _unknown_members(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    return [_add(msg, FUTURE, {"since": "a later release"})]


def _downstream_members(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    # Q38: anywhere but the greeting.
    return [msg if classify(msg) == "greeting" else _add(msg, DOWNSTREAM, True)]


def _extra_capabilities(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    if classify(msg) != "greeting" or not isinstance(msg.get("QMP"), dict):
        return [msg]
    caps = list(msg["QMP"].get("capabilities") or [])
    return [{**msg, "QMP": {**msg["QMP"], "capabilities": [*caps, FUTURE]}}]


def _interleaved_events(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    if not state.negotiated(msg) or classify(msg) not in ("return", "error"):
        return [msg]
    n = next(state.count)
    return [
        _event(f"{FUTURE.upper().replace('-', '_')}", {"n": n}),
        msg,
        _event(f"{FUTURE.upper().replace('-', '_')}", {"n": n, "after": True}),
    ]


def _stray_replies(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    if not state.negotiated(msg) or classify(msg) not in ("return", "error"):
        return [msg]
    n = next(state.count)
    stray = {"return": {}, "id": f"{FUTURE}-{n}"}
    return [stray, msg, {"error": {"class": "GenericError", "desc": "stray"}, "id": n + 10**9}]


def _error_replies(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    # Every second success fails instead (never negotiation's: nothing could follow).
    if not state.negotiated(msg) or classify(msg) != "return" or next(state.count) % 2:
        return [msg]
    out: dict[str, Any] = {
        "error": {"class": "GenericError", "desc": "refused by the liberty error-replies"}
    }
    if "id" in msg:
        out["id"] = msg["id"]
    return [out]


def _desc_reworded(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    error = msg.get("error")
    if classify(msg) != "error" or not isinstance(error, dict):
        return [msg]
    desc = f"(reworded by the liberty desc-reworded) {str(error.get('desc', ''))[::-1]}"
    return [{**msg, "error": {**error, "desc": desc}}]


def _large_replies(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    return [_add(msg, FUTURE + "-padding", "x" * PADDING)]


def _deep_nesting(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    deep: Any = []
    for _ in range(NESTING):
        deep = [deep]
    return [_add(msg, FUTURE + "-nested", deep)]


def _future_enum(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    # Run states and shutdown reasons grow with releases: a client reading
    # them cannot know every value a later server sends.
    value = msg.get("return")
    running = isinstance(value, dict) and "running" in value
    if classify(msg) == "return" and running and isinstance(value, dict):
        return [{**msg, "return": {**value, "status": FUTURE}}]
    data = msg.get("data")
    if classify(msg) == "event" and isinstance(data, dict) and isinstance(data.get("reason"), str):
        return [{**msg, "data": {**data, "reason": FUTURE}}]
    return [msg]


def _as_is(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
    return [msg]


CATALOGUE: tuple[Liberty, ...] = (
    Liberty(
        "member-order",
        "Q4,Q35",
        "every object's members in reverse order",
        True,
        _member_order,
    ),
    Liberty(
        "unknown-members",
        "Q35",
        "a member from a future release in the greeting, in returns and in event data",
        True,
        _unknown_members,
    ),
    Liberty(
        "downstream-members",
        "Q38,Q35",
        "a downstream (__RFQDN) member in returns and event data",
        True,
        _downstream_members,
    ),
    Liberty(
        "extra-capabilities",
        "Q13",
        "the greeting offers a capability from a future release",
        True,
        _extra_capabilities,
    ),
    Liberty(
        "interleaved-events",
        "Q35",
        "an event of a future release before and after every reply",
        True,
        _interleaved_events,
    ),
    Liberty(
        "stray-replies",
        "Q17",
        "replies to ids nobody sent, before and after every reply",
        True,
        _stray_replies,
    ),
    Liberty(
        "desc-reworded",
        "Q21",
        "every error's desc reworded (the class stays)",
        True,
        _desc_reworded,
    ),
    Liberty(
        "large-replies",
        "Q35",
        f"a {PADDING >> 20} MiB member in every object the server may extend",
        True,
        _large_replies,
    ),
    Liberty(
        "deep-nesting",
        "Q35",
        f"a member nested {NESTING} arrays deep in every object the server may extend",
        True,
        _deep_nesting,
    ),
    Liberty(
        "slow-writes",
        "Q35",
        "output written a few bytes at a time, with pauses",
        True,
        _as_is,
        chunk=7,
        pause=0.002,
    ),
    Liberty(
        "unknown-enum-values",
        "Q35",
        "a run state and event reasons from a future release (query-status, SHUTDOWN, ...)",
        False,
        _future_enum,
    ),
    Liberty(
        "error-replies",
        "Q35",
        "every second command fails with GenericError",
        False,
        _error_replies,
    ),
    Liberty(
        "disconnect",
        "Q35",
        "the connection closes halfway through the reply to the first command after negotiation",
        False,
        _as_is,
        cut_in_message=2,
    ),
)

BY_NAME = {liberty.name: liberty for liberty in CATALOGUE}


def combine(
    parts: Sequence[Liberty], *, chunk: int | None = None, cut_at_byte: int | None = None
) -> Liberty:
    """Several liberties at once: each rewrites what the one before it wrote;
    output goes ``chunk`` bytes at a time and stops after ``cut_at_byte``.
    A conforming client gets the same result under it only if under every
    part, and never when the connection is cut."""

    def rewrite(msg: dict[str, Any], state: State) -> list[dict[str, Any] | bytes]:
        out: list[dict[str, Any] | bytes] = [msg]
        for i, part in enumerate(parts):
            mine = state.parts.setdefault(i, State())
            out = [o for m in out for o in (part.rewrite(m, mine) if isinstance(m, dict) else [m])]
        return out

    names = [p.name for p in parts]
    if chunk:
        names.append(f"chunk={chunk}")
    if cut_at_byte is not None:
        names.append(f"cut={cut_at_byte}")
    cuts = [p.cut_in_message for p in parts if p.cut_in_message is not None]
    return Liberty(
        "+".join(names),
        ",".join(sorted({r for p in parts for r in p.rule.split(",")})),
        "; ".join(p.summary for p in parts),
        all(p.same_result for p in parts) and cut_at_byte is None,
        rewrite,
        chunk=chunk or next((p.chunk for p in parts if p.chunk), None),
        pause=max((p.pause for p in parts), default=0.0),
        cut_in_message=min(cuts) if cuts else None,
        cut_at_byte=cut_at_byte,
    )


def render(out: dict[str, Any] | bytes) -> bytes:
    """What goes on the wire for one rewritten item (a message as QEMU encodes it)."""
    return out if isinstance(out, bytes) else encode(out)
