"""``qmp-conform schema --check``: the rules of QEMU's current QAPI generator.

The rules are those ``docs/devel/qapi-code-gen.rst`` of QEMU 10.2 states, in
the generator's three steps:

1. parse strictly: no missing or trailing commas, strings of printable ASCII
   with ``\\\\`` the one escape, no include loops (:func:`read_tree`, whose
   syntax errors name the column);
2. check each directive and definition on its own: pragma names and values,
   one meta-type and its keys, naming per meta-type and for members,
   branches, enum values and features, reserved names and prefixes, flags,
   ``if`` forms, ``boxed``, feature lists and where special features may
   appear, documentation (this module);
3. build the model (:func:`build`, which owns what needs the whole schema for
   every release: unknown types, clashes through bases and branches,
   discriminators, base cycles, the JSON kinds of alternate branches), then
   check what only the model shows: ``returns``, today's stricter alternate
   rules, the limit on feature names (this module).

A rule is written once: what ``build`` rejects in every release is not
repeated here.  The first error ends the check, on the line QEMU names: the
definition's for most, the directive's for ``include`` and ``pragma``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from conformance.protocol.messages import DOWNSTREAM_PREFIX
from conformance.qapi.build import ALLOWED_KEYS, COMMON_KEYS, build, c_name, wire_kinds
from conformance.qapi.errors import QAPIError
from conformance.qapi.loader import as_introspection, read_source
from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    ObjectType,
    Schema,
    SourceInfo,
)
from conformance.qapi.source import Expr, SourceTree, read_tree

#: The meta-types of today's generator, in the order errors list them.
METAS = ("enum", "struct", "union", "alternate", "command", "event")
#: Keys a definition of each meta-type must have (beside its name's key).
REQUIRED_KEYS: dict[str, frozenset[str]] = {
    "enum": frozenset({"data"}),
    "struct": frozenset({"data"}),
    "union": frozenset({"base", "discriminator", "data"}),
    "alternate": frozenset({"data"}),
    "command": frozenset(),
    "event": frozenset(),
}
#: Features the generator gives a meaning, and where they may appear.
SPECIAL_FEATURES = ("deprecated", "unstable")
#: Feature names a schema may use in all, special ones included: the
#: generator numbers them as bits of a 64-bit mask.
MAX_FEATURES = 64
LIST_PRAGMAS = (
    "command-name-exceptions",
    "command-returns-exceptions",
    "documentation-exceptions",
    "member-name-exceptions",
)
_NAME = re.compile(rf"({DOWNSTREAM_PREFIX})?([A-Za-z][A-Za-z0-9_-]*)$")
_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$")
_CONFIG_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]*$")
_FALSE_ONLY = ("gen", "success-response")
_TRUE_ONLY = ("boxed", "allow-oob", "allow-preconfig", "coroutine")


@dataclass
class _Pragmas:
    doc_required: bool = False
    lists: dict[str, frozenset[str]] = field(default_factory=dict)

    def exempts(self, pragma: str, name: str) -> bool:
        return name in self.lists.get(pragma, frozenset())


def check(source: str | os.PathLike[str]) -> Schema:
    """Check the QAPI source at ``source`` (a file, or a QEMU tree's folder)
    by the rules of QEMU's current generator, and return its model.

    Raises :class:`QAPISyntaxError` (``file:line:col: message``) for text that
    does not parse by today's rules, and :class:`QAPIError`
    (``file:line: message``) for the first rule the schema breaks, or when the
    source is not QAPI source (introspection, the 2011 list form) or cannot
    be read.
    """
    path, text = read_source(source)
    if as_introspection(text) is not None:
        raise QAPIError(path, "this is introspection output: --check reads QAPI source")
    tree = read_tree(path, current=True)
    pragmas = _check_pragmas(tree)
    checker = _ExprChecker(pragmas)
    for expr in tree.exprs:
        checker.check(expr)
    schema = build(tree.exprs)
    schema.files = tree.files
    schema.pragmas = tree.pragmas
    schema.source = path
    _check_model(schema, pragmas)
    features = list(dict.fromkeys([*SPECIAL_FEATURES, *checker.features]))
    if len(features) > MAX_FEATURES:
        extra = features[MAX_FEATURES]
        raise QAPIError(
            checker.features[extra],
            f"feature '{extra}' is the {MAX_FEATURES + 1}th feature name of the schema: "
            f"at most {MAX_FEATURES} are allowed, {', '.join(SPECIAL_FEATURES)} included",
        )
    return schema


# -- directives -----------------------------------------------------------------


def _check_pragmas(tree: SourceTree) -> _Pragmas:
    pragmas = _Pragmas()
    for value, info in tree.pragma_directives:
        for name, arg in value.items():
            if name == "doc-required":
                if not isinstance(arg, bool):
                    raise QAPIError(info, "pragma 'doc-required' must be true or false")
                pragmas.doc_required = arg
            elif name in LIST_PRAGMAS:
                if not isinstance(arg, list) or not all(isinstance(a, str) for a in arg):
                    raise QAPIError(info, f"pragma '{name}' must be a list of names")
                pragmas.lists[name] = frozenset(arg)
            else:
                raise QAPIError(
                    info,
                    f"unknown pragma '{name}' (known: doc-required, {', '.join(LIST_PRAGMAS)})",
                )
    return pragmas


# -- names ----------------------------------------------------------------------


def _stem(name: str, info: SourceInfo, what: str, digit_first: bool = False) -> str:
    """``name`` without its downstream ``__RFQDN_`` prefix, once it is valid."""
    m = _NAME.match("d" + name if digit_first and name[:1].isdigit() else name)
    if m is None:
        raise QAPIError(
            info,
            f"{what} '{name}' is not a valid name: a letter, then letters, digits, '-' "
            "and '_' (an optional __RFQDN_ downstream prefix first)",
        )
    if c_name(name).startswith("q_"):
        raise QAPIError(info, f"{what} '{name}' starts with 'q_', which the generator reserves")
    return m.group(2)


def _check_lower(
    name: str, info: SourceInfo, what: str, *, upper: bool = False, underscore: bool = False
) -> None:
    stem = _stem(name, info, what, digit_first=what.startswith("value"))
    if (not upper and re.search(r"[A-Z]", stem)) or (not underscore and "_" in stem):
        raise QAPIError(info, f"{what} '{name}' must be lower-case words separated by '-'")


def _check_definition_name(name: str, meta: str, info: SourceInfo, pragmas: _Pragmas) -> None:
    stem = _stem(name, info, f"{meta} name")
    if meta == "event":
        if re.search(r"[a-z-]", stem):
            raise QAPIError(info, f"event name '{name}' must be upper-case words separated by '_'")
    elif meta == "command":
        exempt = pragmas.exempts("command-name-exceptions", name)
        _check_lower(name, info, "command name", underscore=exempt)
    elif not _CAMEL.match(stem):
        raise QAPIError(info, f"{meta} name '{name}' must be CamelCase")
    if name.endswith("List"):
        raise QAPIError(
            info, f"{meta} name '{name}' ends in 'List', which is reserved for array types"
        )


# -- definitions ----------------------------------------------------------------


class _ExprChecker:
    """The checks each definition passes on its own, in QEMU's order."""

    def __init__(self, pragmas: _Pragmas) -> None:
        self.pragmas = pragmas
        #: Every feature name, with where it first appears.
        self.features: dict[str, SourceInfo] = {}

    def check(self, expr: Expr) -> None:
        data, info = expr.data, expr.info
        metas = [k for k in METAS if k in data]
        if len(metas) != 1:
            raise QAPIError(info, "a definition needs exactly one of the keys " + ", ".join(METAS))
        meta = metas[0]
        name = data[meta]
        if not isinstance(name, str):
            raise QAPIError(info, f"'{meta}' must name the definition with a string")
        _check_definition_name(name, meta, info, self.pragmas)
        self._check_doc(expr, meta, name)
        missing = REQUIRED_KEYS[meta] - data.keys()
        if missing:
            raise QAPIError(
                info, f"{meta} '{name}' lacks key {', '.join(repr(k) for k in sorted(missing))}"
            )
        unknown = data.keys() - ALLOWED_KEYS[meta] - COMMON_KEYS
        if unknown:
            raise QAPIError(
                info,
                f"{meta} '{name}' has unknown key {', '.join(repr(k) for k in sorted(unknown))}",
            )
        what = f"{meta} '{name}'"
        _check_if(data.get("if"), info, what)
        features = self._features(data.get("features"), info, what)
        if meta in ("enum", "struct", "union", "alternate"):
            for f in features:
                if f in SPECIAL_FEATURES:
                    raise QAPIError(
                        info,
                        f"{what}: feature '{f}' is for commands, events, members and "
                        "enum values, not for types",
                    )
        for key in _FALSE_ONLY:
            if key in data and data[key] is not False:
                raise QAPIError(info, f"{what}: '{key}' may only be false (true is the default)")
        for key in _TRUE_ONLY:
            if key in data and data[key] is not True:
                raise QAPIError(info, f"{what}: '{key}' may only be true (false is the default)")
        documented = getattr(self, f"_check_{meta}")(name, data, info)
        if expr.doc is not None and expr.doc.symbol == name:
            self._check_documented(expr, what, documented, features)

    # Each _check_<meta> returns the names its doc comment must describe.

    def _check_enum(self, name: str, data: dict[str, Any], info: SourceInfo) -> list[str]:
        values = data["data"]
        if not isinstance(values, list):
            raise QAPIError(info, f"enum '{name}': 'data' must be a list")
        exempt = self.pragmas.exempts("member-name-exceptions", name)
        names: list[str] = []
        for v in values:
            if isinstance(v, dict):
                _check_keys(v, info, f"a value of enum '{name}'", {"name"}, {"if", "features"})
                value = v["name"]
            else:
                value = v
            if not isinstance(value, str):
                raise QAPIError(info, f"enum '{name}': value {value!r} must be a string")
            what = f"value of enum '{name}'"
            _check_lower(value, info, what, upper=exempt, underscore=exempt)
            if isinstance(v, dict):
                _check_if(v.get("if"), info, f"{what} '{value}'")
                self._features(v.get("features"), info, f"{what} '{value}'")
            names.append(value)
        return names

    def _check_struct(self, name: str, data: dict[str, Any], info: SourceInfo) -> list[str]:
        if "base" in data and not isinstance(data["base"], str):
            raise QAPIError(info, f"struct '{name}': 'base' must name a struct")
        return self._members(data["data"], info, name, f"struct '{name}'")

    def _check_union(self, name: str, data: dict[str, Any], info: SourceInfo) -> list[str]:
        what = f"union '{name}'"
        base = data["base"]
        documented: list[str] = []
        if isinstance(base, dict):
            documented = self._members(base, info, name, f"{what}'s base")
        elif not isinstance(base, str):
            raise QAPIError(info, f"{what}: 'base' must name a struct or list members")
        if not isinstance(data["discriminator"], str):
            raise QAPIError(info, f"{what}: 'discriminator' must be a member name")
        branches = data["data"]
        if not isinstance(branches, dict):
            raise QAPIError(info, f"{what}: 'data' must be an object")
        for case, ref in branches.items():
            source = f"branch '{case}' of {what}"
            if isinstance(ref, dict):
                _check_keys(ref, info, source, {"type"}, {"if"})
                _check_if(ref.get("if"), info, source)
                ref = ref["type"]
            if not isinstance(ref, str):
                raise QAPIError(info, f"{source} must name a struct")
        return documented

    def _check_alternate(self, name: str, data: dict[str, Any], info: SourceInfo) -> list[str]:
        what = f"alternate '{name}'"
        branches = data["data"]
        if not isinstance(branches, dict) or not branches:
            raise QAPIError(info, f"{what}: 'data' must be an object with at least one branch")
        for bname, ref in branches.items():
            source = f"branch '{bname}' of {what}"
            # Lower-case words and '-' only: so two branches never clash in C.
            _check_lower(bname, info, f"branch of {what}")
            if isinstance(ref, dict):
                _check_keys(ref, info, source, {"type"}, {"if"})
                _check_if(ref.get("if"), info, source)
                ref = ref["type"]
            _check_type_ref(ref, info, source)
        return list(branches)

    def _check_command(self, name: str, data: dict[str, Any], info: SourceInfo) -> list[str]:
        documented = self._arguments(name, data, info, f"command '{name}'")
        if "returns" in data:
            _check_type_ref(data["returns"], info, f"'returns' of command '{name}'")
        return documented

    def _check_event(self, name: str, data: dict[str, Any], info: SourceInfo) -> list[str]:
        return self._arguments(name, data, info, f"event '{name}'")

    def _arguments(self, name: str, data: dict[str, Any], info: SourceInfo, what: str) -> list[str]:
        args = data.get("data")
        if data.get("boxed"):
            if not isinstance(args, str):
                raise QAPIError(info, f"{what}: 'boxed': true needs 'data' to name a type")
            return []
        if args is None or isinstance(args, str):
            return []
        return self._members(args, info, name, what)

    def _members(self, value: Any, info: SourceInfo, owner: str, what: str) -> list[str]:
        if not isinstance(value, dict):
            raise QAPIError(info, f"{what}: members must be an object")
        exempt = self.pragmas.exempts("member-name-exceptions", owner)
        names: list[str] = []
        for key, arg in value.items():
            name = key[1:] if key.startswith("*") else key
            source = f"member '{name}' of {what}"
            _check_lower(name, info, f"member of {what}", upper=exempt, underscore=exempt)
            cname = c_name(name)
            if cname == "u" or cname.startswith("has_"):
                raise QAPIError(
                    info, f"{source}: 'u' and names starting 'has-' or 'has_' are reserved"
                )
            if isinstance(arg, dict):
                _check_keys(arg, info, source, {"type"}, {"if", "features"})
                _check_if(arg.get("if"), info, source)
                self._features(arg.get("features"), info, source)
                arg = arg["type"]
            _check_type_ref(arg, info, source)
            names.append(name)
        return names

    def _features(self, value: Any, info: SourceInfo, what: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise QAPIError(info, f"'features' of {what} must be a list")
        names: list[str] = []
        for f in value:
            if isinstance(f, dict):
                _check_keys(f, info, f"a feature of {what}", {"name"}, {"if"})
                fname = f["name"]
            else:
                fname = f
            if not isinstance(fname, str):
                raise QAPIError(info, f"feature {fname!r} of {what} must be a string")
            _check_lower(fname, info, f"feature of {what}")
            if isinstance(f, dict):
                _check_if(f.get("if"), info, f"feature '{fname}' of {what}")
            self.features.setdefault(fname, info)
            names.append(fname)
        return names

    # -- documentation -------------------------------------------------------------

    def _check_doc(self, expr: Expr, meta: str, name: str) -> None:
        symbol = expr.doc.symbol if expr.doc is not None else None
        if symbol is not None and symbol != name:
            raise QAPIError(expr.info, f"the doc comment before {meta} '{name}' is for '{symbol}'")
        if symbol is None and self.pragmas.doc_required:
            raise QAPIError(
                expr.info, f"{meta} '{name}' has no doc comment (pragma 'doc-required' is true)"
            )

    def _check_documented(
        self, expr: Expr, what: str, members: list[str], features: list[str]
    ) -> None:
        assert expr.doc is not None
        described = expr.doc.members
        name = expr.data[what.split(" ", 1)[0]]
        if not self.pragmas.exempts("documentation-exceptions", name):
            for m in members:
                if m not in described:
                    raise QAPIError(
                        expr.info,
                        f"{what}: '{m}' is not described in its doc comment (or list "
                        f"'{name}' in pragma 'documentation-exceptions')",
                    )
        for f in features:
            if f not in described:
                raise QAPIError(
                    expr.info, f"{what}: feature '{f}' is not described in its doc comment"
                )


def _check_keys(
    value: Any, info: SourceInfo, what: str, required: set[str], optional: set[str]
) -> None:
    if not isinstance(value, dict):
        raise QAPIError(info, f"{what} must be an object")
    missing = required - value.keys()
    if missing:
        raise QAPIError(info, f"{what} lacks key {', '.join(repr(k) for k in sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise QAPIError(
            info, f"{what} has unknown key {', '.join(repr(k) for k in sorted(unknown))}"
        )


def _check_type_ref(value: Any, info: SourceInfo, what: str) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return
    raise QAPIError(info, f"{what} must be a type name or [ 'TypeName' ]")


def _check_if(cond: Any, info: SourceInfo, what: str) -> None:
    if cond is None:
        return
    if isinstance(cond, str):
        if not _CONFIG_SYMBOL.match(cond):
            raise QAPIError(
                info, f"'if' of {what}: '{cond}' is not a configuration symbol like CONFIG_FOO"
            )
        return
    op = next(iter(cond)) if isinstance(cond, dict) and len(cond) == 1 else None
    if op not in ("all", "any", "not"):
        raise QAPIError(
            info,
            f"'if' of {what} must be a symbol or an object with one key, 'all', 'any' or 'not'",
        )
    assert isinstance(cond, dict)
    arg = cond[op]
    if op == "not":
        _check_if(arg, info, what)
        return
    if not isinstance(arg, list) or not arg:
        raise QAPIError(info, f"'{op}' in the 'if' of {what} needs a non-empty list")
    for a in arg:
        _check_if(a, info, what)


# -- the model --------------------------------------------------------------------


def _check_model(schema: Schema, pragmas: _Pragmas) -> None:
    for cmd in schema.commands.values():
        if cmd.ret_type is None or pragmas.exempts("command-returns-exceptions", cmd.name):
            continue
        ret = schema.types[cmd.ret_type]
        element = schema.types[ret.element_type] if isinstance(ret, ArrayType) else ret
        if not isinstance(element, ObjectType):
            raise QAPIError(
                cmd.info,
                f"command '{cmd.name}' returns {ret.meta} '{ret.name}': 'returns' must be "
                "an object type or an array of one, unless pragma "
                "'command-returns-exceptions' lists the command",
            )
    for t in schema.types.values():
        if isinstance(t, AlternateType):
            _check_alternate_wire(schema, t)


def _check_alternate_wire(schema: Schema, alt: AlternateType) -> None:
    """Today's generator also reads alternates from keyval input (``-blockdev``,
    ``-object``), where every scalar arrives as a string: a ``str`` branch then
    takes numbers and booleans too, and an enum value ``on``/``off`` or one
    that starts like a number would be read as a bool or number branch."""
    seen: dict[str, str] = {}
    for b in alt.branches:
        t = schema.types[b.type]
        if isinstance(t, BuiltinType) and t.json_type == "value":
            raise QAPIError(
                alt.info,
                f"alternate '{alt.name}': branch '{b.name}' can't be of {t.meta} type '{t.name}'",
            )
        # build() has checked the kinds on the wire; keyval input adds these.
        claims = set(wire_kinds(t))
        if isinstance(t, EnumType):
            for v in t.names:
                if v in ("on", "off"):
                    claims.add("boolean")
                if re.match(r"[-+0-9.]", v):
                    claims.add("number")
        elif "string" in claims:
            claims |= {"number", "boolean"}
        for k in sorted(claims):
            if k in seen:
                raise QAPIError(
                    alt.info,
                    f"alternate '{alt.name}': branch '{b.name}' can't be told apart from "
                    f"'{seen[k]}' (a {k} on the wire, or in keyval input)",
                )
            seen[k] = b.name
