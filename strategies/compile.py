"""Compile a schema model into Hypothesis strategies for valid values.

One :class:`Compiled` per schema (and options), cached: strategies are built
lazily, the first time a type is asked for, and reused.  The strategies are
plain Hypothesis combinators (``fixed_dictionaries``, ``one_of``,
``sampled_from``...), so they shrink the way Hypothesis shrinks: optional
members drop out, unions and alternates fall back to their first branch,
integers move toward zero, strings toward empty.

Recursion (QEMU's ``BlockdevOptions`` refers to itself through
``BlockdevRef``) is bounded by a depth budget: entering a type that sits on a
cycle costs one unit; when the budget runs out, only members, branches and
array elements that can still be finished are generated.  The minimal budget
each type needs is a least fixed point computed once.
"""

from __future__ import annotations

import math
import string
import weakref
from typing import Any

from hypothesis import strategies as st

from conformance.protocol.values import json_kind
from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    Command,
    EnumType,
    Member,
    ObjectType,
    Schema,
    TypeEntity,
    referenced_types,
)
from strategies.json_values import json_floats, json_strings, json_values

#: The range of an introspected ``int`` every hidden width accepts.
#: Introspection says ``int`` for int8..int64, uint8..uint64 and size alike, so
#: a valid value must fit all of them: unsigned widths reject negatives below
#: their wrap-around (uint8 rejects -1) and int8 tops out at 127.
INTROSPECTED_INT_SAFE = (0, 127)
#: What introspection's catch-all ``int`` builtin spans (int64 min..uint64 max).
INTROSPECTED_INT_SPAN = (-(2**63), 2**64 - 1)
INT64 = (-(2**63), 2**63 - 1)

#: Commands QEMU 7.2 declares ``gen: false`` (they take members beyond their
#: schema); introspection cannot tell, so an introspected model borrows this.
KNOWN_OPEN_COMMANDS = frozenset({"device_add"})

#: JSON kinds a value can have, as the negative strategies reason about them.
#: ``number`` here means a non-integral double (QEMU never takes one as an int).
KINDS = ("null", "boolean", "int", "number", "string", "object", "array")

_BUILTIN_KINDS: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "int": frozenset({"int"}),
    "number": frozenset({"int", "number"}),
    "boolean": frozenset({"boolean"}),
    "null": frozenset({"null"}),
    "value": frozenset(KINDS),
}

INF = math.inf


#: The JSON kind of a decoded value (whole doubles count as ``number``).
kind_of = json_kind


class Compiled:
    """Valid-value strategies for one schema.  Use :func:`compiled` to get one."""

    def __init__(
        self, schema: Schema, *, depth: int = 4, open_commands: frozenset[str] | None = None
    ) -> None:
        self.schema = schema
        self.depth = depth
        if open_commands is None:
            open_commands = frozenset(
                name for name, c in schema.commands.items() if not c.gen or self._arg_open(c)
            )
        #: Commands whose generated arguments carry extra members.
        self.open_commands = open_commands
        #: Commands a server may not hold to their members: the open ones, and
        #: for an introspected model (which cannot say ``gen: false``) QEMU's.
        self.lenient_commands = open_commands | (
            KNOWN_OPEN_COMMANDS if schema.origin == "introspection" else frozenset()
        )
        self._cyclic = self._find_cyclic()
        self._reaches_cycle = self._find_reaching()
        self._need = self._min_budgets()
        self._cache: dict[tuple[str, int | None], st.SearchStrategy[Any]] = {}
        self._arguments: dict[str, st.SearchStrategy[dict[str, Any]]] = {}

    # -- analysis --------------------------------------------------------------

    def _arg_open(self, c: Command) -> bool:
        t = self.schema.types.get(c.arg_type) if c.arg_type else None
        return isinstance(t, ObjectType) and t.open

    def _find_cyclic(self) -> frozenset[str]:
        """Types on a reference cycle (Tarjan's SCCs, iteratively)."""
        types = self.schema.types
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        cyclic: set[str] = set()
        counter = 0
        for root in types:
            if root in index:
                continue
            work: list[tuple[str, int]] = [(root, 0)]
            while work:
                node, i = work.pop()
                if i == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                refs = referenced_types(types[node])
                if i < len(refs):
                    work.append((node, i + 1))
                    ref = refs[i]
                    if ref not in index:
                        work.append((ref, 0))
                    elif ref in on_stack:
                        low[node] = min(low[node], index[ref])
                    continue
                for ref in refs:
                    if ref in on_stack:
                        low[node] = min(low[node], low[ref])
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1 or node in refs:
                        cyclic.update(component)
        return frozenset(cyclic)

    def _find_reaching(self) -> frozenset[str]:
        """Types from which a cyclic type is reachable (their values depend on budget)."""
        reaching = set(self._cyclic)
        changed = True
        while changed:
            changed = False
            for name, t in self.schema.types.items():
                if name not in reaching and any(r in reaching for r in referenced_types(t)):
                    reaching.add(name)
                    changed = True
        return frozenset(reaching)

    def _min_budgets(self) -> dict[str, float]:
        need: dict[str, float] = {n: INF for n in self.schema.types}
        changed = True
        while changed:
            changed = False
            for name, t in self.schema.types.items():
                value = self._need_of(t, need)
                if value < need[name]:
                    need[name] = value
                    changed = True
        return need

    def _need_of(self, t: TypeEntity, need: dict[str, float]) -> float:
        cost = 1.0 if t.name in self._cyclic else 0.0
        if isinstance(t, BuiltinType | EnumType | ArrayType):
            return cost
        if isinstance(t, AlternateType):
            return cost + min(need[b.type] for b in t.branches)
        return cost + self._object_need(t, need)

    def _object_need(self, t: ObjectType, need: dict[str, float]) -> float:
        """Budget an object's contents need; branches share the union's level."""
        base = max([need[m.type] for m in t.members if not m.optional], default=0.0)
        if not t.variants:
            return base
        choices = [self._object_need(self._branch(v.type), need) for v in t.variants]
        if self._variantless_cases(t):
            choices.append(0.0)
        return max(base, min(choices))

    def _branch(self, name: str) -> ObjectType:
        branch = self.schema.type(name)
        assert isinstance(branch, ObjectType)
        return branch

    def _variantless_cases(self, t: ObjectType) -> list[str]:
        tag = t.member(t.tag) if t.tag else None
        tag_type = self.schema.type(tag.type) if tag else None
        if not isinstance(tag_type, EnumType):
            return []
        covered = {v.case for v in t.variants}
        return [c for c in tag_type.names if c not in covered]

    # -- facts the negative strategies share -------------------------------------

    def int_range(self, t: BuiltinType) -> tuple[int, int]:
        """The range valid integers of ``t`` are drawn from (see INTROSPECTED_INT_SAFE)."""
        lo = INT64[0] if t.minimum is None else t.minimum
        hi = INT64[1] if t.maximum is None else t.maximum
        if self.schema.origin == "introspection" and (lo, hi) == INTROSPECTED_INT_SPAN:
            return INTROSPECTED_INT_SAFE
        return lo, hi

    def kinds(self, name: str) -> frozenset[str]:
        """The JSON kinds a value of type ``name`` may have.

        Raises :class:`KeyError` when the schema has no type ``name``.
        """
        t = self.schema.type(name)
        if isinstance(t, BuiltinType):
            return _BUILTIN_KINDS[t.json_type]
        if isinstance(t, EnumType):
            return frozenset({"string"})
        if isinstance(t, ArrayType):
            return frozenset({"array"})
        if isinstance(t, ObjectType):
            return frozenset({"object"})
        out: frozenset[str] = frozenset()
        for b in t.branches:
            out |= self.kinds(b.type)
        return out

    def enum_tag_cases(self, t: ObjectType) -> list[str]:
        """Every value the union ``t``'s discriminator accepts."""
        tag = t.member(t.tag) if t.tag else None
        tag_type = self.schema.type(tag.type) if tag else None
        return tag_type.names if isinstance(tag_type, EnumType) else []

    def branch_members(self, t: ObjectType, case: str | None) -> list[Member]:
        """The members an object of union ``t`` has for tag value ``case``
        (nested unions resolved by the same tag, as QEMU flattens them)."""
        members = list(t.members)
        for v in t.variants:
            if v.case == case:
                branch = self.schema.type(v.type)
                assert isinstance(branch, ObjectType)
                members.extend(m for m in branch.members if m.name != t.tag)
        return members

    # -- strategies --------------------------------------------------------------

    def value(self, name: str, budget: int | None = None) -> st.SearchStrategy[Any]:
        """Valid values of type ``name``, with ``budget`` cyclic levels left.

        Raises :class:`KeyError` when the schema has no type ``name``: at once
        without a ``budget``, with one when the strategy is first drawn from.
        """
        if budget is None:
            budget = max(self.depth, int(self._need[name]) if self._need[name] < INF else 0)
        key = (name, budget if name in self._reaches_cycle else None)
        strategy = self._cache.get(key)
        if strategy is None:
            strategy = st.deferred(lambda: self._build(self.schema.type(name), budget))
            self._cache[key] = strategy
        return strategy

    def fits(self, name: str, budget: int) -> bool:
        """Whether a value of type ``name`` can be finished within ``budget``
        cyclic levels.

        Raises :class:`KeyError` when the schema has no type ``name``.
        """
        return self._need[name] <= budget

    def _build(self, t: TypeEntity, budget: int) -> st.SearchStrategy[Any]:
        inner = budget - 1 if t.name in self._cyclic else budget
        if isinstance(t, BuiltinType):
            return self._builtin(t)
        if isinstance(t, EnumType):
            return st.sampled_from(t.names)
        if isinstance(t, ArrayType):
            if not self.fits(t.element_type, inner):
                return st.just([])
            return st.lists(self.value(t.element_type, inner), max_size=3)
        if isinstance(t, AlternateType):
            return st.one_of(
                [self.value(b.type, inner) for b in t.branches if self.fits(b.type, inner)]
            )
        return self._object(t, inner)

    def _builtin(self, t: BuiltinType) -> st.SearchStrategy[Any]:
        if t.json_type == "int":
            lo, hi = self.int_range(t)
            edges = sorted({v for v in (lo, lo + 1, hi - 1, hi, 0, 1, -1) if lo <= v <= hi})
            return st.one_of(st.integers(lo, hi), st.sampled_from(edges))
        if t.json_type == "string":
            return json_strings
        if t.json_type == "number":
            return st.one_of(st.integers(-(2**53), 2**53), json_floats)
        if t.json_type == "boolean":
            return st.booleans()
        if t.json_type == "null":
            return st.none()
        return json_values()

    def _fields(
        self, members: list[Member], budget: int, pins: dict[str, str]
    ) -> tuple[dict[str, st.SearchStrategy[Any]], dict[str, st.SearchStrategy[Any]]]:
        required: dict[str, st.SearchStrategy[Any]] = {k: st.just(v) for k, v in pins.items()}
        optional: dict[str, st.SearchStrategy[Any]] = {}
        for m in members:
            if m.name in pins:
                continue
            if not m.optional:
                required[m.name] = self.value(m.type, budget)
            elif self.fits(m.type, budget):
                optional[m.name] = self.value(m.type, budget)
        return required, optional

    def _object(
        self,
        t: ObjectType,
        budget: int,
        outer: tuple[Member, ...] = (),
        pins: dict[str, str] | None = None,
    ) -> st.SearchStrategy[Any]:
        """``t`` as a dict; ``outer`` are an enclosing union's members and
        ``pins`` the tag values already chosen, which this branch agrees with."""
        pins = pins or {}
        members = [*outer, *t.members]
        if not t.variants:
            required, optional = self._fields(members, budget, pins)
            return st.fixed_dictionaries(required, optional=optional)
        assert t.tag is not None
        options: list[st.SearchStrategy[Any]] = []
        for v in t.variants:
            branch = self._branch(v.type)
            if self._object_need(branch, self._need) <= budget:
                options.append(
                    self._object(branch, budget, tuple(members), {**pins, t.tag: v.case})
                )
        rest = self._variantless_cases(t)
        if rest:
            required, optional = self._fields(members, budget, {**pins, t.tag: ""})
            required[t.tag] = st.sampled_from(rest)
            options.append(st.fixed_dictionaries(required, optional=optional))
        return st.one_of(options)

    def arguments(self, command: str) -> st.SearchStrategy[dict[str, Any]]:
        """Valid ``arguments`` of ``command``; extra members when it is open.

        Raises :class:`KeyError` when the schema has no command ``command``.
        """
        found = self._arguments.get(command)
        if found is None:
            found = self._arguments[command] = self._build_arguments(command)
        return found

    def _build_arguments(self, command: str) -> st.SearchStrategy[dict[str, Any]]:
        cmd = self.schema.commands[command]
        base: st.SearchStrategy[dict[str, Any]] = (
            st.just({}) if cmd.arg_type is None else self.value(cmd.arg_type)
        )
        if command not in self.open_commands:
            return base
        known: set[str] = set()
        arg = self.schema.types.get(cmd.arg_type) if cmd.arg_type else None
        if isinstance(arg, ObjectType):
            known = {m.name for m in arg.members}
        extras = st.dictionaries(
            member_names.filter(lambda k: k not in known), json_values(2, 3), max_size=3
        )
        return st.tuples(base, extras).map(_merge_extras)


def _merge_extras(pair: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {**pair[1], **pair[0]}


#: Plausible member names: QAPI's lowercase-dash style plus a few odd ones.
#: (``[a-z][a-z0-9-]{0,11}`` spelled out: ``from_regex`` cost twice as much a draw.)
member_names: st.SearchStrategy[str] = st.one_of(
    st.tuples(
        st.sampled_from(string.ascii_lowercase),
        st.text(string.ascii_lowercase + string.digits + "-", max_size=11),
    ).map("".join),
    st.sampled_from(["__org.example_x", "x-debug", "Id", "ID"]),
)

_compiled: dict[tuple[int, int, frozenset[str] | None], Compiled] = {}


def compiled(
    schema: Schema, *, depth: int = 4, open_commands: frozenset[str] | None = None
) -> Compiled:
    """The cached :class:`Compiled` of ``schema`` (built on first use)."""
    key = (id(schema), depth, open_commands)
    found = _compiled.get(key)
    if found is None or found.schema is not schema:
        found = Compiled(schema, depth=depth, open_commands=open_commands)
        _compiled[key] = found
        weakref.finalize(schema, _compiled.pop, key, None)
    return found
