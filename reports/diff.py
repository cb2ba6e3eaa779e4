"""Compatibility diff between two schemas: what changed for a client, and does it break.

Introspection masks type names (they are numbers, assigned per build), so
nothing here matches types by name.  The walk starts from what *is* ABI, the
command and event names, and pairs types structurally: arguments with
arguments, a member with the member of the same name, a union branch with
the branch of the same case, an alternate branch with the branch of the same
JSON kind, an array element with the element.  Every change is judged in the
direction the walk reached it from (send for command arguments, receive for
returns and event data; a type used both ways is walked, and judged, once per
direction), by the rules in :mod:`reports.rules`.

The engine is pure: two :class:`~conformance.qapi.model.Schema` in, a
:class:`DiffReport` out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    Command,
    EnumType,
    EnumValue,
    Event,
    Member,
    ObjectType,
    Schema,
    TypeEntity,
)
from reports.rules import CATEGORIES, RULES, Category, Direction


@dataclass(frozen=True)
class Change:
    """One difference a client may notice, where it is and what it means."""

    path: str
    category: Category
    direction: Direction
    rule: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """The change as JSON, with the text of the rule it cites."""
        return {
            "path": self.path,
            "class": self.category,
            "direction": self.direction,
            "rule": self.rule,
            "citation": RULES[self.rule].cite(),
            "reason": self.reason,
        }


@dataclass
class DiffReport:
    """Every change from schema ``old`` to schema ``new`` (each named by its source)."""

    old: str
    new: str
    changes: list[Change] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many changes fall in each category; every category, in report order."""
        tally = Counter(c.category for c in self.changes)
        return {cat: tally.get(cat, 0) for cat in CATEGORIES}

    def of(self, category: Category) -> list[Change]:
        """The changes in ``category``, in the report's (path) order."""
        return [c for c in self.changes if c.category == category]

    @property
    def breaking(self) -> list[Change]:
        """The changes that can make an existing client fail."""
        return self.of("breaking")

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON: both sources, the counts and every change."""
        return {
            "old": self.old,
            "new": self.new,
            "counts": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
        }


def diff(old: Schema, new: Schema) -> DiffReport:
    """Every client-visible change from ``old`` to ``new``, sorted by path."""
    differ = _Differ(old, new)
    differ.run()
    changes = sorted(differ.changes, key=lambda c: (c.path, c.rule))
    return DiffReport(old.source or "old", new.source or "new", changes)


_EMPTY = ObjectType("{}")


def _is_unstable(name: str, features: tuple[str, ...]) -> bool:
    """Q36: the ``x-`` prefix was the convention before the ``unstable`` feature."""
    return "unstable" in features or name.startswith("x-")


def _json_kind(t: TypeEntity) -> str:
    """The JSON kind an alternate dispatches on (int and number share one)."""
    if isinstance(t, BuiltinType):
        return "number" if t.json_type == "int" else str(t.json_type)
    if isinstance(t, EnumType):
        return "string"
    if isinstance(t, ObjectType):
        return "object"
    if isinstance(t, ArrayType):
        return "array"
    return "alternate"


@dataclass(frozen=True)
class _Ctx:
    """What the walk knows about where it is."""

    direction: Direction
    #: Inside something unstable: breaking changes there are reported as such.
    unstable: bool = False


class _Differ:
    def __init__(self, old: Schema, new: Schema) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []
        # Integer widths exist only in source schemas (§3.3).
        self.ranges = old.origin != "introspection" and new.origin != "introspection"
        self.visited: set[tuple[str, str, str]] = set()

    # -- output -----------------------------------------------------------

    def emit(self, path: str, category: Category, ctx: _Ctx, rule: str, reason: str) -> None:
        if ctx.unstable and category == "breaking":
            category, reason = "unstable", f"{reason} (inside something unstable)"
        self.changes.append(Change(path, category, ctx.direction, rule, reason))

    def removal(
        self, path: str, what: str, features: tuple[str, ...], name: str, ctx: _Ctx, rule: str
    ) -> None:
        """Something the client could use is gone: breaking unless policy allows it."""
        if "deprecated" in features:
            self.emit(
                path, "deprecated-removal", ctx, "policy.deprecated", f"deprecated {what} removed"
            )
        elif _is_unstable(name, features):
            self.emit(path, "unstable", ctx, "policy.unstable", f"unstable {what} removed")
        else:
            self.emit(path, "breaking", ctx, rule, f"{what} removed")

    def features(
        self, path: str, what: str, old: tuple[str, ...], new: tuple[str, ...], ctx: _Ctx
    ) -> None:
        for feat in ("deprecated", "unstable"):
            if feat in new and feat not in old:
                self.emit(path, "compatible", ctx, "both.feature", f"{what} is now {feat}")
            elif feat in old and feat not in new:
                self.emit(path, "compatible", ctx, "both.feature", f"{what} is no longer {feat}")

    # -- roots ------------------------------------------------------------

    def run(self) -> None:
        old, new = self.old, self.new
        for name in sorted(old.commands.keys() | new.commands.keys()):
            oc, nc = old.commands.get(name), new.commands.get(name)
            if oc is None:
                self.emit(name, "compatible", _Ctx("send"), "send.add", "command added")
            elif nc is None:
                self.removal(name, "command", oc.features, name, _Ctx("send"), "send.remove")
            else:
                self.command(name, oc, nc)
        for name in sorted(old.events.keys() | new.events.keys()):
            oe, ne = old.events.get(name), new.events.get(name)
            if oe is None:
                self.emit(name, "compatible", _Ctx("receive"), "receive.add", "event added")
            elif ne is None:
                self.removal(
                    name, "event", oe.features, name, _Ctx("receive"), "receive.remove-event"
                )
            else:
                self.event(name, oe, ne)

    def command(self, name: str, oc: Command, nc: Command) -> None:
        unstable = _is_unstable(name, oc.features)
        send, receive = _Ctx("send", unstable), _Ctx("receive", unstable)
        self.features(name, "command", oc.features, nc.features, send)
        if oc.allow_oob and not nc.allow_oob:
            self.emit(name, "breaking", send, "command.oob", "command no longer allows exec-oob")
        elif nc.allow_oob and not oc.allow_oob:
            self.emit(name, "compatible", send, "send.add", "command now allows exec-oob")
        if oc.success_response != nc.success_response:
            self.emit(
                name,
                "breaking",
                send,
                "command.success-response",
                "command "
                + ("no longer replies" if oc.success_response else "now replies")
                + " on success",
            )
        if not (oc.gen and nc.gen):
            # gen: false marshals by hand; its argument type is not the contract.
            pass
        else:
            self.root_pair(oc.arg_type, nc.arg_type, f"{name}.arguments", send)
        self.root_pair(oc.ret_type, nc.ret_type, f"{name}.returns", receive)

    def event(self, name: str, oe: Event, ne: Event) -> None:
        ctx = _Ctx("receive", _is_unstable(name, oe.features))
        self.features(name, "event", oe.features, ne.features, ctx)
        self.root_pair(oe.arg_type, ne.arg_type, f"{name}.data", ctx)

    def root_pair(self, old: str | None, new: str | None, path: str, ctx: _Ctx) -> None:
        # Recursion guard per root, so every command reports what affects it.
        self.visited = set()
        self.pair(old, new, path, ctx)

    # -- types ------------------------------------------------------------

    def lookup(self, schema: Schema, name: str | None) -> TypeEntity:
        return _EMPTY if name is None else schema.type(name)

    def pair(self, old_name: str | None, new_name: str | None, path: str, ctx: _Ctx) -> None:
        key = (old_name or "{}", new_name or "{}", ctx.direction)
        if key in self.visited:
            return
        self.visited.add(key)
        o, n = self.lookup(self.old, old_name), self.lookup(self.new, new_name)
        if isinstance(o, ObjectType) and isinstance(n, ObjectType):
            self.objects(o, n, path, ctx)
        elif isinstance(o, EnumType) and isinstance(n, EnumType):
            self.enums(o, n, path, ctx)
        elif isinstance(o, ArrayType) and isinstance(n, ArrayType):
            self.pair(o.element_type, n.element_type, f"{path}[]", ctx)
        elif isinstance(o, AlternateType) and isinstance(n, AlternateType):
            self.alternates(o, n, path, ctx)
        elif isinstance(o, BuiltinType) and isinstance(n, BuiltinType):
            self.builtins(o, n, path, ctx)
        elif isinstance(n, AlternateType):
            self.into_alternate(o, old_name, n, path, ctx)
        elif isinstance(o, AlternateType):
            self.out_of_alternate(o, n, new_name, path, ctx)
        else:
            self.kind_change(o, n, path, ctx)

    def describe(self, t: TypeEntity) -> str:
        if isinstance(t, BuiltinType):
            return t.name if not t.name.isdigit() else str(t.json_type)
        if isinstance(t, ArrayType):
            return f"array of {self.describe(self.lookup_any(t.element_type))}"
        if isinstance(t, ObjectType):
            return "union" if t.is_union else "object"
        return t.meta

    def lookup_any(self, name: str) -> TypeEntity:
        return self.old.types.get(name) or self.new.type(name)

    def kind_change(self, o: TypeEntity, n: TypeEntity, path: str, ctx: _Ctx) -> None:
        was, now = self.describe(o), self.describe(n)
        send = ctx.direction == "send"
        if isinstance(o, BuiltinType) and o.json_type == "string" and isinstance(n, EnumType):
            if send:
                self.emit(
                    path,
                    "breaking",
                    ctx,
                    "send.narrow",
                    f"str became an enum: only {len(n.values)} values are accepted now",
                )
            else:
                self.emit(
                    path,
                    "introspection-only",
                    ctx,
                    "verdict.receive-str-to-enum",
                    "str became an enum; the wire still carries a string",
                )
        elif isinstance(o, EnumType) and isinstance(n, BuiltinType) and n.json_type == "string":
            if send:
                self.emit(
                    path,
                    "compatible",
                    ctx,
                    "send.widen",
                    "enum became str: any string is accepted now",
                )
            else:
                self.emit(
                    path,
                    "compatible",
                    ctx,
                    "verdict.receive-enum-value",
                    "enum became str: values outside the old enum may be received",
                )
        elif isinstance(n, BuiltinType) and n.json_type == "value":
            if send:
                self.emit(
                    path,
                    "compatible",
                    ctx,
                    "send.widen",
                    f"{was} became any: any value is accepted now",
                )
            else:
                self.emit(
                    path,
                    "introspection-only",
                    ctx,
                    "receive.narrow",
                    f"{was} became any: the schema no longer describes the value",
                )
        elif isinstance(o, BuiltinType) and o.json_type == "value":
            if send:
                self.emit(
                    path,
                    "breaking",
                    ctx,
                    "send.narrow",
                    f"any became {now}: other values are rejected now",
                )
            else:
                self.emit(path, "compatible", ctx, "receive.narrow", f"any became {now}")
        else:
            self.emit(
                path, "breaking", ctx, "both.type-change", f"type changed from {was} to {now}"
            )

    def builtins(self, o: BuiltinType, n: BuiltinType, path: str, ctx: _Ctx) -> None:
        if o.json_type == n.json_type:
            if self.ranges and o.json_type == "int":
                self.int_range(o, n, path, ctx)
            return
        send = ctx.direction == "send"
        if (o.json_type, n.json_type) == ("int", "number"):
            if send:
                self.emit(path, "compatible", ctx, "send.widen", "int became number")
            else:
                self.emit(
                    path,
                    "breaking",
                    ctx,
                    "receive.new-json-kind",
                    "int became number: fractional values may be received",
                )
        elif (o.json_type, n.json_type) == ("number", "int"):
            if send:
                self.emit(
                    path,
                    "breaking",
                    ctx,
                    "send.narrow",
                    "number became int: fractional values are rejected now",
                )
            else:
                self.emit(path, "compatible", ctx, "receive.narrow", "number became int")
        else:
            self.kind_change(o, n, path, ctx)

    def int_range(self, o: BuiltinType, n: BuiltinType, path: str, ctx: _Ctx) -> None:
        if (o.minimum, o.maximum) == (n.minimum, n.maximum) or None in (
            o.minimum,
            o.maximum,
            n.minimum,
            n.maximum,
        ):
            return
        assert o.minimum is not None and o.maximum is not None
        assert n.minimum is not None and n.maximum is not None
        narrower = n.minimum > o.minimum or n.maximum < o.maximum
        if ctx.direction == "send" and narrower:
            self.emit(
                path,
                "breaking",
                ctx,
                "send.narrow",
                f"integer type narrowed from {o.name} to {n.name}",
            )
        else:
            self.emit(
                path,
                "compatible",
                ctx,
                "send.widen" if ctx.direction == "send" else "receive.narrow",
                f"integer type changed from {o.name} to {n.name}",
            )

    # -- enums ------------------------------------------------------------

    def enums(self, o: EnumType, n: EnumType, path: str, ctx: _Ctx) -> None:
        old_values = {v.name: v for v in o.values}
        new_values = {v.name: v for v in n.values}
        for name, ov in old_values.items():
            vpath = f"{path}:{name}"
            nv = new_values.get(name)
            if nv is not None:
                self.features(vpath, "enum value", ov.features, nv.features, ctx)
            elif ctx.direction == "send":
                self.removal(vpath, "enum value", ov.features, name, ctx, "send.remove")
            else:
                self.emit(
                    vpath,
                    "compatible",
                    ctx,
                    "receive.remove-unreachable",
                    "enum value removed: it can no longer be received",
                )
        for name in new_values.keys() - old_values.keys():
            self.enum_added(f"{path}:{name}", new_values[name], ctx)

    def enum_added(self, path: str, value: EnumValue, ctx: _Ctx) -> None:
        if ctx.direction == "send":
            self.emit(path, "compatible", ctx, "send.add", "enum value added")
        else:
            self.emit(
                path,
                "compatible",
                ctx,
                "verdict.receive-enum-value",
                "enum value added: clients may receive it",
            )

    # -- alternates -------------------------------------------------------

    def branches(self, schema: Schema, t: AlternateType) -> dict[str, str]:
        return {_json_kind(schema.type(b.type)): b.type for b in t.branches}

    def alternates(self, o: AlternateType, n: AlternateType, path: str, ctx: _Ctx) -> None:
        ob, nb = self.branches(self.old, o), self.branches(self.new, n)
        for kind in sorted(ob.keys() | nb.keys()):
            bpath = f"{path}|{kind}"
            if kind in ob and kind in nb:
                self.pair(ob[kind], nb[kind], bpath, ctx)
            elif kind in ob:
                self.branch_gone(bpath, kind, ctx)
            else:
                self.branch_added(bpath, kind, ctx)

    def branch_gone(self, path: str, kind: str, ctx: _Ctx) -> None:
        if ctx.direction == "send":
            self.emit(path, "breaking", ctx, "send.remove", f"alternate branch ({kind}) removed")
        else:
            self.emit(
                path,
                "compatible",
                ctx,
                "receive.narrow",
                f"alternate branch ({kind}) removed: it can no longer be received",
            )

    def branch_added(self, path: str, kind: str, ctx: _Ctx) -> None:
        if ctx.direction == "send":
            self.emit(path, "compatible", ctx, "send.add", f"alternate branch ({kind}) added")
        else:
            self.emit(
                path,
                "breaking",
                ctx,
                "receive.new-json-kind",
                f"alternate branch ({kind}) added: clients may receive a {kind}",
            )

    def into_alternate(
        self, o: TypeEntity, old_name: str | None, n: AlternateType, path: str, ctx: _Ctx
    ) -> None:
        """§3.3/§3.4: a type becoming an alternate that includes it."""
        kind = _json_kind(o)
        nb = self.branches(self.new, n)
        if kind not in nb:
            self.kind_change(o, n, path, ctx)
            return
        others = sorted(k for k in nb if k != kind)
        if ctx.direction == "send":
            self.emit(
                path,
                "introspection-only",
                ctx,
                "send.alternate-of",
                f"{self.describe(o)} became an alternate that includes it "
                f"(also accepts {', '.join(others)})",
            )
        else:
            self.emit(
                path,
                "breaking",
                ctx,
                "receive.new-json-kind",
                f"{self.describe(o)} became an alternate: clients may receive {', '.join(others)}",
            )
        self.pair(old_name, nb[kind], f"{path}|{kind}", ctx)

    def out_of_alternate(
        self, o: AlternateType, n: TypeEntity, new_name: str | None, path: str, ctx: _Ctx
    ) -> None:
        kind = _json_kind(n)
        ob = self.branches(self.old, o)
        if kind not in ob:
            self.kind_change(o, n, path, ctx)
            return
        for other in sorted(k for k in ob if k != kind):
            self.branch_gone(f"{path}|{other}", other, ctx)
        self.pair(ob[kind], new_name, f"{path}|{kind}", ctx)

    # -- objects ----------------------------------------------------------

    def variant_members(self, schema: Schema, t: ObjectType) -> dict[str, dict[str, Member]]:
        """case -> members that case adds (a case without a variant adds none)."""
        out: dict[str, dict[str, Member]] = {}
        for v in t.variants:
            vt = schema.type(v.type)
            out[v.case] = {m.name: m for m in vt.members} if isinstance(vt, ObjectType) else {}
        return out

    def objects(self, o: ObjectType, n: ObjectType, path: str, ctx: _Ctx) -> None:
        if o.open or n.open:
            return  # gen: false: members beyond the schema are accepted, nothing to judge
        om = {m.name: m for m in o.members}
        nm = {m.name: m for m in n.members}
        ov = self.variant_members(self.old, o)
        nv = self.variant_members(self.new, n)
        if o.tag is not None and n.tag is not None and o.tag != n.tag:
            self.emit(
                path,
                "breaking",
                ctx,
                "both.type-change",
                f"union discriminator changed from {o.tag!r} to {n.tag!r}",
            )
        # Members that moved between the common part and the variants (§3.3 reshape).
        old_in_variants = {name for members in ov.values() for name in members}
        new_in_variants = {name for members in nv.values() for name in members}
        moved_down = {name for name in om.keys() - nm.keys() if name in new_in_variants}
        moved_up = {name for name in nm.keys() - om.keys() if name in old_in_variants}
        self.members(om, nm, path, ctx, skip=moved_down | moved_up)
        for name in sorted(moved_down):
            self.reshape(om[name], nv, path, ctx, down=True)
        for name in sorted(moved_up):
            self.reshape(nm[name], ov, path, ctx, down=False)
        tag = n.tag or o.tag or "?"
        old_cases = ov.keys() | self.tag_values(self.old, o)
        new_cases = nv.keys() | self.tag_values(self.new, n)
        for case in sorted(ov.keys() | nv.keys()):
            vpath = f"{path}[{tag}={case}]"
            # A struct that became a union (or back) had every case already: its
            # branch members are members added (or removed) for that tag value.
            if (case in old_cases and case in new_cases) or o.tag is None or n.tag is None:
                self.members(
                    ov.get(case, {}), nv.get(case, {}), vpath, ctx, skip=moved_down | moved_up
                )
            # Otherwise the tag's enum value came or went, reported at the tag.

    def tag_values(self, schema: Schema, t: ObjectType) -> set[str]:
        if t.tag is None:
            return set()
        member = t.member(t.tag)
        tag_type = schema.types.get(member.type) if member else None
        return set(tag_type.names) if isinstance(tag_type, EnumType) else set()

    def reshape(
        self,
        member: Member,
        other_side: dict[str, dict[str, Member]],
        path: str,
        ctx: _Ctx,
        *,
        down: bool,
    ) -> None:
        mpath = f"{path}.{member.name}"
        cases = sorted(c for c, ms in other_side.items() if member.name in ms)
        where = ", ".join(cases)
        if down:
            if member.optional or ctx.direction == "receive":
                self.emit(
                    mpath,
                    "introspection-only",
                    ctx,
                    "both.reshape",
                    f"optional member moved into the variants ({where})",
                )
            else:
                self.removal(
                    mpath,
                    "mandatory member (now only in some variants)",
                    member.features,
                    member.name,
                    ctx,
                    "send.remove" if ctx.direction == "send" else "receive.remove",
                )
            counterpart = other_side[cases[0]][member.name]
            self.pair(member.type, counterpart.type, mpath, ctx)
        else:
            counterpart = other_side[cases[0]][member.name]
            if ctx.direction == "send" and not member.optional:
                self.emit(
                    mpath,
                    "breaking",
                    ctx,
                    "send.add-mandatory",
                    f"variant member ({where}) became a mandatory common member",
                )
            else:
                self.emit(
                    mpath,
                    "introspection-only",
                    ctx,
                    "both.reshape",
                    f"variant member ({where}) became a common member",
                )
            self.pair(counterpart.type, member.type, mpath, ctx)

    def members(
        self, om: dict[str, Member], nm: dict[str, Member], path: str, ctx: _Ctx, *, skip: set[str]
    ) -> None:
        send = ctx.direction == "send"
        for name, old in om.items():
            if name in skip:
                continue
            mpath = f"{path}.{name}"
            new = nm.get(name)
            what = "argument" if send else "member"
            if new is None:
                self.removal(
                    mpath,
                    ("optional " if old.optional else "") + what,
                    old.features,
                    name,
                    ctx,
                    "send.remove" if send else "receive.remove",
                )
                continue
            sub = _Ctx(ctx.direction, ctx.unstable or _is_unstable(name, old.features))
            self.features(mpath, what, old.features, new.features, sub)
            if old.optional and not new.optional:
                if send:
                    self.emit(
                        mpath,
                        "breaking",
                        sub,
                        "send.make-mandatory",
                        "optional argument became mandatory",
                    )
                else:
                    self.emit(
                        mpath,
                        "compatible",
                        sub,
                        "receive.add",
                        "optional member is now always present",
                    )
            elif new.optional and not old.optional:
                if send:
                    self.emit(
                        mpath,
                        "compatible",
                        sub,
                        "send.make-optional",
                        "mandatory argument became optional",
                    )
                else:
                    self.emit(
                        mpath,
                        "breaking",
                        sub,
                        "receive.make-optional",
                        "mandatory member became optional: it may be absent now",
                    )
            self.pair(old.type, new.type, mpath, sub)
        for name in sorted(nm.keys() - om.keys() - skip):
            new = nm[name]
            mpath = f"{path}.{name}"
            if not send:
                self.emit(mpath, "compatible", ctx, "receive.add", "member added")
            elif new.optional:
                self.emit(mpath, "compatible", ctx, "send.add", "optional argument added")
            else:
                self.emit(mpath, "breaking", ctx, "send.add-mandatory", "mandatory argument added")
