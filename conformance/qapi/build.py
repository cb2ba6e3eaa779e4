"""Check raw QAPI expressions and build the model from them.

Two passes, as QEMU's own frontend does: the first defines every entity (so
forward references work) and records what each one refers to; the second
resolves references, flattens bases and checks what can only be checked once
everything is known (discriminators, branch kinds, clashes).  Every error
names the expression's ``file:line``.

Every form QEMU ever accepted is taken: ``type`` (before 2.4) as ``struct``;
simple unions (no discriminator, before 6.2) lowered to flat unions with an
implicit ``...Kind`` enum and ``q_obj_...-wrapper`` branches, as QEMU itself
lowered them for introspection; the 1.7-era anonymous union
(``'discriminator': {}``) as an alternate; nested anonymous structs and
``'yes'``/``'no'`` flags of 1.x.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.protocol.messages import DOWNSTREAM_PREFIX
from conformance.qapi.builtins import builtin_types
from conformance.qapi.errors import QAPIError
from conformance.qapi.model import (
    AlternateBranch,
    AlternateType,
    ArrayType,
    BuiltinType,
    Command,
    EnumType,
    EnumValue,
    Event,
    IfCond,
    Member,
    ObjectType,
    Schema,
    SchemaOrigin,
    SourceInfo,
    TypeEntity,
    Variant,
)
from conformance.qapi.source import Expr

_META_KEYS = ("enum", "struct", "type", "union", "alternate", "command", "event")
#: Keys every definition may have, and the keys each meta-type adds (its
#: name's key included); shared with :mod:`conformance.qapi.check`.
COMMON_KEYS = {"if", "features"}
ALLOWED_KEYS: dict[str, set[str]] = {
    "enum": {"enum", "data", "prefix"},
    "struct": {"struct", "data", "base"},
    "type": {"type", "data", "base"},
    "union": {"union", "data", "base", "discriminator"},
    "alternate": {"alternate", "data"},
    "command": {
        "command",
        "data",
        "returns",
        "boxed",
        "gen",
        "success-response",
        "allow-oob",
        "allow-preconfig",
        "coroutine",
    },
    "event": {"event", "data", "boxed"},
}
_NAME = re.compile(rf"^({DOWNSTREAM_PREFIX})?[A-Za-z][A-Za-z0-9_.+-]*$")
_ENUM_VALUE = re.compile(rf"^({DOWNSTREAM_PREFIX})?[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_MEMBER_KEYS = {"type", "if", "features"}
#: Old spellings of ``any`` and the releases that used them; each is read
#: as ``any`` and noted in ``Schema.tolerated``.
_OLD_ANY = {
    "visitor": "'visitor' read as 'any' (its name before QEMU 2.4)",
    "**": "'**' read as 'any' (its name before QEMU 2.5)",
    "dict": "'dict' read as 'any' (object-add's 'props' before QEMU 2.4, never checked then)",
}


def c_name(name: str) -> str:
    """``name`` as an identifier in generated C: what two names must not share."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass
class _Pending:
    """What pass two needs about an object type that pass one defined."""

    own: list[Member]
    base: str | None
    info: SourceInfo
    variants_by_case: dict[str, Variant] = field(default_factory=dict)
    discriminator: str | None = None
    union: bool = False
    #: Tag enum values that need no branch: simple unions define them all.
    simple: bool = False


class _Builder:
    def __init__(self, origin: SchemaOrigin, lenient: bool = False) -> None:
        self.schema = Schema(origin=origin)
        self.lenient = lenient
        for t in builtin_types():
            self.schema.types[t.name] = t
        self.pending: dict[str, _Pending] = {}
        #: (info, what, type name) of every reference, checked in pass two.
        self.refs: list[tuple[SourceInfo, str, str]] = []
        self.defined_at: dict[str, SourceInfo] = {}

    # -- pass one ------------------------------------------------------------

    def define(self, expr: Expr) -> None:
        data, info = expr.data, expr.info
        kind = next((k for k in _META_KEYS if k in data), None)
        if kind is None:
            raise QAPIError(
                info, f"expression is missing a metatype (one of {', '.join(_META_KEYS)})"
            )
        name = data[kind]
        if not isinstance(name, str):
            raise QAPIError(info, f"'{kind}' must name the definition with a string")
        unknown = set(data) - ALLOWED_KEYS[kind] - COMMON_KEYS
        if unknown:
            raise QAPIError(
                info,
                f"{kind} '{name}' has unknown key {', '.join(repr(k) for k in sorted(unknown))}",
            )
        if not _NAME.match(name):
            raise QAPIError(info, f"{kind} name {name!r} is not a valid QAPI name")
        common = {
            "info": info,
            "doc": expr.doc,
            "features": self._features(data.get("features"), info),
            "ifcond": self._ifcond(data.get("if"), info),
        }
        if kind == "enum":
            self._define_enum(name, data, common)
        elif kind in ("struct", "type"):
            self._define_struct(name, data, common)
        elif kind == "union":
            if data.get("discriminator") == {}:
                self._define_alternate(name, data, common)
            else:
                self._define_union(name, data, common)
        elif kind == "alternate":
            self._define_alternate(name, data, common)
        elif kind == "command":
            self._define_command(name, data, common)
        else:
            self._define_event(name, data, common)

    def _claim(self, name: str, info: SourceInfo) -> None:
        if name in self.defined_at or name in self.schema.types:
            where = self.defined_at.get(name)
            raise QAPIError(
                info,
                f"'{name}' is already defined" + (f" at {where}" if where else " as a builtin"),
            )
        self.defined_at[name] = info

    def _add_type(self, t: TypeEntity, info: SourceInfo) -> None:
        self._claim(t.name, info)
        self.schema.types[t.name] = t

    def _features(self, value: Any, info: SourceInfo) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise QAPIError(info, "'features' must be a list")
        names: list[str] = []
        for f in value:
            if isinstance(f, dict) and isinstance(f.get("name"), str):
                names.append(f["name"])
            elif isinstance(f, str):
                names.append(f)
            else:
                raise QAPIError(info, f"feature {f!r} must be a string or {{'name': ...}}")
        return tuple(names)

    def _ifcond(self, value: Any, info: SourceInfo) -> IfCond | None:
        if value is None:
            return None
        if isinstance(value, str):
            m = re.fullmatch(r"\s*defined\(\s*([A-Za-z0-9_]+)\s*\)\s*", value)
            if not value.strip():
                raise QAPIError(info, "'if' condition must not be empty")
            return IfCond("name", name=m.group(1) if m else value.strip())
        if isinstance(value, list):  # the 3.x list form means "all of"
            if not value:
                raise QAPIError(info, "'if' condition [] is useless")
            return IfCond("all", args=tuple(self._cond_arg(v, info) for v in value))
        if isinstance(value, dict) and len(value) == 1:
            op, arg = next(iter(value.items()))
            if op == "not":
                return IfCond("not", args=(self._cond_arg(arg, info),))
            if op in ("all", "any") and isinstance(arg, list) and arg:
                return IfCond(op, args=tuple(self._cond_arg(v, info) for v in arg))
        raise QAPIError(
            info,
            f"'if' condition {value!r} is not a name, "
            "nor {'all'|'any': [...]} nor {'not': ...}",
        )

    def _cond_arg(self, value: Any, info: SourceInfo) -> IfCond:
        cond = self._ifcond(value, info)
        assert cond is not None
        return cond

    def _flag(self, data: dict[str, Any], key: str, default: bool, info: SourceInfo) -> bool:
        value: object = data.get(key, default)
        if value in ("yes", "no") and self._tolerate(
            "'yes'/'no' flags read as true/false (their spelling before QEMU 2.4)"
        ):
            return value == "yes"
        if not isinstance(value, bool):
            raise QAPIError(info, f"'{key}' must be true or false")
        return value

    def _tolerate(self, note: str) -> bool:
        """Whether what ``note`` describes is accepted here (lenient mode);
        noted once in ``Schema.tolerated`` when it is."""
        if self.lenient and note not in self.schema.tolerated:
            self.schema.tolerated.append(note)
        return self.lenient

    def _type_ref(self, value: Any, info: SourceInfo, owner: str, what: str) -> str:
        """The type name ``value`` refers to, creating arrays and nested structs."""
        if isinstance(value, str):
            name = value
            if value in _OLD_ANY and self._tolerate(_OLD_ANY[value]):
                name = "any"
            self.refs.append((info, what, name))
            return name
        if isinstance(value, list):
            if len(value) != 1 or not isinstance(value[0], str):
                raise QAPIError(info, f"{what}: an array type must be [ 'TypeName' ]")
            self.refs.append((info, what, value[0]))
            return self._array(value[0])
        if isinstance(value, dict):
            # 1.x allowed an anonymous struct in place of a type name.
            return self._implicit_object(f"q_obj_{owner}", value, info, owner)
        raise QAPIError(info, f"{what} must be a type name, [ 'TypeName' ] or an object")

    def _array(self, element: str) -> str:
        name = f"[{element}]"
        if name not in self.schema.types:
            self.schema.types[name] = ArrayType(name, element_type=element)
        return name

    def _members(self, data: Any, info: SourceInfo, owner: str) -> list[Member]:
        if not isinstance(data, dict):
            raise QAPIError(info, f"'data' of '{owner}' must be an object")
        members = []
        for key, value in data.items():
            optional = key.startswith("*")
            name = key[1:] if optional else key
            if not _NAME.match(name) and not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise QAPIError(info, f"member {name!r} of '{owner}' is not a valid name")
            features: tuple[str, ...] = ()
            ifcond = None
            what = f"member '{name}' of '{owner}'"
            if isinstance(value, dict) and "type" in value and set(value) <= _MEMBER_KEYS:
                features = self._features(value.get("features"), info)
                ifcond = self._ifcond(value.get("if"), info)
                value = value["type"]
            type_name = self._type_ref(value, info, f"{owner}-{name}", what)
            members.append(Member(name, type_name, optional, features, ifcond, info))
        return members

    def _implicit_object(self, name: str, data: Any, info: SourceInfo, owner: str) -> str:
        members = self._members(data, info, owner)
        self._add_type(ObjectType(name, members=members, implicit=True, info=info), info)
        self.pending[name] = _Pending(members, None, info)
        return name

    def _define_enum(self, name: str, data: dict[str, Any], common: dict[str, Any]) -> None:
        info = common["info"]
        values = data.get("data")
        if not isinstance(values, list):
            raise QAPIError(info, f"enum '{name}': 'data' must be a list")
        out: list[EnumValue] = []
        seen: set[str] = set()
        for v in values:
            if isinstance(v, dict) and isinstance(v.get("name"), str):
                ev = EnumValue(
                    v["name"],
                    self._features(v.get("features"), info),
                    self._ifcond(v.get("if"), info),
                )
            elif isinstance(v, str):
                ev = EnumValue(v)
            else:
                raise QAPIError(
                    info, f"enum '{name}': value {v!r} must be a string or {{'name': ...}}"
                )
            if not _ENUM_VALUE.match(ev.name):
                raise QAPIError(info, f"enum '{name}': {ev.name!r} is not a valid value name")
            if c_name(ev.name).lower() in seen:
                raise QAPIError(
                    info, f"enum '{name}': value '{ev.name}' clashes with another value"
                )
            seen.add(c_name(ev.name).lower())
            out.append(ev)
        prefix = data.get("prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise QAPIError(info, f"enum '{name}': 'prefix' must be a string")
        self._add_type(EnumType(name, values=out, prefix=prefix, **common), info)

    def _define_struct(self, name: str, data: dict[str, Any], common: dict[str, Any]) -> None:
        info = common["info"]
        base = data.get("base")
        if base is not None and not isinstance(base, str):
            raise QAPIError(info, f"struct '{name}': 'base' must name a struct")
        members = self._members(data.get("data", {}), info, name)
        if base is not None:
            self.refs.append((info, f"base of '{name}'", base))
        self._add_type(ObjectType(name, members=members, base=base, **common), info)
        self.pending[name] = _Pending(members, base, info)

    def _define_union(self, name: str, data: dict[str, Any], common: dict[str, Any]) -> None:
        info = common["info"]
        base = data.get("base")
        if isinstance(base, dict):
            base = self._implicit_object(f"q_obj_{name}-base", base, info, name)
        elif base is not None and not isinstance(base, str):
            raise QAPIError(info, f"union '{name}': 'base' must be a struct name or members")
        elif base is not None:
            self.refs.append((info, f"base of '{name}'", base))
        branches = data.get("data")
        disc = data.get("discriminator")
        # A flat union may leave every branch implicit (empty): its tag
        # enum's values are the branches.
        if not isinstance(branches, dict) or (not branches and disc is None):
            raise QAPIError(info, f"union '{name}': 'data' must be a non-empty object")
        pending = _Pending([], base, info, union=True)
        if disc is None:
            # A simple union: wire form {'type': CASE, 'data': VALUE}.
            kind = f"{name}Kind"
            self._add_type(
                EnumType(kind, values=[EnumValue(c) for c in branches], implicit=True, info=info),
                info,
            )
            pending.own = [Member("type", kind, info=info)]
            pending.discriminator = "type"
            pending.simple = True
            for case, ref in branches.items():
                ifcond = None
                if isinstance(ref, dict) and "type" in ref and set(ref) <= _MEMBER_KEYS:
                    ifcond = self._ifcond(ref.get("if"), info)
                    ref = ref["type"]
                inner = self._type_ref(ref, info, f"{name}-{case}", f"branch '{case}' of '{name}'")
                pending.variants_by_case[case] = Variant(case, self._wrapper(inner, info), ifcond)
        else:
            if not isinstance(disc, str):
                raise QAPIError(info, f"union '{name}': 'discriminator' must be a member name")
            if base is None:
                raise QAPIError(info, f"union '{name}': a discriminator needs a 'base'")
            pending.discriminator = disc
            for case, ref in branches.items():
                ifcond = None
                if isinstance(ref, dict) and "type" in ref and set(ref) <= _MEMBER_KEYS:
                    ifcond = self._ifcond(ref.get("if"), info)
                    ref = ref["type"]
                if not isinstance(ref, str):
                    raise QAPIError(info, f"union '{name}': branch '{case}' must name a struct")
                self.refs.append((info, f"branch '{case}' of '{name}'", ref))
                pending.variants_by_case[case] = Variant(case, ref, ifcond)
        obj = ObjectType(
            name,
            base=base,
            tag=pending.discriminator,
            variants=list(pending.variants_by_case.values()),
            **common,
        )
        self._add_type(obj, info)
        self.pending[name] = pending

    def _wrapper(self, inner: str, info: SourceInfo) -> str:
        name = f"q_obj_{inner}-wrapper"
        if name not in self.schema.types:
            wrapper = ObjectType(
                name, members=[Member("data", inner, info=info)], implicit=True, info=info
            )
            self.schema.types[name] = wrapper
            self.pending[name] = _Pending(wrapper.members, None, info)
        return name

    def _define_alternate(self, name: str, data: dict[str, Any], common: dict[str, Any]) -> None:
        info = common["info"]
        branches = data.get("data")
        if not isinstance(branches, dict) or not branches:
            raise QAPIError(info, f"alternate '{name}': 'data' must be a non-empty object")
        out = []
        for bname, ref in branches.items():
            ifcond = None
            if isinstance(ref, dict) and "type" in ref and set(ref) <= _MEMBER_KEYS:
                ifcond = self._ifcond(ref.get("if"), info)
                ref = ref["type"]
            tname = self._type_ref(ref, info, f"{name}-{bname}", f"branch '{bname}' of '{name}'")
            out.append(AlternateBranch(bname, tname, ifcond))
        self._add_type(AlternateType(name, branches=out, **common), info)

    def _arg_type(self, name: str, data: dict[str, Any], info: SourceInfo) -> str | None:
        value = data.get("data")
        if value is None:
            return None
        if isinstance(value, str):
            self.refs.append((info, f"'data' of '{name}'", value))
            return value
        if isinstance(value, dict):
            return self._implicit_object(f"q_obj_{name}-arg", value, info, name) if value else None
        raise QAPIError(info, f"'data' of '{name}' must be an object or a type name")

    def _define_command(self, name: str, data: dict[str, Any], common: dict[str, Any]) -> None:
        info = common["info"]
        self._claim(name, info)
        returns = data.get("returns")
        ret = (
            None
            if returns is None
            else self._type_ref(returns, info, f"{name}-ret", f"'returns' of '{name}'")
        )
        cmd = Command(
            name,
            arg_type=self._arg_type(name, data, info),
            ret_type=ret,
            boxed=self._flag(data, "boxed", False, info),
            gen=self._flag(data, "gen", True, info),
            success_response=self._flag(data, "success-response", True, info),
            allow_oob=self._flag(data, "allow-oob", False, info),
            allow_preconfig=self._flag(data, "allow-preconfig", False, info),
            coroutine=self._flag(data, "coroutine", False, info),
            **common,
        )
        if cmd.coroutine and cmd.allow_oob:
            raise QAPIError(
                info, f"command '{name}': 'coroutine': true isn't compatible with 'allow-oob': true"
            )
        if cmd.boxed and cmd.arg_type is None:
            raise QAPIError(info, f"command '{name}': 'boxed': true requires 'data'")
        self.schema.commands[name] = cmd

    def _define_event(self, name: str, data: dict[str, Any], common: dict[str, Any]) -> None:
        info = common["info"]
        self._claim(name, info)
        ev = Event(
            name,
            arg_type=self._arg_type(name, data, info),
            boxed=self._flag(data, "boxed", False, info),
            **common,
        )
        if ev.boxed and ev.arg_type is None:
            raise QAPIError(info, f"event '{name}': 'boxed': true requires 'data'")
        self.schema.events[name] = ev

    # -- pass two ------------------------------------------------------------

    def finish(self) -> Schema:
        types = self.schema.types
        for info, what, ref in self.refs:
            if ref not in types:
                raise QAPIError(info, f"{what} uses unknown type '{ref}'")
        done: set[str] = set()
        for name in self.pending:
            self._flatten(name, done, [])
        for name, p in self.pending.items():
            if p.union:
                self._check_union(name, p)
        for t in types.values():
            if isinstance(t, AlternateType):
                self._check_alternate(t)
        for cmd in self.schema.commands.values():
            self._check_arg_type(cmd.name, cmd.arg_type, cmd.boxed, cmd.info)
            if not cmd.gen and cmd.arg_type is not None:
                obj = self.schema.object_type(cmd.arg_type)
                if obj is not None:
                    obj.open = True
        for ev in self.schema.events.values():
            self._check_arg_type(ev.name, ev.arg_type, ev.boxed, ev.info)
        return self.schema

    def _flatten(self, name: str, done: set[str], chain: list[str]) -> list[Member]:
        obj = self.schema.types[name]
        assert isinstance(obj, ObjectType)
        p = self.pending[name]
        if name in done:
            return obj.members
        if name in chain:
            raise QAPIError(
                p.info, f"object '{name}' has a cycle of bases: " + " -> ".join([*chain, name])
            )
        members: list[Member] = []
        if p.base is not None:
            base = self.schema.types[p.base]
            if not isinstance(base, ObjectType) or p.base not in self.pending:
                raise QAPIError(
                    p.info, f"'base' of '{name}' must be a struct, not {base.meta} '{p.base}'"
                )
            if base.is_union:
                raise QAPIError(
                    p.info, f"'base' of '{name}' must be a struct, not union '{p.base}'"
                )
            members = list(self._flatten(p.base, done, [*chain, name]))
        self._check_clash(name, members, p.own, p.info)
        obj.members = members + p.own
        done.add(name)
        return obj.members

    def _check_clash(
        self, owner: str, have: list[Member], new: list[Member], info: SourceInfo, where: str = ""
    ) -> None:
        seen = {c_name(m.name): m.name for m in have}
        for m in new:
            key = c_name(m.name)
            if key in seen:
                other = seen[key]
                raise QAPIError(
                    info, f"member '{m.name}'{where} of '{owner}' collides with member '{other}'"
                )
            seen[key] = m.name

    def _check_union(self, name: str, p: _Pending) -> None:
        obj = self.schema.types[name]
        assert isinstance(obj, ObjectType) and p.discriminator is not None
        tag = obj.member(p.discriminator)
        if tag is None:
            raise QAPIError(
                p.info,
                f"union '{name}': discriminator '{p.discriminator}' is not a member of 'base'",
            )
        if tag.optional:
            raise QAPIError(
                p.info,
                f"union '{name}': discriminator member "
                f"'{p.discriminator}' of 'base' must not be optional",
            )
        if tag.ifcond is not None:
            raise QAPIError(
                p.info,
                f"union '{name}': discriminator member '{p.discriminator}' must not be conditional",
            )
        enum = self.schema.types[tag.type]
        if (
            tag.type == "str"
            and p.variants_by_case
            and self._tolerate(
                "a flat union's 'str' discriminator read as an enum of its branches (QEMU 1.7)"
            )
        ):
            # QEMU 1.7 let a 'str' member discriminate a flat union; its
            # branches were the values.  The union's own copy of the member
            # gets that enum; the base keeps 'str' as written.
            enum = EnumType(
                f"{name}Kind",
                values=[EnumValue(c) for c in p.variants_by_case],
                implicit=True,
                info=p.info,
            )
            self._add_type(enum, p.info)
            obj.members = [replace(m, type=enum.name) if m is tag else m for m in obj.members]
        if not isinstance(enum, EnumType):
            raise QAPIError(
                p.info,
                f"union '{name}': discriminator member '{p.discriminator}' must be of enum type",
            )
        if not enum.values:
            raise QAPIError(p.info, f"union '{name}' has no branches: {enum.name} has no values")
        for case, variant in p.variants_by_case.items():
            if case not in enum.names:
                raise QAPIError(
                    p.info, f"union '{name}': branch '{case}' is not a value of {enum.name}"
                )
            branch = self.schema.types[variant.type]
            if not isinstance(branch, ObjectType):
                raise QAPIError(
                    p.info,
                    f"union '{name}': branch '{case}' must be an "
                    f"object type, not {branch.meta} '{variant.type}'",
                )
            self._check_clash(name, obj.members, branch.members, p.info, f" of branch '{case}'")

    def _check_alternate(self, alt: AlternateType) -> None:
        info = alt.info
        seen: dict[str, str] = {}
        for b in alt.branches:
            t = self.schema.types[b.type]
            if isinstance(t, AlternateType):
                raise QAPIError(
                    info, f"alternate '{alt.name}': branch '{b.name}' can't be an alternate"
                )
            kinds = wire_kinds(t)
            for kind in kinds:
                if kind in seen:
                    raise QAPIError(
                        info,
                        f"alternate '{alt.name}': branch '{b.name}' can't "
                        f"be distinguished from '{seen[kind]}'",
                    )
                seen[kind] = b.name

    def _check_arg_type(
        self, name: str, arg: str | None, boxed: bool, info: SourceInfo | None
    ) -> None:
        if arg is None:
            return
        t = self.schema.types[arg]
        if not isinstance(t, ObjectType):
            raise QAPIError(
                info, f"'data' of '{name}' must be an object type, not {t.meta} '{arg}'"
            )
        if t.is_union and not boxed:
            raise QAPIError(
                info, f"'data' of '{name}' can be union '{arg}' only with 'boxed': true"
            )


def wire_kinds(t: TypeEntity) -> tuple[str, ...]:
    """JSON value kinds an alternate branch claims; two branches may not share one."""
    if isinstance(t, BuiltinType):
        if t.json_type in ("int", "number"):
            return ("number",)
        if t.json_type == "value":
            return ("string", "number", "boolean", "null", "object", "array")
        return (t.json_type,)
    if isinstance(t, EnumType):
        return ("string",)
    if isinstance(t, ArrayType):
        return ("array",)
    return ("object",)


def build(exprs: list[Expr], *, origin: SchemaOrigin = "qapi", lenient: bool = False) -> Schema:
    """The checked model of ``exprs`` (already read, includes followed).

    ``lenient`` accepts what only an old QEMU's generator accepted (old names
    of ``any``, ``'yes'``/``'no'`` flags, QEMU 1.7's ``'str'`` discriminator),
    each noted once in ``Schema.tolerated``.

    Raises :class:`QAPIError`, naming ``file:line``, for the first definition that
    is malformed, clashes with another or refers to a type that does not fit.
    """
    builder = _Builder(origin, lenient)
    for expr in exprs:
        builder.define(expr)
    return builder.finish()
