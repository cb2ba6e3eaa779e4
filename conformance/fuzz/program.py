"""What a fuzz example is: a program of byte chunks sent over numbered connections.

A :class:`Program` is the unit that is generated, executed, judged, stored
in a finding file and replayed.  It holds the exact bytes sent (never a seed:
seeds do not reproduce across versions, stored bytes do) plus, for each
chunk, what the sender knew about it, so the oracles can be run again on
replay without re-deriving anything from a schema.

Step kinds:

``connect``   open connection ``conn`` and read its greeting;
``negotiate`` ``qmp_capabilities`` (the chunk is the request; meta ``oob``);
``command``   one well-formed JSON request object (meta ``name``, ``oob``,
              ``expect``: ``"error"`` when the request is known to be invalid,
              with ``rule`` the rule it breaks, or ``"any"``);
``raw``       arbitrary bytes (no reply count is implied);
``probe``     a liveness probe: an unknown command with a unique id, which
              every dialect must answer with an error (so it has no side
              effect).  Raw chunks end in a lexical-error byte (Q32), so the
              parser is in a known-good state whenever a request follows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol._qemu import mod_utf8_decode
from conformance.protocol.encoding import encode_request
from conformance.protocol.stream import Parsed, parse_all
from conformance.session import escape
from strategies.raw import RAW_ID_PREFIX

__all__ = [
    "RAW_ID_PREFIX",
    "RESET_BYTE",
    "MachineRun",
    "Program",
    "Step",
    "encode_request",
    "probe_step",
]

STEP_KINDS = ("connect", "negotiate", "command", "raw", "probe")

#: The reset byte sent before a probe: a control character is a lexical
#: error wherever the parser is, so it returns to a known-good state (Q32).
RESET_BYTE = b"\x01"
PROBE_COMMAND = "qmp-conform-probe"
#: Step meta naming a value (an id or an argument) spelled in a way RFC 8259
#: lets a reader refuse (a number past a double, a lone surrogate): no reply
#: can be expected.
ID_LIMIT = "id_limit"
#: Step meta naming the grammar class of an id written as no encoder writes
#: it: findings about it are one finding per class, whatever else the
#: request held.
ID_SPELLING = "id_spelling"
#: Step meta naming the grammar class an argument's value is written in.
VALUE_SPELLING = "value_spelling"


@dataclass
class Step:
    """One thing the harness does on connection ``conn``."""

    kind: str
    conn: int = 0
    data: bytes = b""
    meta: dict[str, Any] = field(default_factory=dict)
    #: The request as a JSON value when the generator made it (saves decoding
    #: it again to judge the reply); decoded lazily otherwise.
    value: Any = field(default=None, repr=False, compare=False)
    parsable: bool | None = field(default=None, repr=False, compare=False)

    def request(self) -> dict[str, Any] | None:
        """The chunk as a request object, or None when it is not one, or when
        QEMU's parser would not read it as one (a noncharacter in a string is
        a parse error there, answered without an id: Q18)."""
        if self.kind not in ("command", "negotiate", "probe"):
            return None
        if self.value is None:
            try:
                self.value = json.loads(self.data.decode("utf-8", "surrogatepass"))
            except (ValueError, RecursionError):
                self.value = False
        if self.parsable is None:
            # Text QEMU accepts inside strings (no noncharacter, no surrogate,
            # valid UTF-8) parses as it does in ASCII; only the rest needs
            # the model of QEMU's streamer, which is slow.
            self.parsable = ID_LIMIT not in self.meta and (
                mod_utf8_decode(self.data) is not None or _one_object(self.data)
            )
        return self.value if isinstance(self.value, dict) and self.parsable else None

    def to_json(self) -> dict[str, Any]:
        """The step as a line of a finding file's program section: the exact
        bytes in ``b64``, a preview for people in ``text``."""
        out: dict[str, Any] = {"kind": self.kind, "conn": self.conn}
        if self.data:
            out["b64"] = base64.b64encode(self.data).decode("ascii")
            out["text"] = escape(self.data[:400]) + ("..." if len(self.data) > 400 else "")
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Step:
        """The step a program line describes (see :meth:`to_json`).

        Raises :class:`ValueError` for an unknown kind, bad base64 or a ``meta``
        that is no object; a ``conn`` that is not an integer raises
        :class:`ValueError` or :class:`TypeError`.
        """
        kind = obj.get("kind")
        if kind not in STEP_KINDS:
            raise ValueError(f"unknown step kind {kind!r}")
        data = base64.b64decode(obj["b64"], validate=True) if "b64" in obj else b""
        meta = obj.get("meta", {})
        if not isinstance(meta, dict):
            raise ValueError("step meta must be an object")
        return cls(kind, int(obj.get("conn", 0)), data, meta)


@dataclass
class Program:
    """A fuzz example: its steps in the order they are sent (see the module docstring)."""

    steps: list[Step] = field(default_factory=list)

    @property
    def connections(self) -> list[int]:
        """The connection numbers the program uses, in order."""
        return sorted({s.conn for s in self.steps})

    def messages(self) -> int:
        """Chunks sent (the unit of the messages-per-second figure)."""
        return sum(1 for s in self.steps if s.data)

    def size(self) -> int:
        """Bytes sent in all."""
        return sum(len(s.data) for s in self.steps)

    def lines(self) -> list[str]:
        """The program section of a finding file: one JSON line per step."""
        return [json.dumps(s.to_json(), ensure_ascii=True) for s in self.steps]

    @classmethod
    def from_lines(cls, lines: list[str]) -> Program:
        """The program a finding file's program section holds (blank lines skipped).

        Raises :class:`ValueError` for a line that is not JSON or not a valid
        step (:class:`TypeError` for some, see :meth:`Step.from_json`).
        """
        return cls([Step.from_json(json.loads(line)) for line in lines if line.strip()])


@dataclass
class MachineRun:
    """What a stateful finding replays: a run of the state machine ``machine``
    (a class of :mod:`strategies.stateful`), as the rules it ran in order.

    Each step is ``{"step": RULE, "args": {...}}``, with ``"returns": VALUE``
    when the rule returned a bundle value (a job's name): a replay passes
    its own run's value wherever a later step's argument equals it.
    ``sent`` is the bytes the run sent (the second part of a finding's weight).
    """

    machine: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0

    def size(self) -> int:
        """Bytes the run sent."""
        return self.sent

    def lines(self) -> list[str]:
        """The program section of a finding file: one JSON line per step."""
        return [json.dumps(s, ensure_ascii=True, sort_keys=True) for s in self.steps]

    @classmethod
    def from_lines(cls, machine: str, lines: list[str], sent: int = 0) -> MachineRun:
        """The run a stateful finding's program section holds (blank lines skipped).

        Raises :class:`ValueError` for a line that is not JSON or not a step
        (an object naming its rule in ``step``, with ``args`` an object).
        """
        steps = []
        for line in filter(str.strip, lines):
            entry = json.loads(line)
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("step"), str)
                or not isinstance(entry.get("args", {}), dict)
            ):
                raise ValueError(f"not a stateful step: {line[:200]}")
            steps.append(entry)
        return cls(machine, steps, sent)


def _one_object(data: bytes) -> bool:
    """Whether QEMU's JSON streamer reads ``data`` as exactly one object."""
    items = parse_all(data)
    return len(items) == 1 and isinstance(items[0], Parsed) and isinstance(items[0].value, dict)


def probe_step(conn: int, number: int) -> Step:
    """The liveness probe that ends connection ``conn``'s traffic: an unknown
    command with the id ``qmp-conform-probe-<number>``, unique in the program."""
    pid = f"qmp-conform-probe-{number}"
    msg = {"execute": PROBE_COMMAND, "id": pid}
    return Step("probe", conn, encode_request(msg), {"id": pid}, msg)
