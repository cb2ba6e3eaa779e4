"""Greeting: sent at once on connect, shaped as the spec says (Q7, Q8, Q9)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.dialects import QMP_DIALECTS
from conformance.protocol.messages import without_downstream
from conformance.session import Session, json_equal


@dataclass
class Greeted:
    """A fresh session's greeting and what ``query-version`` returned after negotiation (None
    without a return), with the transcript entry that evidence starts from."""

    session: Session
    greeting: dict[str, Any]
    version_reply: Any
    mark: int = 0


def greeted(ctx: Context) -> Greeted:
    """A fresh session's greeting and, after negotiating, ``query-version``.  Raises
    :class:`Fail` when the session gets no greeting or a command goes unanswered."""
    return ctx.workload("greeting", lambda: _greet(ctx))


def _greet(ctx: Context) -> Greeted:
    session = ctx.open(negotiate=False)
    assert session.greeting is not None
    ctx.call(session, "qmp_capabilities")
    reply = ctx.call(session, "query-version") if "query-version" in ctx.commands() else None
    session.close()
    return Greeted(session, session.greeting, reply.obj if reply and reply.ok else None)


@check(
    "greeting.shape", "Q7,Q3", "the greeting validates against the greeting schema", QMP_DIALECTS
)
def shape(ctx: Context) -> str:
    """Validate a fresh session's greeting against the greeting schema, which takes its
    version type from the target's own ``query-version`` (Q7).  Raises :class:`Fail`
    listing the first mismatches."""
    g = greeted(ctx)
    validator = ctx.specs().wire_validator("greeting", ctx.dialect)
    errors = list(validator.iter_errors(g.greeting))
    if errors:
        raise Fail(
            "the greeting does not match the QMP greeting schema (Q7)",
            expected='{"QMP": {"version": <VersionInfo>, "capabilities": [...]}}',
            seen="; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in errors[:5]
            ),
        )
    return "greeting matches the schema"


@check(
    "greeting.version", "Q8", "the greeting's version equals query-version's return", QMP_DIALECTS
)
def version(ctx: Context) -> str:
    """Compare the greeting's version with what ``query-version`` returns after negotiation:
    they must be equal as JSON values (Q8).  Raises :class:`Fail` with both when they
    differ, or when ``query-version`` returned nothing to compare."""
    g = greeted(ctx)
    if g.version_reply is None or "return" not in g.version_reply:
        raise Fail(
            "query-version gave no return value to compare with the greeting (Q8)",
            expected="a return value",
            seen=json.dumps(g.version_reply),
        )
    qmp = g.greeting.get("QMP", {})
    said = qmp.get("version") if isinstance(qmp, dict) else None
    # A downstream build may add members to query-version's return, not to
    # the greeting (Q38): compare what upstream defines.
    if not json_equal(said, without_downstream(g.version_reply["return"])):
        raise Fail(
            "the greeting's version differs from query-version (Q8)",
            expected=json.dumps(g.version_reply["return"]),
            seen=json.dumps(said),
        )
    return "greeting version == query-version"


@check(
    "greeting.capabilities",
    "Q7,Q9",
    "the greeting's capabilities are a list of names",
    QMP_DIALECTS,
)
def capabilities(ctx: Context) -> str:
    """Judge the greeting's capabilities: a JSON array of strings, empty for a dialect that
    knows no capability (Q7, Q9).  Raises :class:`Fail` with what the greeting offers."""
    g = greeted(ctx)
    qmp = g.greeting.get("QMP", {})
    caps = qmp.get("capabilities") if isinstance(qmp, dict) else None
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        raise Fail(
            "the greeting's capabilities are not a JSON array of strings (Q7)",
            expected="a JSON array of capability names",
            seen=json.dumps(caps),
        )
    if not ctx.dialect.known_capabilities and caps:
        raise Fail("a QMP 1.0 server offers no capabilities", expected="[]", seen=json.dumps(caps))
    return f"capabilities {json.dumps(caps)}"
