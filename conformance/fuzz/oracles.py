"""Oracles: what a correct server's replies to a program look like.

Each oracle looks at one :class:`~conformance.fuzz.execute.Observation` and
returns :class:`Violation` objects naming the rule broken (a Q-number of
the project's notes).  A violation's *signature* is what makes two findings
"the same bug": it is built from the oracle, the rule and the coarse shape
of the failure (which command, which kind of id, which schema keyword),
never from the random details, so a campaign folds repeats into one file.

The oracles are deliberately conservative about what a program implies:
only a well-formed JSON request object is owed exactly one reply; raw bytes
are owed nothing but a server that stays alive, answers the probe and keeps
its output well-formed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError

from conformance.fuzz.execute import ConnLog, Observation
from conformance.fuzz.program import ID_SPELLING, RAW_ID_PREFIX, VALUE_SPELLING, Step
from conformance.protocol.dialects import DEFAULT, Dialect
from conformance.protocol.messages import MISSING
from conformance.session import Message, escape, json_equal
from conformance.specs import Specs
from strategies.compile import kind_of

#: Each kind of server message (as the protocol core classifies it): the name
#: of its wire schema and the rule a malformed one breaks.
_SHAPE_RULES = {
    "greeting": ("greeting", "Q3"),
    "event": ("event", "Q29"),
    "error": ("error", "Q20"),
    "return": ("success", "Q3"),
}

#: Values that come in lines longer than this are validated in full only for
#: the first LARGE_FULL per command or event, then one in LARGE_SAMPLE:
#: jsonschema needs milliseconds for a big query reply, which would otherwise
#: dominate a campaign.  A replay (a fresh Judge, one program) validates all.
LARGE = 2048
LARGE_FULL = 4
LARGE_SAMPLE = 16


@dataclass
class Violation:
    """A rule the replies broke: the rule (a Q-number), the oracle that saw it,
    a ``slug`` naming the failure, a summary for people, the ``key`` that tells
    failures with one slug apart, and the connection it happened on."""

    rule: str
    oracle: str
    slug: str
    summary: str
    key: tuple[str, ...] = ()
    conn: int = 0

    @property
    def signature(self) -> str:
        """``<slug>-<digest>``, the digest taken over rule, oracle, slug and key:
        what repeats of one failure share (see the module docstring)."""
        digest = hashlib.sha1(
            "|".join((self.rule, self.oracle, self.slug, *self.key)).encode("utf-8", "replace")
        ).hexdigest()[:8]
        return f"{self.slug}-{digest}"

    @property
    def ident(self) -> str:
        """The finding's name: ``<rule>-<signature>``."""
        return f"{self.rule}-{self.signature}"


def _spelled(step: Step) -> bool:
    return ID_SPELLING in step.meta or VALUE_SPELLING in step.meta


def _plain_id(step: Step) -> bool:
    """Whether the step's id is written as json.dumps writes its value."""
    if ID_SPELLING not in step.meta:
        return True
    request = step.request()
    text = step.data[step.data.rfind(b'"id":') + 5 : -1]
    return request is not None and text == json.dumps(request["id"]).encode()


def _short(value: Any, keep: int = 120) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= keep else text[:keep] + "..."


def _brief(msg: Message, keep: int = 300) -> str:
    """A message as escaped text, cut at ``keep`` (escaping only what is shown:
    a query-qmp-schema reply is 100 kB)."""
    text = escape(msg.raw[: keep + 8].rstrip(b"\r\n"))
    return text if len(text) <= keep else text[:keep] + f"... ({len(msg.raw)} bytes)"


class Judge:
    """Runs every oracle; holds the schema-derived validators."""

    def __init__(self, specs: Specs | None, dialect: Dialect = DEFAULT) -> None:
        self.specs = specs
        self.dialect = dialect
        # Verdicts of schema validation by (kind, name, value as canonical
        # JSON): query replies repeat verbatim across examples, and
        # validating query-qmp-schema's return costs far more than its key.
        self._verdicts: dict[tuple[str, str, str], list[str]] = {}
        self._large: dict[tuple[str, str], int] = {}
        self._free: dict[str, frozenset[str]] = {}
        self._valid_shapes: set[tuple[str, str]] = set()

    def schema_errors(self, kind: str, name: str, value: Any, size: int) -> list[str]:
        """Errors of ``value`` against its schema.  ``size``, the length of the
        line it came in, lets a large value skip validation (see LARGE) before
        paying for its canonical text, the key of the verdict cache.

        Raises :class:`KeyError` when the schema defines no ``name`` of that kind.
        """
        assert self.specs is not None
        if size > LARGE:
            seen = self._large[(kind, name)] = self._large.get((kind, name), 0) + 1
            if seen > LARGE_FULL and seen % LARGE_SAMPLE:
                return []
        try:
            text = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            return self.specs.errors(kind, name, value)  # type: ignore[arg-type]
        key = (kind, name, text)
        found = self._verdicts.get(key)
        if found is None:
            found = self.specs.errors(kind, name, value)  # type: ignore[arg-type]
            if len(self._verdicts) > 50_000:
                self._verdicts.clear()
            self._verdicts[key] = found
        return found

    def _wire_errors(self, kind: str, value: dict[str, Any]) -> list[ValidationError]:
        """The wire schema's errors for ``value``; a value of a shape already found
        valid is not validated again.  Its shape is the value with the members
        the schema leaves free (``id``, ``return``) blanked: whatever they hold
        cannot change the verdict."""
        assert self.specs is not None
        validator = self.specs.wire_validator(kind, self.dialect)  # type: ignore[arg-type]
        free = self._free.get(kind)
        if free is None:
            schema = validator.schema
            props = schema.get("properties", {}) if isinstance(schema, dict) else {}
            free = self._free[kind] = frozenset(k for k, sub in props.items() if sub in ({}, True))
        try:
            shape = json.dumps(
                {k: None if k in free else v for k, v in value.items()}, sort_keys=True
            )
        except (TypeError, ValueError, RecursionError):
            return list(validator.iter_errors(value))
        if (kind, shape) in self._valid_shapes:
            return []
        errors = list(validator.iter_errors(value))
        if not errors:
            if len(self._valid_shapes) > 50_000:
                self._valid_shapes.clear()
            self._valid_shapes.add((kind, shape))
        return errors

    def __call__(self, obs: Observation) -> list[Violation]:
        """What every oracle finds wrong in ``obs``, connection by connection."""
        out: list[Violation] = []
        for log in obs.conns.values():
            out += self.liveness(log, obs)
            out += self.framing(log)
            out += self.shapes(log)
            out += self.replies(log, obs)
            out += self.negotiation_mode(log, obs)
        return out

    # -- negotiation mode delivers no events (Q11) --------------------------------

    def negotiation_mode(self, log: ConnLog, obs: Observation) -> list[Violation]:
        """Q11: an event reached a connection before the reply that ended its
        negotiation, or one the program never negotiated.  ``qmp_capabilities``
        is a connection's first request, so its reply is the first one; a
        server leaves negotiation mode in that command's handler and writes
        the reply right after, before any event can be emitted to it.  (The
        first reply is taken whatever its id: a reply that lost its id is
        another oracle's finding, not a reason to blame every later event.)"""
        if log.reused:
            return []
        negotiated = any(s.kind == "negotiate" and s.conn == log.conn for s in obs.program.steps)
        for msg in log.messages:
            if negotiated and msg.is_reply:
                return []
            if msg.is_event:
                return [
                    Violation(
                        "Q11",
                        "negotiation",
                        "event-before-negotiation",
                        f"an event reached a connection still negotiating: {_brief(msg, 120)}",
                        (),
                        log.conn,
                    )
                ]
        return []

    # -- liveness: no crash, no hang (Q16: every request with an id is answered) --

    def liveness(self, log: ConnLog, obs: Observation) -> list[Violation]:
        """A closed connection (crash), a missing greeting (Q7) or an unanswered
        probe (hang); crashes and hangs break Q32 after raw bytes, else Q16."""
        # After raw bytes, dying or going deaf is a failure to recover from a
        # lexical error (Q32); otherwise a request with an id went unanswered (Q16).
        rule = "Q32" if log.raw_sent else "Q16"
        if log.closed:
            detail = f" ({obs.crash_detail})" if obs.crash_detail else ""
            return [
                Violation(
                    rule,
                    "crash",
                    "connection-closed",
                    f"the server closed the connection: {log.closed}{detail}",
                    (),
                    log.conn,
                )
            ]
        if log.greeting_expected and log.greeting is None and self.dialect.greeting:
            return [
                Violation(
                    "Q7", "greeting", "no-greeting", "no greeting after connecting", (), log.conn
                )
            ]
        if log.sent_probe and log.probe_reply is None:
            return [
                Violation(
                    rule,
                    "hang",
                    "no-probe-reply",
                    "the server stopped answering (no reply to the probe within the deadline)",
                    (),
                    log.conn,
                )
            ]
        return []

    # -- framing: CRLF, ASCII, one JSON object per line (Q1, Q2, Q37) ----------------

    def framing(self, log: ConnLog) -> list[Violation]:
        """The first line that breaks framing: no CRLF (Q2), non-ASCII (Q1), an
        event inside another message (Q30), invalid JSON (Q37), not an object (Q2)."""
        for msg in log.messages:
            problem = msg.wire_problem(cut=bool(log.closed) and msg is log.messages[-1])
            if problem is not None:
                rule, slug, what = problem
                width = 120 if slug == "event-inside-message" else 80
                return [
                    Violation(rule, "framing", slug, f"{what}: {_brief(msg, width)}", (), log.conn)
                ]
        return []

    # -- shapes: greeting, replies and events against the wire schemas (Q3, Q20, Q29) --

    def shapes(self, log: ConnLog) -> list[Violation]:
        """The first message that is no greeting, reply or event or breaks its
        wire schema, or an event whose data breaks its schema (Q3, Q20, Q29);
        nothing without specs."""
        if self.specs is None:
            return []
        for msg in log.messages:
            if not msg.ok:
                continue
            value = msg.obj
            if msg.kind not in _SHAPE_RULES:
                return [
                    Violation(
                        "Q3",
                        "shape",
                        "unknown-message",
                        f"a message that is no reply, event or greeting: {_brief(msg, 100)}",
                        (),
                        log.conn,
                    )
                ]
            kind, rule = _SHAPE_RULES[msg.kind]
            errors = self._wire_errors(kind, value)
            if errors:
                first = min(errors, key=lambda e: len(e.absolute_path))
                where = "/".join(str(p) for p in first.absolute_path)
                return [
                    Violation(
                        rule,
                        "shape",
                        f"bad-{kind}",
                        f"{kind} breaks the wire schema at /{where}: {first.message[:160]}",
                        (kind, where, str(first.validator)),
                        log.conn,
                    )
                ]
            if kind == "event":
                found = self._event_data(value, len(msg.raw), log)
                if found:
                    return found
        return []

    def _event_data(self, value: dict[str, Any], size: int, log: ConnLog) -> list[Violation]:
        assert self.specs is not None
        name = value.get("event")
        if not isinstance(name, str) or name not in self.specs.schema.events:
            return []
        problems = self.schema_errors("data", name, value.get("data", {}), size)
        if problems:
            return [
                Violation(
                    "Q29",
                    "event-data",
                    "bad-event-data",
                    f"event {name} data breaks its schema: {problems[0][:160]}",
                    (name,),
                    log.conn,
                )
            ]
        return []

    # -- replies: id echo, one reply per request, order, expected errors, returns --

    def replies(self, log: ConnLog, obs: Observation) -> list[Violation]:
        """Ids echoed intact (Q15), one reply per request (Q16), in-band replies in
        order (Q22), and each reply what its request expects: the right error for
        an invalid one, the greeting's version (Q8), a valid return (Q3, Q19)."""
        # Without the probe's reply, missing replies are liveness's business,
        # but the order and content of those that came are still judged.
        answered = log.probe_reply is not None
        steps = [
            s
            for s in obs.program.steps
            if s.conn == log.conn
            and s.kind in ("command", "negotiate", "probe")
            and not (log.reused and s.kind == "negotiate")
        ]
        requests = [(s, s.request()) for s in steps]
        # Raw bytes, or a request QEMU's parser rejects, may draw replies (or
        # id-less errors) that no request object accounts for.
        loose = log.raw_sent or any(r is None for s, r in requests if s.kind == "command")
        expected = [(i, s, r) for i, (s, r) in enumerate(requests) if r is not None and "id" in r]
        replies = [m for m in log.messages if m.is_reply]
        # Requests whose ids are equal (as JSON values) form one group: a reply
        # with that id can belong to any of them, so only the count is judged;
        # what a reply says is judged only for requests with an id of their own.
        group: dict[int, int] = {}
        for i, _s, r in expected:
            group[i] = next(j for j, _s2, r2 in expected if json_equal(r2["id"], r["id"]))
        unique = {i for i in group if sum(1 for g in group.values() if g == group[i]) == 1}
        matched: dict[int, Message] = {}
        unmatched: list[Message] = []
        order: list[int] = []
        for msg in replies:
            if msg.id is MISSING or (isinstance(msg.id, str) and msg.id.startswith(RAW_ID_PREFIX)):
                continue
            # Among requests with equal ids, an id written as an encoder
            # writes it is the one a reply most likely answers: the other
            # spellings are what may go unanswered, and a finding names them.
            slot = min(
                (
                    (not _plain_id(s), i)
                    for i, s, r in expected
                    if i not in matched and json_equal(r["id"], msg.id)
                ),
                default=(False, None),
            )[1]
            if slot is None:
                unmatched.append(msg)
                continue
            matched[slot] = msg
            if slot in unique:
                order.append(slot)
        out: list[Violation] = []
        missing = [(i, s, r) for i, s, r in expected if i not in matched]
        idless_sent = sum(1 for s, r in requests if r is not None and "id" not in r)
        idless_got = sum(1 for m in replies if m.id is MISSING)
        if missing and answered:
            i, s, r = next((m for m in missing if _spelled(m[1])), missing[0])
            id_kind = kind_of(r["id"])
            if _spelled(s):
                # One finding per way of writing a value, not per request around it.
                fate = (
                    f"replies with ids nobody sent: {_brief(unmatched[0], 120)}"
                    if unmatched
                    else "no reply carries its id"
                )
                by_id = ID_SPELLING in s.meta
                label = str(s.meta[ID_SPELLING if by_id else VALUE_SPELLING])
                out.append(
                    Violation(
                        "Q15" if by_id else "Q16",
                        "id-echo" if by_id else "one-reply",
                        "spelled-id-lost" if by_id else "spelled-value-unanswered",
                        f"{escape(s.data[:160])} has {'its id' if by_id else 'an argument'} "
                        f"written as a {label}, and {fate}",
                        (label,),
                        log.conn,
                    )
                )
            elif unmatched:
                out.append(
                    Violation(
                        "Q15",
                        "id-echo",
                        "id-not-echoed",
                        f"the reply to {_short(r)} does not carry its id intact; "
                        f"replies with ids nobody sent: {_brief(unmatched[0], 120)}",
                        (id_kind,),
                        log.conn,
                    )
                )
            elif not loose and idless_got > idless_sent:
                out.append(
                    Violation(
                        "Q15",
                        "id-echo",
                        "id-dropped",
                        f"the reply to {_short(r)} came without its id",
                        (id_kind,),
                        log.conn,
                    )
                )
            else:
                how = str(s.meta.get("how", s.kind))
                out.append(
                    Violation(
                        "Q16",
                        "one-reply",
                        "no-reply",
                        f"no reply to {_short(r)} (the probe sent after it was answered)",
                        (how,),
                        log.conn,
                    )
                )
        elif unmatched and not loose and answered:
            out.append(
                Violation(
                    "Q16",
                    "one-reply",
                    "unasked-reply",
                    f"a reply with an id nobody sent: {_brief(unmatched[0], 120)}",
                    (),
                    log.conn,
                )
            )
        elif not loose and idless_got != idless_sent and answered:
            out.append(
                Violation(
                    "Q16",
                    "one-reply",
                    "idless-count",
                    f"{idless_sent} request(s) without id got {idless_got} replies without id",
                    (),
                    log.conn,
                )
            )
        # A mangled id can equal another request's (5.2 echoes 2.2e-309 as 0):
        # then which reply answers what is a guess, and only Q15 is certain.
        if not (missing and unmatched):
            out += self._order(order, requests, log)
        for i, msg in matched.items():
            if i not in unique:
                continue
            s, maybe = requests[i]
            assert maybe is not None
            found = self._judge_reply(s, maybe, msg, log)
            if found:
                out.append(found)
        return out

    def _order(
        self, order: list[int], requests: list[tuple[Step, dict[str, Any] | None]], log: ConnLog
    ) -> list[Violation]:
        """Q22: in-band requests are answered in the order they were sent."""
        inband = [
            i
            for i in order
            if requests[i][1] is not None and "exec-oob" not in (requests[i][1] or {})
        ]
        for a, b in itertools.pairwise(inband):
            if b < a:
                return [
                    Violation(
                        "Q22",
                        "order",
                        "out-of-order",
                        f"in-band reply to {_short(requests[b][1])} came before the "
                        f"one to {_short(requests[a][1])}",
                        (),
                        log.conn,
                    )
                ]
        return []

    def _judge_reply(
        self, step: Step, request: dict[str, Any], msg: Message, log: ConnLog
    ) -> Violation | None:
        value = msg.obj
        meta = step.meta
        if step.kind == "command" and meta.get("expect") == "error":
            rule = str(meta.get("rule", "Q33"))
            how = str(meta.get("how", ""))
            if "error" not in value:
                return Violation(
                    rule,
                    "expected-error",
                    f"accepted-{how or 'invalid'}",
                    f"an invalid request ({how}) was accepted: {_short(request)} "
                    f"-> {_brief(msg, 120)}",
                    (how,),
                    log.conn,
                )
            want = meta.get("error_class")
            if want and msg.error_class != want:
                return Violation(
                    rule,
                    "expected-error",
                    f"error-class-{how or 'invalid'}",
                    f"{how}: expected class {want}, got {msg.error_class}: {_brief(msg, 120)}",
                    (how, str(msg.error_class)),
                    log.conn,
                )
            return None
        name = meta.get("name")
        greeting = log.session.greeting
        if (
            name == "query-version"
            and "return" in value
            and isinstance(greeting, dict)
            and isinstance(greeting.get("QMP"), dict)
            and not json_equal(greeting["QMP"].get("version"), value["return"])
        ):
            return Violation(
                "Q8",
                "greeting-version",
                "version-mismatch",
                f"the greeting's version {_short(greeting['QMP'].get('version'))} "
                f"differs from query-version's {_short(value['return'])}",
                (),
                log.conn,
            )
        if (
            step.kind != "command"
            or "return" not in value
            or self.specs is None
            or not isinstance(name, str)
            or name not in self.specs.schema.commands
        ):
            return None
        command = self.specs.schema.commands[name]
        problems = self.schema_errors("return", name, value["return"], len(msg.raw))
        if problems:
            rule = "Q19" if command.ret_type is None else "Q3"
            return Violation(
                rule,
                "return-schema",
                "bad-return",
                f"{name} returned a value its schema forbids: {problems[0][:200]}",
                (name,),
                log.conn,
            )
        return None
