"""QMP dialects as data, read by both the reference server and the harness.

A dialect fixes everything protocol-level that differs between QMP servers:
whether there is a greeting and a negotiation phase, which capabilities are
offered, how out-of-band execution is requested, how many in-band requests
may queue, the line terminator and the guest agent's resync byte.  Command
sets and behaviour of individual commands are not part of a dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from .messages import version_info
from .values import JSON

__all__ = [
    "DEFAULT",
    "DIALECTS",
    "NAMES",
    "OOB_DRAFT",
    "QEMU",
    "QEMU_7_2_VERSION",
    "QGA",
    "QMP_1_0",
    "QMP_DIALECTS",
    "Dialect",
    "OOBStyle",
    "get_dialect",
    "resolve",
]

OOBStyle: TypeAlias = Literal["exec-oob", "control"]

QEMU_7_2_VERSION: JSON = version_info(7, 2, 22, "Debian 1:7.2+dfsg-7+deb12u18+b3")


@dataclass(frozen=True)
class Dialect:
    """Protocol-level profile of one kind of QMP server.

    ``known_capabilities`` is the set ``qmp_capabilities`` accepts as names at
    all (QEMU's QMPCapability enum); ``capabilities`` is what the greeting
    offers.  A known but unoffered one fails with "Capability %s not
    available"; an unknown one with QEMU's "Parameter 'null' ..." error.
    """

    name: str
    description: str
    greeting: bool = True
    negotiation: bool = True
    capabilities: tuple[str, ...] = ()
    known_capabilities: frozenset[str] = frozenset({"oob"})
    oob_style: OOBStyle | None = None
    # In-band requests that may wait (not counting the running one) before
    # the server stops reading: QMP_REQ_QUEUE_LEN_MAX with OOB on, else 1.
    queue_limit_oob: int = 8
    queue_limit: int = 1
    events: bool = True
    line_terminator: bytes = b"\r\n"
    sync_command: str | None = None
    sync_sentinel: bytes | None = None
    #: The cheapest command every server of the dialect answers.
    probe_command: str = "query-version"
    version: JSON = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.name

    @property
    def supports_oob(self) -> bool:
        """Whether the greeting offers ``oob`` and there is a way to request it."""
        return self.oob_style is not None and "oob" in self.capabilities

    def queue_limit_for(self, oob_enabled: bool) -> int:
        """How many in-band requests may be queued in the given session state."""
        return self.queue_limit_oob if oob_enabled else self.queue_limit


QEMU = Dialect(
    name="qemu",
    description="QEMU 7.2 monitor: greeting, negotiation, capability oob, exec-oob",
    capabilities=("oob",),
    oob_style="exec-oob",
    version=QEMU_7_2_VERSION,
)

OOB_DRAFT = Dialect(
    name="oob-draft",
    description='QEMU 2.12 draft OOB: "control": {"run-oob": true} on execute',
    capabilities=("oob",),
    oob_style="control",
    version=version_info(2, 12, 0),
)

QMP_1_0 = Dialect(
    name="qmp-1.0",
    description="original QMP: greeting with no capabilities, negotiation, no OOB",
    capabilities=(),
    known_capabilities=frozenset(),
    version=version_info(1, 0, 0),
)

QGA = Dialect(
    name="qga",
    description="guest agent: no greeting or negotiation, no OOB or events, LF lines, "
    "0xFF before the guest-sync-delimited reply",
    greeting=False,
    negotiation=False,
    capabilities=(),
    known_capabilities=frozenset(),
    events=False,
    line_terminator=b"\n",
    sync_command="guest-sync-delimited",
    sync_sentinel=b"\xff",
    probe_command="guest-ping",
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (QEMU, OOB_DRAFT, QMP_1_0, QGA)}

#: Every dialect's name, for option choices and help texts.
NAMES: tuple[str, ...] = tuple(DIALECTS)

#: What a server is taken to speak unless it or the user says otherwise.
DEFAULT = QEMU

#: The dialects with a greeting and a negotiation phase (QMP proper).
QMP_DIALECTS: tuple[Dialect, ...] = tuple(d for d in DIALECTS.values() if d.greeting)


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; KeyError lists the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise KeyError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None


def resolve(dialect: Dialect | str) -> Dialect:
    """``dialect`` itself, or the dialect of that name; KeyError lists the known ones."""
    return dialect if isinstance(dialect, Dialect) else get_dialect(dialect)
