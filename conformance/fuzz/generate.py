"""The Hypothesis strategy for fuzz programs (see :mod:`conformance.fuzz.program`).

A program opens one or more connections, negotiates (with or without OOB,
or not at all, to exercise negotiation mode), then interleaves valid
requests, requests known to be invalid (each labelled with the rule it
breaks and the reply it must get), exec-oob requests and raw bytes across
the connections, and ends with a liveness probe on every connection.

Valid arguments come from :mod:`strategies.compile` (the shared QAPI
compiler).  Invalid requests are built here from valid ones by one
targeted change, so the rule they break is known by construction and
survives shrinking (shrinking only touches the valid parts).

Commands with side effects outside the server (files, processes, quitting)
are not generated unless asked for: the default set is the ``query-*``
commands plus a few harmless ones, see :data:`DEFAULT_COMMANDS`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from conformance.fuzz.program import (
    RAW_ID_PREFIX,
    RESET_BYTE,
    Program,
    Step,
    encode_request,
    probe_step,
)
from conformance.qapi.model import ObjectType, Schema
from strategies.compile import Compiled, compiled, kind_of
from strategies.json_values import deep_values, json_scalars, json_strings, json_values

#: Globs of the commands fuzzed by default: they read state, or change only
#: the server's own harmless state.  Everything else (quit, migrate with
#: ``exec:``, dump-guest-memory to a path, human-monitor-command...) could
#: touch the host and needs an explicit ``--commands``.
DEFAULT_COMMANDS = ("query-*", "qom-list", "qom-get", "qom-list-types",
                    "qom-list-properties", "device-list-properties", "stop", "cont",
                    "trace-event-get-state", "qmp_capabilities")
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
    compiled: Compiled = field(init=False)
    _args: dict[str, st.SearchStrategy[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self.compiled = compiled(self.schema)
        self._args = {}
        # Built once: making strategies per draw costs more than drawing.
        self.triggers = [n for n in EVENT_TRIGGERS if n in self.commands]
        pair = self.triggers if len(self.triggers) == len(EVENT_TRIGGERS) else []
        valid = [n for n in self.commands
                 if n != "qmp_capabilities" and n not in pair] or self.commands
        self.valid_names = st.sampled_from(valid)
        self.any_names = st.sampled_from(self.commands)

    def arguments(self, name: str) -> st.SearchStrategy[dict[str, Any]]:
        found = self._args.get(name)
        if found is None:
            found = self._args[name] = self.compiled.arguments(name)
        return found

    @classmethod
    def for_schema(cls, schema: Schema, globs: tuple[str, ...] = DEFAULT_COMMANDS,
                   **kwargs: Any) -> GenConfig:
        names = sorted(n for n in schema.commands
                       if n not in NEVER and any(fnmatch.fnmatchcase(n, g) for g in globs))
        return cls(schema, names, **kwargs)

    def oob_commands(self) -> list[str]:
        return [n for n in self.commands if self.schema.commands[n].allow_oob]


#: A name suffix in one draw (a text strategy draws once a character).
_SUFFIX = st.integers(0, (1 << 20) - 1).map("{:x}".format)

_SHORT_IDS = st.text("abcxyz-0123456789", max_size=8)
_RARE_IDS = st.one_of(json_scalars, json_values(6), deep_values(40)).filter(
    lambda v: not (isinstance(v, str) and v.startswith(RAW_ID_PREFIX)))
#: One draw picks how a request is identified; see _with_id.
_ID_KIND = st.integers(0, 63)
_BOOLEANS: st.SearchStrategy[bool] = st.booleans()


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

    def command(self, conn: int, msg: dict[str, Any], meta: dict[str, Any]) -> None:
        self.steps.append(Step("command", conn, encode_request(msg), meta, msg))

    def raw(self, conn: int, data: bytes) -> None:
        # The trailing reset byte guarantees the next request is parsed from
        # a clean state whatever the raw bytes left behind (Q32).
        self.steps.append(Step("raw", conn, data + RESET_BYTE))

    def finish(self) -> Program:
        for number, conn in enumerate(sorted(self.conns)):
            self.steps.append(probe_step(conn, number))
        return Program(self.steps)


def _with_id(draw: st.DrawFn, b: _Builder, msg: dict[str, Any]) -> dict[str, Any]:
    # Mostly a fresh number from the program's counter: unique, so the reply
    # is matched unambiguously, and one draw (a campaign spends most of its
    # time drawing).  Then short strings (which repeat: equal ids), no id
    # at all (exec-oob always has one, Q24) and, rarely, ids of every JSON
    # type (Q15), which cost tens of draws.  Shrinking goes toward the counter.
    which = draw(_ID_KIND)
    if which < 48:
        b.counter += 1
        msg["id"] = b.counter
    elif which < 54 and "exec-oob" not in msg:
        pass
    elif which < 61:
        msg["id"] = draw(_SHORT_IDS)
    else:
        msg["id"] = draw(_RARE_IDS)
    return msg


def _valid(draw: st.DrawFn, cfg: GenConfig, b: _Builder, conn: int,
           names: st.SearchStrategy[str] | None = None) -> None:
    state = b.conns[conn]
    name = draw(cfg.valid_names if names is None else names)
    oob = state.oob and cfg.schema.commands[name].allow_oob and draw(st.booleans())
    msg: dict[str, Any] = {"exec-oob" if oob else "execute": name}
    if cfg.schema.commands[name].arg_type is not None or name in cfg.compiled.open_commands:
        args = draw(cfg.arguments(name))
        # An empty object is sent as often as left out (both are valid).
        send_empty: bool = not args and draw(_BOOLEANS)
        if args or send_empty:
            msg["arguments"] = args
    meta: dict[str, Any] = {"name": name, "oob": oob, "expect": "any"}
    if not state.negotiated:
        meta.update(expect="error", rule="Q10", error_class="CommandNotFound")
    b.command(conn, _with_id(draw, b, msg), meta)


#: Invalid-request makers: (rule, how) -> (message, expected error class or None).
Maker = Callable[[st.DrawFn, GenConfig, str], "tuple[dict[str, Any], str | None] | None"]


def _unknown_argument(draw: st.DrawFn, cfg: GenConfig, name: str
                      ) -> tuple[dict[str, Any], str | None] | None:
    if name in cfg.compiled.lenient_commands:
        return None
    args = dict(draw(cfg.arguments(name)))
    key = "qc-unknown-" + draw(_SUFFIX)
    args[key] = draw(json_scalars)
    return {"execute": name, "arguments": args}, "GenericError"


def _wrong_type(draw: st.DrawFn, cfg: GenConfig, name: str
                ) -> tuple[dict[str, Any], str | None] | None:
    cmd = cfg.schema.commands[name]
    arg = cfg.schema.types.get(cmd.arg_type) if cmd.arg_type else None
    if not isinstance(arg, ObjectType) or not arg.members or name in cfg.compiled.lenient_commands:
        return None
    member = draw(st.sampled_from(arg.members))
    accepted = cfg.compiled.kinds(member.type)
    samples: tuple[Any, ...] = (None, True, 7, 0.5, "qc", {}, [])
    candidates = [v for v in samples if kind_of(v) not in accepted]
    if not candidates:
        return None
    args = dict(draw(cfg.arguments(name)))
    args[member.name] = draw(st.sampled_from(candidates))
    return {"execute": name, "arguments": args}, "GenericError"


def _arguments_not_object(draw: st.DrawFn, cfg: GenConfig, name: str
                          ) -> tuple[dict[str, Any], str | None] | None:
    value: Any = draw(st.sampled_from([None, 1, "x", [], True]))
    return {"execute": name, "arguments": value}, "GenericError"


def _unknown_command(draw: st.DrawFn, cfg: GenConfig, name: str
                     ) -> tuple[dict[str, Any], str | None] | None:
    bogus = "qc-no-such-" + draw(_SUFFIX)
    return {"execute": bogus}, "CommandNotFound"


def _unexpected_member(draw: st.DrawFn, cfg: GenConfig, name: str
                       ) -> tuple[dict[str, Any], str | None] | None:
    key = draw(st.sampled_from(["qc-extra", "control", "Execute", "argument"]))
    return {"execute": name, key: draw(json_scalars)}, "GenericError"


def _execute_not_string(draw: st.DrawFn, cfg: GenConfig, name: str
                        ) -> tuple[dict[str, Any], str | None] | None:
    return {"execute": draw(st.sampled_from([None, 1, [], {}, True]))}, "GenericError"


def _oob_not_allowed(draw: st.DrawFn, cfg: GenConfig, name: str
                     ) -> tuple[dict[str, Any], str | None] | None:
    if cfg.schema.commands[name].allow_oob:
        return None
    return {"exec-oob": name}, "GenericError"


def _oob_not_negotiated(draw: st.DrawFn, cfg: GenConfig, name: str
                        ) -> tuple[dict[str, Any], str | None] | None:
    # Best with a command that does allow OOB: then only the missing
    # negotiation makes the request wrong.
    oob = cfg.oob_commands()
    return {"exec-oob": draw(st.sampled_from(oob)) if oob else name}, "GenericError"


def _repeat_negotiation(draw: st.DrawFn, cfg: GenConfig, name: str
                        ) -> tuple[dict[str, Any], str | None] | None:
    return {"execute": "qmp_capabilities"}, "CommandNotFound"


#: rule -> maker; the rule is the one a server breaks by not answering with an error.
INVALID: tuple[tuple[str, str, Maker], ...] = (
    ("Q33", "unknown-argument", _unknown_argument),
    ("Q33", "wrong-type", _wrong_type),
    ("Q33", "arguments-not-object", _arguments_not_object),
    ("Q20", "unknown-command", _unknown_command),
    ("Q33", "unexpected-member", _unexpected_member),
    ("Q33", "execute-not-string", _execute_not_string),
    ("Q27", "oob-not-allowed", _oob_not_allowed),
    ("Q28", "oob-not-negotiated", _oob_not_negotiated),
    ("Q12", "repeat-negotiation", _repeat_negotiation),
)


_INVALID = st.sampled_from(INVALID)


def _invalid(draw: st.DrawFn, cfg: GenConfig, b: _Builder, conn: int) -> None:
    state = b.conns[conn]
    if not state.negotiated and draw(st.booleans()):
        # Q14: enabling a capability nobody offered fails and leaves the
        # connection in negotiation mode.
        cap = draw(st.sampled_from(["qc-no-such-cap", "OOB", "oob ", ""]))
        msg = {"execute": "qmp_capabilities", "arguments": {"enable": [cap]}}
        b.command(conn, _with_id(draw, b, msg), {
            "name": "qmp_capabilities", "oob": False, "expect": "error", "rule": "Q14",
            "how": "unknown-capability"})
        return
    rule, how, maker = draw(_INVALID)
    name = draw(cfg.any_names)
    applicable = state.negotiated and (
        (how != "oob-not-allowed" or state.oob) and (how != "oob-not-negotiated" or not state.oob))
    made = maker(draw, cfg, name) if applicable else None
    if made is None:
        # Not applicable on this connection: the one that always is.
        rule, how = ("Q20" if state.negotiated else "Q10"), "unknown-command"
        made = _unknown_command(draw, cfg, name)
        assert made is not None
    msg, error_class = made
    meta: dict[str, Any] = {"name": str(msg.get("execute", msg.get("exec-oob", ""))),
                            "oob": "exec-oob" in msg, "expect": "error", "rule": rule,
                            "how": how}
    if error_class:
        meta["error_class"] = error_class
    b.command(conn, _with_id(draw, b, msg), meta)


_RAW_PIECES = (b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"'", b"\\u", b"\xff",
               b"\xc3", b"\xed\xa0\x80", b"\x00", b"\r\n", b" ", b"1e999", b"-", b"nul",
               b"true", b'"execute"', b'"arguments"', b"{}", b"[]", b"\x7f", b"\t")


_PIECES = st.lists(st.sampled_from(_RAW_PIECES), max_size=24)


@st.composite
def _raw_bytes(draw: st.DrawFn) -> bytes:
    """Byte soup biased toward JSON tokens, broken UTF-8 and deep nesting."""
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return draw(st.binary(max_size=48))
    if shape == 1:
        return b"".join(draw(_PIECES))
    if shape == 2:
        depth = draw(st.sampled_from([10, 1023, 1024, 1025, 1100]))
        return draw(st.sampled_from([b"[", b'{"a":'])) * depth
    # Its id is in a namespace of its own so that a reply to a mutated request
    # can never be mistaken for the reply to a generated one.
    msg = encode_request({"execute": draw(json_strings),
                          "id": f"{RAW_ID_PREFIX}{draw(st.integers(0, 999))}"})
    cut = draw(st.integers(0, len(msg)))
    return msg[:cut] + draw(st.binary(max_size=4)) + msg[cut:]


#: Byte soup biased toward JSON tokens, broken UTF-8 and deep nesting.
RAW = _raw_bytes()
_KIND = st.sampled_from(["valid", "valid", "valid", "invalid", "invalid", "raw", "event"])


@st.composite
def programs(draw: st.DrawFn, cfg: GenConfig) -> Program:
    """A whole example: connections, negotiation, traffic, probes."""
    b = _Builder()
    nconns = draw(st.integers(1, cfg.max_connections))
    for conn in range(nconns):
        # Extra connections start in negotiation mode more often: that is
        # where events must not arrive (Q11) while another connection works.
        one_in = cfg.fresh_one_in if conn == 0 else max(2, cfg.fresh_one_in // 3)
        fresh = cfg.fresh_one_in > 0 and draw(st.integers(0, one_in - 1)) == 1
        oob = cfg.oob_offered and draw(st.booleans())
        b.open(conn, negotiate=not fresh, oob=oob)
    count = draw(st.integers(1, cfg.max_steps))
    for _ in range(count):
        conn = draw(st.integers(0, nconns - 1)) if nconns > 1 else 0
        kind = draw(_KIND)
        if kind == "valid" or (kind == "event" and not cfg.triggers):
            _valid(draw, cfg, b, conn)
        elif kind == "event":
            for name in cfg.triggers:
                _valid(draw, cfg, b, conn, st.just(name))
        elif kind == "invalid":
            _invalid(draw, cfg, b, conn)
        else:
            b.raw(conn, draw(RAW))
    return b.finish()
