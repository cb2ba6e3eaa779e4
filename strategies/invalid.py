"""Invalid arguments and requests, each labelled with the rule it breaks.

An argument-level negative is built from a valid value: one violation is
planted at one place (a path into the arguments), the rest stays valid, so a
server that rejects it can only be rejecting that violation.  The label, the
path and the QAPI type at the path travel with the example, and
:func:`label_still_holds` re-checks them on the final (shrunk) example: a
negative is judged by what it is, never by how it started (Schemathesis #4332).

QEMU's documented leniencies are kept out of the negatives rather than
excused afterwards: ``number`` takes integers, ``uint64``/``size`` take
negatives down to int64's minimum, ``gen: false`` commands take extra
members, ``any`` takes anything.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from conformance.qapi.model import (
    AlternateType,
    ArrayType,
    BuiltinType,
    EnumType,
    Member,
    ObjectType,
    Schema,
)
from strategies.compile import (
    KINDS,
    Compiled,
    compiled,
    kind_of,
    member_names,
)
from strategies.json_values import json_ints, json_strings, json_values

#: Labels of argument-level violations (all break Q33) and what QEMU says.
ARGUMENT_LABELS = {
    "missing-member": "Parameter '...' is missing",
    "unknown-member": "Parameter '...' is unexpected",
    "wrong-type": "Invalid parameter type for '...', expected: ...",
    "int-out-of-range": "Parameter '...' expects <width> / Invalid parameter type",
    "bad-enum": "Parameter '...' does not accept value '...'",
    "bad-discriminator": "Parameter '<tag>' does not accept value '...'",
}

#: Request-level labels and the rule each breaks (see the notes, section 1.2).
REQUEST_RULES = {
    "not-an-object": "Q18",
    "missing-execute": "Q3",
    "execute-not-string": "Q33",
    "arguments-not-object": "Q33",
    "unknown-top-level-member": "Q33",
    "exec-oob-without-oob": "Q28",
    "exec-oob-not-allowed": "Q27",
    "duplicate-key": "Q5",
    "unknown-command": "Q20",
    "repeat-negotiation": "Q12",
}
#: Labels that exist only before ``qmp_capabilities`` succeeded on the
#: connection (negotiation mode), and the rule each breaks.
NEGOTIATION_RULES = {
    "command-before-negotiation": "Q10",
    "unknown-capability": "Q14",
}
#: The error class each label must get where the specification names one
#: (Q10, Q12 in QEMU's reading, Q20); other request and argument labels get
#: QEMU's ``GenericError``; ``unknown-capability`` only has to fail.
ERROR_CLASSES = {
    "unknown-command": "CommandNotFound",
    "repeat-negotiation": "CommandNotFound",
    "command-before-negotiation": "CommandNotFound",
    "unknown-capability": None,
}


@dataclass(frozen=True)
class Invalid:
    """One negative example: a request (``message``) or wire bytes (``raw``).

    ``command``/``path``/``type_name``/``detail`` locate an argument-level
    violation: ``path`` leads from ``arguments`` to the offending node (the
    object a member is missing from, or the bad value itself).
    """

    label: str
    rule: str
    message: Any = None
    raw: bytes | None = None
    command: str | None = None
    path: tuple[str | int, ...] = ()
    type_name: str | None = None
    detail: str = ""
    notes: dict[str, Any] = field(default_factory=dict, compare=False)

    def wire(self) -> bytes:
        """The bytes to send."""
        if self.raw is not None:
            return self.raw
        return json.dumps(self.message).encode()

    @property
    def arguments(self) -> Any:
        """The request's ``arguments`` member, None when there is none."""
        return self.message.get("arguments") if isinstance(self.message, dict) else None

    @property
    def error_class(self) -> str | None:
        """The error class the reply must carry (None: any error will do;
        raw bytes may get no reply a request could be matched with)."""
        if self.raw is not None or not isinstance(self.message, dict):
            return None
        return ERROR_CLASSES.get(self.label, "GenericError")


@dataclass(frozen=True)
class Violation:
    """An invalid value of some type, and where inside it the violation sits."""

    value: Any
    label: str
    path: tuple[str | int, ...]
    type_name: str
    detail: str = ""


def _non_integral_floats() -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from([0.5, -1.5, 1e-7, 3.25, 1.5e300]),
        # Every double of magnitude 2**52 or more is integral; below it, adding
        # a half is exact and lands between integers.  A map, not a filter:
        # floats are integral often enough that filtering retried a lot.
        st.floats(min_value=-(2.0**52), max_value=2.0**52, exclude_min=True, exclude_max=True).map(
            lambda f: f + 0.5 if f.is_integer() else f
        ),
    )


@functools.cache
def _of_kind() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": json_ints,
        "number": _non_integral_floats(),
        "string": json_strings,
        "object": st.dictionaries(json_strings, json_values(2, 3), max_size=3),
        "array": st.lists(json_values(2, 3), max_size=3),
    }


def values_of_kind(kind: str) -> st.SearchStrategy[Any]:
    """Values whose :func:`kind_of` is ``kind`` (one of ``KINDS``), built once
    (it is drawn through ``flatmap``, once per example).

    Raises :class:`KeyError` for any other ``kind``.
    """
    return _of_kind()[kind]


def width_range(c: Compiled, t: BuiltinType) -> tuple[int, int]:
    """The range QEMU itself enforces for ``t`` (the whole span for introspected ``int``)."""
    lo = -(2**63) if t.minimum is None else t.minimum
    hi = 2**63 - 1 if t.maximum is None else t.maximum
    if (lo, hi) == (0, 2**64 - 1):
        # uint64 and size: QEMU takes negatives down to int64's minimum.
        lo = -(2**63)
    return lo, hi


def _out_of_range(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from([lo - 1, hi + 1]),
        st.integers(max_value=lo - 1),
        st.integers(min_value=hi + 1),
    )


class Negatives:
    """Violation strategies for one :class:`Compiled` schema."""

    def __init__(self, c: Compiled) -> None:
        self.c = c
        self.schema = c.schema
        self._cache: dict[tuple[str, int, bool, bool], st.SearchStrategy[Violation]] = {}
        #: invalid_arguments per command, built once (it is drawn through flatmap).
        self.requests: dict[str, st.SearchStrategy[Invalid]] = {}

    def resolve_members(self, t: ObjectType, value: dict[str, Any]) -> list[Member]:
        """The members ``value`` has to follow: the base plus its tag's branch."""
        members = list(t.members)
        if t.tag is not None:
            case = value.get(t.tag)
            for v in t.variants:
                if v.case == case:
                    branch = self.schema.type(v.type)
                    assert isinstance(branch, ObjectType)
                    members.extend(self.resolve_members(branch, value))
        return members

    def all_member_names(self, t: ObjectType) -> set[str]:
        """Every member name an object of ``t`` may carry, whichever its branch
        (nested unions included): what an unknown member has to avoid."""
        names = {m.name for m in t.members}
        for v in t.variants:
            branch = self.schema.type(v.type)
            assert isinstance(branch, ObjectType)
            names |= self.all_member_names(branch)
        return names

    def violations(
        self, name: str, budget: int, keep_kind: bool = False, closed: bool = True
    ) -> st.SearchStrategy[Violation]:
        """Invalid values of type ``name``; ``keep_kind`` forbids changing the
        JSON kind at the top (inside an alternate, another kind could pick a
        different branch); ``closed=False`` forbids unknown members at the top.

        Built lazily: a ``name`` the schema does not define raises
        :class:`KeyError` when the strategy is first drawn from.
        """
        key = (name, budget, keep_kind, closed)
        found = self._cache.get(key)
        if found is None:
            found = st.deferred(lambda: self._violations(name, budget, keep_kind, closed))
            self._cache[key] = found
        return found

    def possible(self, name: str, keep_kind: bool) -> bool:
        """Whether any violation of ``name`` exists (``any`` has none).

        Raises :class:`KeyError` when the schema has no type ``name``.
        """
        t = self.schema.type(name)
        if isinstance(t, BuiltinType):
            if t.json_type == "value":
                return False
            return not keep_kind or t.json_type == "int"
        return True

    def _violations(
        self, name: str, budget: int, keep_kind: bool, closed: bool
    ) -> st.SearchStrategy[Violation]:
        t = self.schema.type(name)
        c = self.c
        options: list[st.SearchStrategy[Violation]] = []
        wrong = sorted(set(KINDS) - c.kinds(name))
        if wrong and not keep_kind:
            options.append(
                st.sampled_from(wrong)
                .flatmap(values_of_kind)
                .map(lambda v: Violation(v, "wrong-type", (), name))
            )
        if isinstance(t, BuiltinType) and t.json_type == "int":
            lo, hi = width_range(c, t)
            options.append(
                _out_of_range(lo, hi).map(lambda v: Violation(v, "int-out-of-range", (), name))
            )
        elif isinstance(t, EnumType):
            names = set(t.names)
            options.append(
                json_strings.filter(lambda s: s not in names).map(
                    lambda v: Violation(v, "bad-enum", (), name)
                )
            )
        elif isinstance(t, ArrayType):
            inner = budget - 1 if name in c._cyclic else budget
            if self.possible(t.element_type, False):
                options.append(
                    st.tuples(
                        st.lists(c.value(t.element_type, max(inner, 0)), max_size=2),
                        self.violations(t.element_type, max(inner, 0)),
                        st.integers(0, 2),
                    ).map(lambda x: _in_list(x[0], x[1], x[2]))
                )
        elif isinstance(t, AlternateType):
            inner = budget - 1 if name in c._cyclic else budget
            for b in t.branches:
                others = frozenset().union(*(c.kinds(o.type) for o in t.branches if o is not b))
                if c.kinds(b.type) & others or inner < 0 or not c.fits(b.type, inner):
                    continue
                if self.possible(b.type, True):
                    options.append(self.violations(b.type, inner, keep_kind=True))
        elif isinstance(t, ObjectType):
            options.append(self._object(t, budget, closed))
        return st.one_of(options) if options else st.nothing()

    def _object(self, t: ObjectType, budget: int, closed: bool) -> st.SearchStrategy[Violation]:
        c = self.c
        inner = budget - 1 if t.name in c._cyclic else budget

        @st.composite
        def build(draw: st.DrawFn) -> Violation:
            value = dict(draw(c.value(t.name, max(budget, int(c._need[t.name])))))
            members = self.resolve_members(t, value)
            actions: list[str] = []
            mandatory = [m for m in members if not m.optional and m.name in value]
            if mandatory:
                actions.append("missing-member")
            if closed and not t.open:
                actions.append("unknown-member")
            if t.tag is not None:
                actions.append("bad-discriminator")
            children = [
                m
                for m in members
                if m.name != t.tag
                and inner >= 0
                and c.fits(m.type, inner)
                and self.possible(m.type, False)
            ]
            if children:
                actions.append("child")
            if not actions:
                return draw(st.nothing())
            action = draw(st.sampled_from(actions))
            if action == "missing-member":
                m = draw(st.sampled_from(mandatory))
                del value[m.name]
                return Violation(value, action, (), t.name, m.name)
            if action == "unknown-member":
                known = self.all_member_names(t)
                key = draw(member_names.filter(lambda k: k not in known))
                value[key] = draw(json_values(2, 3))
                return Violation(value, action, (), t.name, key)
            if action == "bad-discriminator":
                assert t.tag is not None
                cases = set(c.enum_tag_cases(t))
                value[t.tag] = draw(json_strings.filter(lambda s: s not in cases))
                return Violation(value, action, (), t.name, t.tag)
            m = draw(st.sampled_from(children))
            child = draw(self.violations(m.type, inner))
            value[m.name] = child.value
            return Violation(
                value, child.label, (m.name, *child.path), child.type_name, child.detail
            )

        return build()

    def arguments(self, command: str) -> st.SearchStrategy[Violation]:
        """Invalid ``arguments`` objects of ``command`` (always JSON objects);
        nothing to draw for a lenient command that takes no arguments.

        Raises :class:`KeyError` when the schema has no command ``command``.
        """
        cmd = self.schema.commands[command]
        closed = command not in self.c.lenient_commands
        if cmd.arg_type is None:
            if not closed:
                return st.nothing()
            return st.tuples(member_names, json_values(2, 3)).map(
                lambda kv: Violation({kv[0]: kv[1]}, "unknown-member", (), "", kv[0])
            )
        t = self.schema.type(cmd.arg_type)
        assert isinstance(t, ObjectType)
        return self.violations(cmd.arg_type, self.c.depth, keep_kind=True, closed=closed)


def _in_list(items: list[Any], bad: Violation, where: int) -> Violation:
    index = min(where, len(items))
    values = [*items[:index], bad.value, *items[index:]]
    return Violation(values, bad.label, (index, *bad.path), bad.type_name, bad.detail)


_negatives: dict[int, Negatives] = {}


def negatives(schema: Schema, *, depth: int = 4) -> Negatives:
    """The cached :class:`Negatives` of ``schema``."""
    c = compiled(schema, depth=depth)
    found = _negatives.get(id(c))
    if found is None or found.c is not c:
        found = _negatives[id(c)] = Negatives(c)
    return found


def invalid_arguments(model: Schema, command: str, *, depth: int = 4) -> st.SearchStrategy[Invalid]:
    """Requests executing ``command`` with one argument-level violation (Q33).

    Raises :class:`KeyError` when ``model`` has no command ``command``.  A
    command without arguments that accepts extra members has no such
    violation: the strategy then draws nothing.

    >>> from conformance.qapi import load
    >>> schema = load("../shared/corpus/introspection/qemu-7.2.json")  # doctest: +SKIP
    >>> invalid_arguments(schema, "qom-list").example().label  # doctest: +SKIP
    'wrong-type'
    """
    n = negatives(model, depth=depth)
    found = n.requests.get(command)
    if found is None:
        found = n.requests[command] = n.arguments(command).map(
            lambda v: Invalid(
                v.label,
                "Q33",
                {"execute": command, "arguments": v.value},
                command=command,
                path=v.path,
                type_name=v.type_name,
                detail=v.detail,
            )
        )
    return found


# -- re-checking ------------------------------------------------------------------


def _node(value: Any, path: tuple[str | int, ...]) -> tuple[bool, Any]:
    for step in path:
        if isinstance(step, int) and isinstance(value, list) and 0 <= step < len(value):
            value = value[step]
            continue
        if isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
            continue
        return False, None
    return True, value


def _argument_label_holds(model: Schema, ex: Invalid, depth: int) -> bool:
    assert ex.command is not None
    args = ex.arguments
    if not isinstance(args, dict) or not _specs(model).errors("arguments", ex.command, args):
        return False
    found, node = _node(args, ex.path)
    if not found:
        return False
    n = negatives(model, depth=depth)
    if ex.type_name == "" and ex.label == "unknown-member":
        return isinstance(node, dict) and ex.detail in node
    assert ex.type_name is not None
    t = model.type(ex.type_name)
    if ex.label == "wrong-type":
        return kind_of(node) not in n.c.kinds(ex.type_name)
    if ex.label == "int-out-of-range":
        if not isinstance(t, BuiltinType) or not isinstance(node, int) or isinstance(node, bool):
            return False
        lo, hi = width_range(n.c, t)
        return node < lo or node > hi
    if ex.label == "bad-enum":
        return isinstance(t, EnumType) and isinstance(node, str) and node not in t.names
    if not isinstance(t, ObjectType) or not isinstance(node, dict):
        return False
    if ex.label == "missing-member":
        return ex.detail not in node and any(
            m.name == ex.detail and not m.optional for m in n.resolve_members(t, node)
        )
    if ex.label == "unknown-member":
        return ex.detail in node and ex.detail not in n.all_member_names(t)
    if ex.label == "bad-discriminator":
        tag = node.get(t.tag) if t.tag else None
        return isinstance(tag, str) and tag not in n.c.enum_tag_cases(t)
    return False


_specs_cache: dict[int, Any] = {}


def _specs(model: Schema) -> Any:
    from conformance.specs import Specs

    found = _specs_cache.get(id(model))
    if found is None or found.schema is not model:
        found = _specs_cache[id(model)] = Specs(model)
    return found


def label_still_holds(
    model: Schema,
    example: Invalid,
    *,
    depth: int = 4,
    token_limit: int | None = None,
    depth_limit: int = 1024,
) -> bool:
    """Whether ``example`` (typically after shrinking) still breaks its labelled rule.

    Argument-level labels are checked twice: the arguments fail our JSON
    Schema (``Specs.errors``), and the labelled violation is really there at
    the recorded path.  Request and raw labels are checked on the message or
    bytes themselves.

    Raises :class:`KeyError` when an argument-level example names a command
    or type that ``model`` does not define (one made from another schema).
    """
    from strategies.raw import raw_label_holds
    from strategies.requests import request_label_holds

    if example.label in ARGUMENT_LABELS:
        return _argument_label_holds(model, example, depth)
    if example.label in REQUEST_RULES or example.label in NEGOTIATION_RULES:
        return request_label_holds(model, example)
    return raw_label_holds(example, token_limit=token_limit, depth_limit=depth_limit)
