"""The compatibility rules a schema diff cites (reference notes §3.4).

Each rule is one cell of the §3.4 table (direction x verdict), plus the two
verdicts the table leaves open and the changes §3.3 says only introspection
sees.  Changes cite rules by id, so a report can print the row it applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Category: TypeAlias = Literal[
    "breaking",
    "compatible",
    "introspection-only",
    "deprecated-removal",
    "unstable",
]
Direction: TypeAlias = Literal["send", "receive", "both"]

#: Report order: what a reader must act on first.
CATEGORIES: tuple[Category, ...] = (
    "breaking",
    "deprecated-removal",
    "unstable",
    "introspection-only",
    "compatible",
)


@dataclass(frozen=True)
class Rule:
    """One compatibility rule: its id, the section it comes from, and what it says."""

    id: str
    section: str
    text: str

    def cite(self) -> str:
        """The rule as a report cites it: section, then text."""
        return f"{self.section}: {self.text}"


_RULES = [
    # §3.4, send direction (command arguments, recursively).
    Rule(
        "send.remove",
        "§3.4 send, breaking",
        "removing commands, arguments, enum values or union/alternate branches",
    ),
    Rule("send.add-mandatory", "§3.4 send, breaking", "adding a mandatory argument"),
    Rule("send.make-mandatory", "§3.4 send, breaking", "making an optional argument mandatory"),
    Rule(
        "send.narrow",
        "§3.4 send, breaking",
        "accepting fewer values than before (a removal in effect)",
    ),
    Rule(
        "send.add",
        "§3.4 send, compatible",
        "adding commands, optional arguments, enum values, union and alternate branches",
    ),
    Rule("send.make-optional", "§3.4 send, compatible", "making a mandatory argument optional"),
    Rule(
        "send.alternate-of",
        "§3.4 send, compatible",
        "turning an argument type into an alternate of that type",
    ),
    Rule(
        "send.widen",
        "§3.4 send, compatible",
        "accepting more values than before (an addition in effect)",
    ),
    # §3.4, receive direction (returns and event data, recursively).
    Rule("receive.remove", "§3.4 receive, breaking", "removing return or event data members"),
    Rule(
        "receive.remove-event",
        "§3.4 receive, breaking",
        "removing an event clients may wait for (a removal of receive data)",
    ),
    Rule(
        "receive.make-optional",
        "§3.4 receive, breaking",
        "a member that may now be absent is a removal for the replies that omit it",
    ),
    Rule(
        "receive.new-json-kind",
        "§3.4 receive, breaking",
        "receiving a JSON type clients never saw there (a member they cannot parse)",
    ),
    Rule(
        "receive.add",
        "§3.4 receive, compatible",
        "adding events, return or event data members (clients ignore unknown ones)",
    ),
    Rule(
        "receive.remove-unreachable",
        "§3.4 receive, compatible",
        "removing things that can no longer be sent (changes only introspection)",
    ),
    Rule("receive.narrow", "§3.4 receive, compatible", "sending a subset of what was sent before"),
    # The two verdicts §3.4 leaves open (written down in docs/compatibility.md).
    Rule(
        "verdict.receive-enum-value",
        "§3.4 verdict (docs/compatibility.md)",
        "a new enum value clients may receive is compatible: QAPI clients must "
        "tolerate values they do not know, as QEMU adds them every release",
    ),
    Rule(
        "verdict.receive-str-to-enum",
        "§3.4 verdict (docs/compatibility.md)",
        "str becoming an enum where clients receive it changes only introspection: "
        "the wire still carries a string, now from a documented set",
    ),
    # Both directions.
    Rule(
        "both.type-change",
        "§3.4 both, breaking",
        "a type changed to one with a different JSON representation",
    ),
    Rule(
        "both.reshape",
        "§3.3 introspection stability",
        "an optional member becoming a variant member (or back) changes only introspection",
    ),
    Rule(
        "both.feature",
        "§3.4 spec rules",
        "a deprecated/unstable feature was added or dropped; the wire is unchanged",
    ),
    # Policy rules that override the table.
    Rule(
        "policy.deprecated",
        "§3.4 spec rules",
        "deprecated things may be withdrawn under the deprecation policy",
    ),
    Rule("policy.unstable", "§3.4 spec rules, Q36", "x-/unstable things may change freely"),
    Rule(
        "command.oob",
        "§3.4 send, breaking",
        "a command lost allow-oob: exec-oob of it now fails (Q27)",
    ),
    Rule(
        "command.success-response",
        "§3.4 both, breaking",
        "a command changed whether it replies on success",
    ),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}
