"""Argument checking: bad arguments rejected with GenericError, before any
side effect (Q33, Q34)."""

from __future__ import annotations

from typing import Any

from conformance.checks.base import Fail, Skip, check
from conformance.checks.context import Context
from conformance.qapi.model import BuiltinType, EnumType, ObjectType
from conformance.session import Message

#: Commands with a mandatory argument that stay harmless even if a broken
#: server ran them anyway, with that argument and a value of the wrong type.
HARMLESS_WITH_MANDATORY: dict[str, tuple[str, Any]] = {
    "qom-list": ("path", 1),
    "qom-list-properties": ("typename", 1),
    "query-cpu-model-expansion": ("type", 1),
    "job-pause": ("id", 1),
    "block-job-pause": ("device", 1),
    "guest-sync": ("id", "not-a-number"),
    "guest-file-close": ("handle", "not-a-number"),
}

_WRONG_FOR_JSON_TYPE: dict[str, Any] = {
    "string": 1,
    "int": "x",
    "number": "x",
    "boolean": "x",
    "null": 1,
    "object": 1,
    "array": 1,
}


def _expect_generic(msg: Message, what: str) -> None:
    if msg.error_class != "GenericError":
        raise Fail(
            f"{what} was not rejected with GenericError (Q33)",
            expected='{"error": {"class": "GenericError", ...}}',
            seen=msg.brief(),
        )


def _mandatory(ctx: Context) -> tuple[str, str, Any]:
    """A harmless command, one of its mandatory members, and a wrongly typed value."""
    offered = ctx.commands()
    for name, (member, wrong) in HARMLESS_WITH_MANDATORY.items():
        if name in offered:
            return name, member, wrong
    schema = ctx.schema()
    if schema is not None:
        for cmd in sorted(schema.commands.values(), key=lambda c: c.name):
            if not cmd.name.startswith("query-") or cmd.arg_type is None or not cmd.gen:
                continue
            args = schema.object_type(cmd.arg_type)
            assert args is not None
            for m in args.members:
                t = schema.type(m.type)
                if m.optional:
                    continue
                if isinstance(t, EnumType):
                    return cmd.name, m.name, 1
                if isinstance(t, BuiltinType) and t.json_type in _WRONG_FOR_JSON_TYPE:
                    return cmd.name, m.name, _WRONG_FOR_JSON_TYPE[t.json_type]
                if isinstance(t, ObjectType):
                    return cmd.name, m.name, 1
    raise Skip("no harmless command with a mandatory argument to test")


@check("arguments.missing", "Q33", "a missing mandatory argument is rejected")
def missing(ctx: Context) -> str:
    """Send a harmless command without one of its mandatory arguments: it must be refused
    with GenericError (Q33).  Raises :class:`Fail` with the reply when it is not, and
    :class:`Skip` when the target offers no harmless command with a mandatory argument."""
    name, member, _ = _mandatory(ctx)
    _expect_generic(ctx.call(ctx.shared(), name, {}), f"{name} without its '{member}'")
    return f"{name} without '{member}' rejected"


@check("arguments.unexpected", "Q33", "an unknown argument is rejected")
def unexpected(ctx: Context) -> str:
    """Send the probe command with an argument it does not take: it must be refused with
    GenericError (Q33).  Raises :class:`Fail` with the reply when it is not."""
    _expect_generic(
        ctx.call(ctx.shared(), ctx.probe_command, {"qc-unexpected": 1}),
        f"{ctx.probe_command} with an unknown argument",
    )
    return f"{ctx.probe_command} with 'qc-unexpected' rejected"


@check("arguments.wrong-type", "Q33", "an argument of the wrong JSON type is rejected")
def wrong_type(ctx: Context) -> str:
    """Send a harmless command with a mandatory argument of the wrong JSON type: it must be
    refused with GenericError (Q33).  Raises :class:`Fail` with the reply when it is not,
    and :class:`Skip` when the target offers no harmless command with a mandatory argument."""
    name, member, wrong = _mandatory(ctx)
    _expect_generic(
        ctx.call(ctx.shared(), name, {member: wrong}), f"{name} with '{member}' of the wrong type"
    )
    return f"{name} with '{member}': {wrong!r} rejected"


@check(
    "arguments.no-side-effect",
    "Q34",
    "a command with bad arguments is rejected before it changes anything",
)
def no_side_effect(ctx: Context) -> str:
    """Send ``stop`` with an unknown argument between two ``query-status`` calls: it must be
    refused with GenericError and leave the run state as it was (Q34).  Raises
    :class:`Fail` with the replies when it is not, and :class:`Skip` when the target lacks
    ``stop`` or ``query-status`` or reports no state to compare."""
    ctx.require_command("stop")
    ctx.require_command("query-status")
    session = ctx.shared()
    before = ctx.call(session, "query-status")
    if not before.ok or not isinstance(before.obj.get("return"), dict):
        raise Skip(f"query-status gave no state to compare: {before.brief()}")
    refused = ctx.call(session, "stop", {"qc-unexpected": 1})
    after = ctx.call(session, "query-status")
    changed = after.ok and after.obj.get("return") != before.obj["return"]
    if changed and "cont" in ctx.commands():
        ctx.call(session, "cont")  # put the target back as we found it
    _expect_generic(refused, "stop with an unknown argument")
    if not after.ok or after.obj.get("return") != before.obj["return"]:
        raise Fail(
            "a rejected command changed the server's state (Q34)",
            expected=f"query-status unchanged: {before.brief()}",
            seen=after.brief(),
        )
    return "stop with a bad argument was refused and left query-status unchanged"
