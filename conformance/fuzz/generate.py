"""The Hypothesis strategy for fuzz programs (see :mod:`conformance.fuzz.program`).

A program opens one or more connections, negotiates (with or without OOB,
or not at all, to exercise negotiation mode), then interleaves valid
requests, requests known to be invalid (each labelled with the rule it
breaks and the reply it must get), exec-oob requests and raw bytes across
the connections, and ends with a liveness probe on every connection.

Everything drawn comes from :mod:`strategies`, the one generation engine
the catalogue's tests use too: valid arguments from the QAPI compiler,
invalid requests from :func:`strategies.invalid_requests` (one label per
rule, with the connection's negotiation and OOB state passed in, so the
label is right by construction and survives shrinking) and raw bytes from
:mod:`strategies.raw`.  This module only decides the program's shape:
connections, the mix of steps, ids, and the meta the oracles judge by.

Commands with side effects outside the server (files, processes, quitting)
are not generated unless asked for: the default set is the ``query-*``
commands plus a few harmless ones, see :data:`DEFAULT_COMMANDS`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from conformance.fuzz.program import (
    ID_LIMIT,
    ID_SPELLING,
    RAW_ID_PREFIX,
    RESET_BYTE,
    VALUE_SPELLING,
    Program,
    Step,
    encode_request,
    probe_step,
)
from conformance.protocol.spellings import Spelling
from conformance.qapi.model import Schema
from strategies.invalid import ERROR_CLASSES, NEGOTIATION_RULES, Invalid
from strategies.json_values import deep_values, id_spellings, json_scalars, json_values
from strategies.raw import RAW_RULES, raw_inputs, raw_noise
from strategies.requests import invalid_requests, requests, spellable_members

#: Globs of the commands fuzzed by default: they read state, or change only
#: the server's own harmless state.  Everything else (quit, migrate with
#: ``exec:``, dump-guest-memory to a path, human-monitor-command...) could
#: touch the host and needs an explicit ``--commands``.
DEFAULT_COMMANDS = (
    "query-*",
    "qom-list",
    "qom-get",
    "qom-list-types",
    "qom-list-properties",
    "device-list-properties",
    "stop",
    "cont",
    "trace-event-get-state",
    "qmp_capabilities",
)
#: The globs of a confined campaign (``--confine``): every command.
EVERY_COMMAND = ("*",)
#: Harmless commands that make the server emit events (STOP, RESUME): events
#: are what Q11, Q29 and Q30 are about, so they are drawn on purpose, and
#: always as this pair, in this order.  Whatever state the guest is in, the
#: pair emits an event and leaves it running: a program's outcome must not
#: depend on what earlier programs did, or its finding would not replay on
#: a fresh server.
EVENT_TRIGGERS = ("stop", "cont")
#: Never generated as valid requests, whatever the globs say: they end the
#: session or the server, which the crash oracle would report.
NEVER = frozenset({"quit", "system_powerdown", "system_reset", "x-exit-preconfig"})


@dataclass
class GenConfig:
    """What the generator may produce for one target."""

    schema: Schema
    commands: list[str]
    oob_offered: bool = True
    max_connections: int = 1
    #: One connection in this many starts un-negotiated (0: never); cheap on a
    #: socket, a process start on a spawned target, hence configurable.
    fresh_one_in: int = 16
    max_steps: int = 24

    def __post_init__(self) -> None:
        # Built once: making strategies per draw costs more than drawing.
        self.triggers = [n for n in EVENT_TRIGGERS if n in self.commands]
        pair = self.triggers if len(self.triggers) == len(EVENT_TRIGGERS) else []
        self.valid_commands = [
            n for n in self.commands if n != "qmp_capabilities" and n not in pair
        ] or self.commands
        self._valid: dict[tuple[bool, str | None], st.SearchStrategy[dict[str, Any]]] = {}
        self._invalid: dict[tuple[bool, bool], st.SearchStrategy[Invalid]] = {}
        self._spellable: dict[str, list[tuple[str, Spelling]]] = {}
        self.raw = raw_noise() | raw_inputs(labels=RAW_LABELS).map(Invalid.wire)

    def valid(self, *, oob: bool, only: str | None = None) -> st.SearchStrategy[dict[str, Any]]:
        """Valid requests without an id (the program numbers them), out of band
        now and then when ``oob`` is negotiated; of command ``only`` if given.

        Raises :class:`ValueError` when the config has no commands.
        """
        key = (oob, only)
        found = self._valid.get(key)
        if found is None:
            names = [only] if only else self.valid_commands
            found = self._valid[key] = requests(self.schema, names, oob=oob, with_ids=False)
        return found

    @classmethod
    def for_schema(
        cls, schema: Schema, globs: tuple[str, ...] = DEFAULT_COMMANDS, **kwargs: Any
    ) -> GenConfig:
        """A config for the commands of ``schema`` that match one of ``globs``,
        those in ``NEVER`` left out; ``kwargs`` set the other fields."""
        names = sorted(
            n
            for n in schema.commands
            if n not in NEVER and any(fnmatch.fnmatchcase(n, g) for g in globs)
        )
        return cls(schema, names, **kwargs)

    def spellable(self, command: str) -> list[tuple[str, Spelling]]:
        """The arguments of ``command`` a value may be spelled in, with each
        spelling (see :func:`strategies.requests.spellable_members`)."""
        found = self._spellable.get(command)
        if found is None:
            found = self._spellable[command] = spellable_members(self.schema, command)
        return found

    def invalid(self, *, negotiated: bool, oob: bool) -> st.SearchStrategy[Invalid]:
        """Labelled invalid requests for a connection in this state.

        Raises :class:`ValueError` when the config has no commands.
        """
        key = (negotiated, oob and negotiated)
        found = self._invalid.get(key)
        if found is None:
            found = invalid_requests(
                self.schema, self.commands, negotiated=negotiated, oob=key[1], with_ids=False
            )
            if negotiated:
                # Arguments are where servers differ most (Q33): half the
                # draws, not one label's share among the request labels.
                with contextlib.suppress(ValueError):  # no command takes arguments
                    found |= invalid_requests(
                        self.schema, self.commands, labels=["arguments"], with_ids=False
                    )
            self._invalid[key] = found
        return found


#: Raw labels drawn in campaigns: all but two whose cost would dominate the
#: run: oversized tokens send QEMU's token limit (64 MiB) each, and a closed
#: structure nested past the limit draws an error for every closing bracket
#: after it (about a thousand replies per chunk, all decoded and judged).  The
#: nesting limit is still crossed in every campaign, by ``raw_noise``'s
#: unclosed structures around it.
RAW_LABELS = [label for label in RAW_RULES if label not in ("oversized-token", "nesting-too-deep")]
#: A valid request on a connection still negotiating breaks this label's rule.
BEFORE_NEGOTIATION = "command-before-negotiation"

#: Short ids repeat (equal ids) and carry the three quote and escape
#: characters a server's writer must get right.
_SHORT_IDS = st.text("abcxyz-0123456789'\"\\", max_size=8)
_RARE_IDS = st.one_of(json_scalars, json_values(3, 3), deep_values(40)).filter(
    lambda v: not (isinstance(v, str) and v.startswith(RAW_ID_PREFIX))
)
#: One draw picks how a request is identified; see _with_id.
_ID_KIND = st.integers(0, 63)


@dataclass
class _Conn:
    negotiated: bool = False
    oob: bool = False
    dirty: bool = False  # raw bytes sent since the last reset


class _Builder:
    """Accumulates steps while the strategy draws; tracks each connection's state."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.conns: dict[int, _Conn] = {}
        self.counter = 0

    def open(self, conn: int, negotiate: bool, oob: bool) -> None:
        state = self.conns[conn] = _Conn()
        self.steps.append(Step("connect", conn))
        if negotiate:
            args = {"enable": ["oob"]} if oob else None
            msg: dict[str, Any] = {"execute": "qmp_capabilities", "id": f"qc-neg-{conn}"}
            if args:
                msg["arguments"] = args
            self.steps.append(Step("negotiate", conn, encode_request(msg), {"oob": oob}, msg))
            state.negotiated, state.oob = True, oob

    def command(
        self,
        conn: int,
        msg: dict[str, Any],
        meta: dict[str, Any],
        spelled: Spelling | None = None,
        argument: tuple[str, Spelling] | None = None,
    ) -> None:
        if spelled is None and argument is None:
            self.steps.append(Step("command", conn, encode_request(msg), meta, msg))
            return
        # Spelled values go in as their own text: json.dumps would respell them.
        meta = dict(meta)
        value = msg
        data = encode_request(msg)
        if argument is not None:
            member, how = argument
            marked = {**msg, "arguments": {**msg["arguments"], member: _PLACEHOLDER}}
            data = encode_request(marked).replace(_PLACEHOLDER_TEXT, how.text.encode(), 1)
            value = {**msg, "arguments": {**msg["arguments"], member: how.value}}
            meta[VALUE_SPELLING] = how.label
            if how.limit:
                meta[ID_LIMIT] = how.label
        if spelled is not None:
            data = data[:-1] + (b"," if msg else b"") + b'"id":' + spelled.text.encode() + b"}"
            value = {**value, "id": spelled.value}
            meta[ID_SPELLING] = spelled.label
            if spelled.limit:
                meta[ID_LIMIT] = spelled.label
        self.steps.append(Step("command", conn, data, meta, value))

    def raw(self, conn: int, data: bytes) -> None:
        # The trailing reset byte guarantees the next request is parsed from
        # a clean state whatever the raw bytes left behind (Q32).
        self.steps.append(Step("raw", conn, data + RESET_BYTE))

    def finish(self) -> Program:
        for number, conn in enumerate(sorted(self.conns)):
            self.steps.append(probe_step(conn, number))
        return Program(self.steps)


#: Stands in an argument whose value is written as its own text; no schema
#: value holds control characters around a name like this.
_PLACEHOLDER = "\x00qmp-conform-spelled\x00"
_PLACEHOLDER_TEXT = json.dumps(_PLACEHOLDER).encode()


def _with_id(draw: st.DrawFn, b: _Builder, msg: dict[str, Any]) -> Spelling | None:
    """Give ``msg`` an id, or return the spelling the builder writes as its id.

    Mostly a fresh number from the program's counter: unique, so the reply
    is matched unambiguously, and one draw (a campaign spends most of its
    time drawing).  Then short strings (which repeat: equal ids), no id at
    all (exec-oob always has one, Q24), ids spelled as no encoder writes
    them (``0E0``, ``1e400``, escapes: Q15, Q37) and, rarely, ids of every
    JSON type (Q15), which cost tens of draws.  Shrinking goes toward the
    counter.
    """
    which = draw(_ID_KIND)
    if which < 48:
        b.counter += 1
        msg["id"] = b.counter
    elif which < 54 and "exec-oob" not in msg:
        pass
    elif which < 60:
        msg["id"] = draw(_SHORT_IDS)
    elif which < 61:
        return draw(id_spellings)
    else:
        msg["id"] = draw(_RARE_IDS)
    return None


def _valid(
    draw: st.DrawFn, cfg: GenConfig, b: _Builder, conn: int, only: str | None = None
) -> None:
    state = b.conns[conn]
    msg = draw(cfg.valid(oob=state.oob, only=only))
    oob = "exec-oob" in msg
    meta: dict[str, Any] = {
        "name": msg["exec-oob" if oob else "execute"],
        "oob": oob,
        "expect": "any",
    }
    if not state.negotiated:
        meta.update(
            expect="error",
            rule=NEGOTIATION_RULES[BEFORE_NEGOTIATION],
            how=BEFORE_NEGOTIATION,
            error_class=ERROR_CLASSES[BEFORE_NEGOTIATION],
        )
    spelled = _with_id(draw, b, msg)
    argument = None
    # One spelled value a request at most: a lost reply then names its cause.
    if spelled is None and msg.get("arguments") and draw(_below(RESPELL_ONE_IN)) == 0:
        present = [p for p in cfg.spellable(meta["name"]) if p[0] in msg["arguments"]]
        argument = draw(st.sampled_from(present)) if present else None
    b.command(conn, msg, meta, spelled, argument)


def _invalid(draw: st.DrawFn, cfg: GenConfig, b: _Builder, conn: int) -> None:
    state = b.conns[conn]
    example = draw(cfg.invalid(negotiated=state.negotiated, oob=state.oob))
    if not isinstance(example.message, dict) or example.raw is not None:
        # Not a request object (or only expressible as bytes): its reply
        # cannot be matched to it, so it goes out as raw bytes.
        b.raw(conn, example.wire())
        return
    msg = {k: v for k, v in example.message.items() if k != "id"}
    name = msg.get("execute", msg.get("exec-oob", ""))
    meta: dict[str, Any] = {
        "name": name if isinstance(name, str) else "",
        "oob": "exec-oob" in msg,
        "expect": "error",
        "rule": example.rule,
        "how": example.label,
    }
    if example.error_class:
        meta["error_class"] = example.error_class
    b.command(conn, msg, meta, _with_id(draw, b, msg))


@functools.cache
def _below(n: int) -> st.SearchStrategy[int]:
    # Drawn for every connection: building st.integers there cost more than drawing.
    return st.integers(0, n - 1)


#: One valid request with arguments in this many has one of them written as
#: no encoder writes it (grammar spellings of its value, Q15/Q16).
RESPELL_ONE_IN = 12
#: What a step sends, weighted by repetition.
_KINDS = ("valid", "valid", "valid", "invalid", "invalid", "raw", "event")


@functools.cache
def _steps(nconns: int) -> st.SearchStrategy[tuple[int, str]]:
    # Connection and kind in one draw: every choice costs Hypothesis about
    # as much as a reference server's answer, and a step is a handful of
    # them.  Ordered so that shrinking goes to the first connection, then to
    # a valid request.
    return st.sampled_from([(conn, kind) for kind in _KINDS for conn in range(nconns)])


@st.composite
def programs(draw: st.DrawFn, cfg: GenConfig) -> Program:
    """A whole example: connections, negotiation, traffic, probes."""
    b = _Builder()
    nconns = draw(st.integers(1, cfg.max_connections))
    for conn in range(nconns):
        # Extra connections start in negotiation mode more often: that is
        # where events must not arrive (Q11) while another connection works.
        one_in = cfg.fresh_one_in if conn == 0 else max(2, cfg.fresh_one_in // 3)
        fresh = cfg.fresh_one_in > 0 and draw(_below(one_in)) == 1
        oob = cfg.oob_offered and draw(st.booleans())
        b.open(conn, negotiate=not fresh, oob=oob)
    count = draw(st.integers(1, cfg.max_steps))
    for _ in range(count):
        conn, kind = draw(_steps(nconns))
        if kind == "valid" or (kind == "event" and not cfg.triggers):
            _valid(draw, cfg, b, conn)
        elif kind == "event":
            for name in cfg.triggers:
                _valid(draw, cfg, b, conn, name)
        elif kind == "invalid":
            _invalid(draw, cfg, b, conn)
        else:
            b.raw(conn, draw(cfg.raw))
    return b.finish()
