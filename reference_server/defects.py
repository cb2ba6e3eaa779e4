"""Seeded defects: named, switchable deviations that each break one rule.

They exist to prove the suite catches what it claims to catch.  A defect is
data: its name, the rule it breaks (a Q-number of the QMP checklist in the
reference notes, or a job rule J1-J8 of
:data:`conformance.protocol.jobs.JOB_RULES`), a one-line summary, and at most
one small hook:

* ``flags``: behaviour switches, either carried out by the protocol core as
  monitor quirks (:class:`conformance.protocol.monitor.Quirks`) or consulted
  by the server at one named point each (see :class:`Flag`), or
* ``outgoing``: a rewrite of each outgoing message (given the message, its
  bytes and a per-connection scratch dict, it returns the chunks to write).

No defect code lives outside this module except the few ``if
defects.has(Flag.X)`` checks at those points.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from conformance.protocol.encoding import encode
from conformance.protocol.messages import classify
from conformance.protocol.monitor import Quirks


class Flag(enum.Enum):
    """A behaviour switch of a defect, carried out by the monitor or checked by the server."""

    SKIP_GREETING = "skip-greeting"
    COMMANDS_BEFORE_NEGOTIATION = "commands-before-negotiation"
    EVENTS_BEFORE_NEGOTIATION = "events-before-negotiation"
    ACCEPT_INVALID_ARGUMENTS = "accept-invalid-arguments"
    SIDE_EFFECT_BEFORE_ERROR = "side-effect-before-error"
    OOB_IN_BAND = "oob-in-band"
    EVERY_COMMAND_OOB = "every-command-oob"
    OOB_ALWAYS_ENABLED = "oob-always-enabled"
    DIE_ON_GARBAGE = "die-on-garbage"
    DEAF_AFTER_ERROR = "deaf-after-error"
    ACCEPT_UNKNOWN_CAPABILITY = "accept-unknown-capability"
    ACCEPT_RENEGOTIATION = "accept-renegotiation"
    QEMU_NUMBERS = "qemu-numbers"
    UNTHROTTLED_EVENTS = "unthrottled-events"
    SNAPSHOT_NEVER_CONCLUDES = "snapshot-never-concludes"


#: The flags the protocol core carries out itself, as monitor quirks.
_QUIRKS: dict[Flag, str] = {
    Flag.SKIP_GREETING: "skip_greeting",
    Flag.COMMANDS_BEFORE_NEGOTIATION: "commands_before_negotiation",
    Flag.EVENTS_BEFORE_NEGOTIATION: "events_before_negotiation",
    Flag.OOB_ALWAYS_ENABLED: "oob_always_enabled",
    Flag.ACCEPT_UNKNOWN_CAPABILITY: "accept_unknown_capability",
    Flag.ACCEPT_RENEGOTIATION: "accept_renegotiation",
}


#: (message, encoded bytes, per-connection scratch) -> chunks to write instead.
Rewrite = Callable[[dict[str, Any], bytes, dict[str, Any]], list[bytes]]


@dataclass(frozen=True)
class Defect:
    """One seeded defect: its name, the rule it breaks, a summary, and its hook."""

    name: str
    rule: str
    summary: str
    flags: frozenset[Flag] = frozenset()
    outgoing: Rewrite | None = None


def _is_reply(message: dict[str, Any]) -> bool:
    return classify(message) in ("return", "error")


def _reencode(message: dict[str, Any], data: bytes) -> bytes:
    """``message`` in the server's format, keeping the original terminator."""
    terminator = b"\r\n" if data.endswith(b"\r\n") else b"\n"
    prefix = data[: len(data) - len(data.lstrip(b"\xff"))]
    return prefix + encode(message, terminator=terminator)


def _drop_id(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    if _is_reply(message) and "id" in message:
        return [_reencode({k: v for k, v in message.items() if k != "id"}, data)]
    return [data]


def _id_rewrite(change: Callable[[Any], Any]) -> Rewrite:
    """A rewrite of the id of every reply: ``change`` gives the id to send
    instead, or the id itself to leave the reply as it is."""

    def rewrite(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
        if _is_reply(message) and "id" in message:
            ident = message["id"]
            changed = change(ident)
            if changed is not ident:
                return [_reencode({**message, "id": changed}, data)]
        return [data]

    return rewrite


_stringify_id = _id_rewrite(lambda i: i if isinstance(i, str) else json.dumps(i))
#: Six significant digits: printf's default precision.
_round_float_ids = _id_rewrite(lambda i: float(f"{i:.6g}") if isinstance(i, float) else i)
_keep_quote_escape = _id_rewrite(
    lambda i: i.replace("'", "\\'") if isinstance(i, str) and "'" in i else i
)


def _event_after_greeting(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    if classify(message) != "greeting":
        return [data]
    seconds, micro = divmod(int(time.time() * 1_000_000), 1_000_000)
    event = {"event": "RESUME", "timestamp": {"seconds": seconds, "microseconds": micro}}
    return [data, _reencode(event, data)]


def _downstream_greeting(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    if classify(message) != "greeting":
        return [data]
    body = {**message["QMP"], "__org.example_flavour": "vendor"}
    return [_reencode({**message, "QMP": body}, data)]


def _malformed_downstream(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    returned = message.get("return")
    if not isinstance(returned, dict) or classify(message) != "return":
        return [data]
    return [_reencode({**message, "return": {**returned, "__flavour": "vendor"}}, data)]


def _invent_reply_id(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    if _is_reply(message) and "id" not in message:
        return [_reencode({**message, "id": INVENTED_ID}, data)]
    return [data]


#: The id the reply-id-invented defect gives replies to requests without one.
INVENTED_ID = "reply"


def _no_sync_byte(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    return [data.lstrip(b"\xff")]


def _lose_every_second_reply(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    if not _is_reply(message):
        return [data]
    scratch["replies"] = scratch.get("replies", 0) + 1
    return [] if scratch["replies"] % 2 == 0 else [data]


def _duplicate_reply(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    return [data, data] if "return" in message else [data]


def _swap_reply_pairs(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    """Hold each odd reply back and send it after the next one."""
    if not _is_reply(message):
        return [data]
    held = scratch.pop("held", None)
    if held is None:
        scratch["held"] = data
        return []
    return [data, held]


def _raw_utf8(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    text = json.dumps(message, ensure_ascii=False, separators=(", ", ": "))
    terminator = b"\r\n" if data.endswith(b"\r\n") else b"\n"
    return [text.encode("utf-8", "surrogatepass") + terminator]


def _lf_only(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    return [data[:-2] + b"\n"] if data.endswith(b"\r\n") else [data]


def _generic_class(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    error = message.get("error")
    if isinstance(error, dict) and error.get("class") == "CommandNotFound":
        changed = dict(message)
        changed["error"] = {**error, "class": "GenericError"}
        return [_reencode(changed, data)]
    return [data]


def _greeting_version(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    if classify(message) == "greeting":
        body = dict(message["QMP"])
        body["version"] = {"qemu": {"micro": 0, "minor": 0, "major": 6}, "package": "mismatch"}
        return [_reencode({"QMP": body}, data)]
    return [data]


def _greeting_no_capabilities(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    if classify(message) == "greeting":
        body = {k: v for k, v in message["QMP"].items() if k != "capabilities"}
        return [_reencode({"QMP": body}, data)]
    return [data]


def _bad_timestamp(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    if "event" in message:
        changed = dict(message)
        changed["timestamp"] = {
            "seconds": message["timestamp"]["seconds"],
            "microseconds": 1_000_000 + 7,
        }
        return [_reencode(changed, data)]
    return [data]


def _event_inside_reply(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    """Write events, then splice the next reply around the held event bytes."""
    if "event" in message:
        scratch.setdefault("events", []).append(data)
        return []
    pending: list[bytes] = scratch.pop("events", [])
    if _is_reply(message) and pending:
        middle = len(data) // 2
        return [data[:middle] + b"".join(pending) + data[middle:]]
    return [*pending, data]


def _invalid_json(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    if "return" in message:
        body = data.rstrip(b"\r\n")
        return [body[:-1] + b", }" + data[len(body) :]]
    return [data]


def _null_empty_return(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    if message.get("return") == {}:
        changed = dict(message)
        changed["return"] = None
        return [_reencode(changed, data)]
    return [data]


def _no_desc(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    error = message.get("error")
    if isinstance(error, dict):
        changed = dict(message)
        changed["error"] = {"class": error["class"]}
        return [_reencode(changed, data)]
    return [data]


def _event_data(message: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The data of ``message`` when it is the event ``name``, else None."""
    data = message.get("data")
    return data if message.get("event") == name and isinstance(data, dict) else None


def _skip_waiting(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
    """Drop the 'waiting' status change: running (or ready) goes straight to pending."""
    change = _event_data(message, "JOB_STATUS_CHANGE")
    return [] if change is not None and change.get("status") == "waiting" else [data]


def _completed_with_error(
    message: dict[str, Any], data: bytes, scratch: dict[str, Any]
) -> list[bytes]:
    completed = _event_data(message, "BLOCK_JOB_COMPLETED")
    if completed is None or "error" in completed:
        return [data]
    return [_reencode({**message, "data": {**completed, "error": "Input/output error"}}, data)]


def _job_listing(message: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The jobs of a query-jobs (JobInfo) or query-block-jobs (BlockJobInfo)
    reply, told by their members: rewrites see replies, not the commands."""
    jobs = message.get("return")
    if not isinstance(jobs, list) or not jobs or classify(message) != "return":
        return None
    if all(
        isinstance(j, dict) and "status" in j and ("current-progress" in j or "busy" in j)
        for j in jobs
    ):
        return jobs
    return None


def _listing_rewrite(change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Rewrite:
    """A rewrite of the jobs every job listing reply shows (see :func:`_job_listing`)."""

    def rewrite(message: dict[str, Any], data: bytes, scratch: dict[str, Any]) -> list[bytes]:
        jobs = _job_listing(message)
        if jobs is None:
            return [data]
        changed = change(jobs)
        return [data] if changed == jobs else [_reencode({**message, "return": changed}, data)]

    return rewrite


#: Concluded jobs (only auto-dismiss false ones are ever listed so) left out.
_hide_concluded = _listing_rewrite(lambda jobs: [j for j in jobs if j["status"] != "concluded"])
#: A job paused while running shown in the status of one paused while ready.
_paused_as_standby = _listing_rewrite(
    lambda jobs: [{**j, "status": "standby"} if j["status"] == "paused" else j for j in jobs]
)


CATALOGUE: tuple[Defect, ...] = (
    Defect(
        "no-greeting", "Q7", "sends no greeting on connect", flags=frozenset({Flag.SKIP_GREETING})
    ),
    Defect(
        "greeting-version-mismatch",
        "Q8",
        "greeting version differs from query-version",
        outgoing=_greeting_version,
    ),
    Defect(
        "greeting-without-capabilities",
        "Q3",
        "greeting lacks the mandatory capabilities member",
        outgoing=_greeting_no_capabilities,
    ),
    Defect(
        "commands-before-negotiation",
        "Q10",
        "runs commands before qmp_capabilities",
        flags=frozenset({Flag.COMMANDS_BEFORE_NEGOTIATION}),
    ),
    Defect(
        "events-before-negotiation",
        "Q11",
        "delivers events to monitors still negotiating",
        flags=frozenset({Flag.EVENTS_BEFORE_NEGOTIATION}),
    ),
    Defect(
        "renegotiation-accepted",
        "Q12",
        "a second qmp_capabilities succeeds",
        flags=frozenset({Flag.ACCEPT_RENEGOTIATION}),
    ),
    Defect(
        "unknown-capability-accepted",
        "Q14",
        "qmp_capabilities accepts a capability that does not exist",
        flags=frozenset({Flag.ACCEPT_UNKNOWN_CAPABILITY}),
    ),
    Defect(
        "greeting-downstream-member",
        "Q38",
        "the greeting carries a downstream member (a downstream build may only add capabilities)",
        outgoing=_downstream_greeting,
    ),
    Defect(
        "downstream-name-malformed",
        "Q38",
        "objects returned carry a member __flavour, which is no __RFQDN_ name",
        outgoing=_malformed_downstream,
    ),
    Defect(
        "events-unthrottled",
        "Q31",
        "every throttled event goes out at once: a burst of QUORUM_REPORT_BAD is not limited",
        flags=frozenset({Flag.UNTHROTTLED_EVENTS}),
    ),
    Defect(
        "event-after-greeting",
        "Q11",
        "writes an event right after the greeting, before any negotiation",
        outgoing=_event_after_greeting,
    ),
    Defect("reply-drops-id", "Q16", "replies lose their id", outgoing=_drop_id),
    Defect(
        "reply-id-invented",
        "Q16",
        "replies to requests without an id carry an id of the server's own",
        outgoing=_invent_reply_id,
    ),
    Defect("id-stringified", "Q15", "non-string ids come back as strings", outgoing=_stringify_id),
    Defect(
        "float-id-rounded",
        "Q15",
        "ids that are doubles come back rounded to six digits",
        outgoing=_round_float_ids,
    ),
    Defect(
        "quote-escape-kept",
        "Q6",
        "a single quote in a string id comes back with the backslash it was escaped with",
        outgoing=_keep_quote_escape,
    ),
    Defect(
        "sync-without-0xff",
        "Q39",
        "the guest agent's guest-sync-delimited reply lacks its leading 0xFF",
        outgoing=_no_sync_byte,
    ),
    Defect(
        "qemu-numbers",
        "Q37",
        "reads numbers as QEMU does: past a double's range as infinity (written as inf), "
        "and 0e5 as 0 and a stray e5",
        flags=frozenset({Flag.QEMU_NUMBERS}),
    ),
    Defect(
        "lost-reply",
        "Q16",
        "every second reply of a connection is never sent",
        outgoing=_lose_every_second_reply,
    ),
    Defect("duplicate-reply", "Q16", "each success reply is sent twice", outgoing=_duplicate_reply),
    Defect(
        "empty-return-null",
        "Q19",
        "commands without data return null instead of {}",
        outgoing=_null_empty_return,
    ),
    Defect("error-without-desc", "Q20", "errors lack desc", outgoing=_no_desc),
    Defect(
        "wrong-error-class",
        "Q10",
        "CommandNotFound errors are sent as GenericError",
        outgoing=_generic_class,
    ),
    Defect(
        "in-band-reordered",
        "Q22",
        "pipelined replies come back pairwise swapped",
        outgoing=_swap_reply_pairs,
    ),
    Defect(
        "oob-no-overtake",
        "Q23",
        "exec-oob waits behind in-band work",
        flags=frozenset({Flag.OOB_IN_BAND}),
    ),
    Defect(
        "exec-oob-any-command",
        "Q27",
        "exec-oob runs commands that do not allow OOB",
        flags=frozenset({Flag.EVERY_COMMAND_OOB}),
    ),
    Defect(
        "oob-without-negotiation",
        "Q28",
        "exec-oob is accepted although oob was not negotiated",
        flags=frozenset({Flag.OOB_ALWAYS_ENABLED}),
    ),
    Defect(
        "bad-event-timestamp",
        "Q29",
        "events carry microseconds above 999999",
        outgoing=_bad_timestamp,
    ),
    Defect(
        "event-inside-reply",
        "Q30",
        "events are written in the middle of the next reply",
        outgoing=_event_inside_reply,
    ),
    Defect(
        "no-parser-recovery",
        "Q32",
        "after a JSON error the connection ignores all further input",
        flags=frozenset({Flag.DEAF_AFTER_ERROR}),
    ),
    Defect(
        "dies-on-garbage",
        "Q32",
        "the server exits on the first JSON parse error",
        flags=frozenset({Flag.DIE_ON_GARBAGE}),
    ),
    Defect(
        "accepts-invalid-arguments",
        "Q33",
        "arguments are not checked against the schema",
        flags=frozenset({Flag.ACCEPT_INVALID_ARGUMENTS}),
    ),
    Defect(
        "side-effect-before-error",
        "Q34",
        "a command with invalid arguments acts before failing",
        flags=frozenset({Flag.SIDE_EFFECT_BEFORE_ERROR}),
    ),
    Defect(
        "non-ascii-output",
        "Q1",
        "output carries raw UTF-8 instead of \\u escapes",
        outgoing=_raw_utf8,
    ),
    Defect("lf-only-line-ending", "Q2", "messages end in LF, not CRLF", outgoing=_lf_only),
    Defect(
        "invalid-json-output",
        "Q37",
        "success replies carry a trailing comma",
        outgoing=_invalid_json,
    ),
    Defect(
        "job-illegal-transition",
        "J1",
        "a job's JOB_STATUS_CHANGE skips 'waiting': running (or ready) goes straight to pending",
        outgoing=_skip_waiting,
    ),
    Defect(
        "job-completed-with-error",
        "J2",
        "BLOCK_JOB_COMPLETED carries an error although the job succeeded",
        outgoing=_completed_with_error,
    ),
    Defect(
        "job-vanishes",
        "J3",
        "query-jobs and query-block-jobs leave out concluded jobs: a job with auto-dismiss "
        "false disappears when it concludes, without job-dismiss or a null status change",
        outgoing=_hide_concluded,
    ),
    Defect(
        "snapshot-never-concludes",
        "J8",
        "snapshot-save, -load and -delete jobs never conclude: they stay running until cancelled",
        flags=frozenset({Flag.SNAPSHOT_NEVER_CONCLUDES}),
    ),
    Defect(
        "job-listing-disagrees",
        "J3",
        "query-jobs and query-block-jobs list a job paused while running as 'standby', "
        "a status its events never announced",
        outgoing=_paused_as_standby,
    ),
)

BY_NAME: dict[str, Defect] = {d.name: d for d in CATALOGUE}


class DefectSet:
    """The defects switched on for one server; empty means a correct server.

    Raises :class:`KeyError` for a name that is not in :data:`CATALOGUE`.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.defects: list[Defect] = []
        for name in names:
            if name not in BY_NAME:
                raise KeyError(f"unknown defect {name!r}; see --list-defects")
            if BY_NAME[name] not in self.defects:
                self.defects.append(BY_NAME[name])
        self._flags = frozenset(f for d in self.defects for f in d.flags)
        self._rewrites = [d.outgoing for d in self.defects if d.outgoing is not None]
        #: What the protocol core does differently for these defects.
        self.quirks = Quirks(
            **{name: True for flag, name in _QUIRKS.items() if flag in self._flags}
        )

    def has(self, flag: Flag) -> bool:
        """Whether a switched-on defect sets ``flag``."""
        return flag in self._flags

    @property
    def rewrites_output(self) -> bool:
        """Whether a switched-on defect rewrites outgoing messages."""
        return bool(self._rewrites)

    def outgoing(
        self, message: dict[str, Any], data: bytes, scratch: dict[str, Any]
    ) -> list[bytes]:
        """The chunks to write for ``message`` (encoded as ``data``) after every rewrite.

        ``scratch`` is the connection's own state, for rewrites that hold output back.
        """
        chunks = [data]
        for rewrite in self._rewrites:
            chunks = [out for chunk in chunks for out in rewrite(message, chunk, scratch)]
        return chunks


def describe() -> list[tuple[str, str, str]]:
    """(name, rule, summary) of every defect, for ``--list-defects``."""
    return [(d.name, d.rule, d.summary) for d in CATALOGUE]
