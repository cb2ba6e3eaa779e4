"""The one schema model every consumer reads.

Whatever the source (QAPI source files of any release, the 2011 list form, or
``query-qmp-schema`` introspection), loading ends here, in the shape
introspection uses on the wire: objects with flattened members plus an
optional tag and variants, enums, arrays, alternates, builtins, commands and
events that point at types by name.  That shape is the common denominator:
source schemas can always be lowered to it, introspection cannot be raised
back to source.  What only source schemas know (integer widths, doc comments,
``if`` conditions, ``boxed``, ``gen``) rides along as optional fields.

Type references are names.  Arrays are named ``[ELEMENT]`` as introspection
names them, and implicit types (inline ``data`` dicts, simple-union wrappers)
get QEMU's ``q_obj_...`` names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

JsonType: TypeAlias = Literal[
    "string", "int", "number", "boolean", "null", "object", "array", "value"
]


@dataclass(frozen=True)
class SourceInfo:
    """Where a definition came from; printed as ``file:line`` in errors."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class IfCond:
    """A QAPI ``if`` condition, kept as a tree so it can be evaluated later.

    ``op`` is ``"name"`` for a leaf (``CONFIG_X``; the old ``defined(CONFIG_X)``
    string form is reduced to its name), else ``"all"``, ``"any"`` or ``"not"``.
    """

    op: Literal["name", "all", "any", "not"]
    name: str = ""
    args: tuple[IfCond, ...] = ()

    def holds(self, defined: frozenset[str] | set[str]) -> bool:
        """Whether the condition is true when exactly the names in ``defined`` are set."""
        if self.op == "name":
            return self.name in defined
        if self.op == "all":
            return all(a.holds(defined) for a in self.args)
        if self.op == "any":
            return any(a.holds(defined) for a in self.args)
        return not self.args[0].holds(defined)

    def __str__(self) -> str:
        if self.op == "name":
            return self.name
        if self.op == "not":
            return f"not {self.args[0]}"
        return "(" + f" {self.op} ".join(str(a) for a in self.args) + ")"


@dataclass(frozen=True)
class Doc:
    """A doc comment attached to one definition."""

    text: str
    since: str | None = None
    #: The name a definition's doc starts with (``# @NAME:``); None for free-form text.
    symbol: str | None = None
    members: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    sections: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Member:
    """A member of an object type (struct, union base or branch)."""

    name: str
    type: str
    optional: bool = False
    features: tuple[str, ...] = ()
    ifcond: IfCond | None = None
    #: ``default`` of an introspected member; present (as None) means optional.
    info: SourceInfo | None = None


@dataclass
class EnumValue:
    """One value of an enum, with its features and ``if`` condition."""

    name: str
    features: tuple[str, ...] = ()
    ifcond: IfCond | None = None


@dataclass
class Variant:
    """One branch of a union: the tag value and the type merged in for it."""

    case: str
    type: str
    ifcond: IfCond | None = None


@dataclass
class AlternateBranch:
    """One branch of an alternate: its name and the type it accepts."""

    name: str
    type: str
    ifcond: IfCond | None = None


@dataclass
class Entity:
    """Anything with a name: types, commands, events."""

    name: str
    info: SourceInfo | None = field(default=None, kw_only=True)
    doc: Doc | None = field(default=None, kw_only=True)
    features: tuple[str, ...] = field(default=(), kw_only=True)
    ifcond: IfCond | None = field(default=None, kw_only=True)

    @property
    def deprecated(self) -> bool:
        """Whether the definition has the ``deprecated`` feature."""
        return "deprecated" in self.features

    @property
    def unstable(self) -> bool:
        """Whether the definition has the ``unstable`` feature."""
        return "unstable" in self.features


@dataclass
class BuiltinType(Entity):
    """A builtin; integer widths keep their range (introspection only says ``int``)."""

    json_type: JsonType = "value"
    minimum: int | None = None
    maximum: int | None = None

    meta: Literal["builtin"] = field(default="builtin", init=False)


@dataclass
class EnumType(Entity):
    """An enum.  ``prefix`` overrides the C prefix of its values; ``implicit``
    marks the ones no definition wrote (a simple union's tag enum, ``QType``)."""

    values: list[EnumValue] = field(default_factory=list)
    prefix: str | None = None
    implicit: bool = False

    meta: Literal["enum"] = field(default="enum", init=False)

    @property
    def names(self) -> list[str]:
        """The value names, in order."""
        return [v.name for v in self.values]


@dataclass
class ArrayType(Entity):
    """An array, named ``[ELEMENT]`` after the type of its elements."""

    element_type: str = ""

    meta: Literal["array"] = field(default="array", init=False)


@dataclass
class ObjectType(Entity):
    """A struct or a union, with base members flattened in as on the wire.

    For a union, ``tag`` names the discriminator member and each variant adds
    the members of its type; enum values without a variant add nothing.
    ``base`` is only informational (introspection does not know it).
    """

    members: list[Member] = field(default_factory=list)
    base: str | None = None
    tag: str | None = None
    variants: list[Variant] = field(default_factory=list)
    implicit: bool = False
    #: ``gen: false`` argument types accept members beyond these.
    open: bool = False

    meta: Literal["object"] = field(default="object", init=False)

    @property
    def is_union(self) -> bool:
        """Whether the type is a union (it has a tag)."""
        return self.tag is not None

    def member(self, name: str) -> Member | None:
        """The member called ``name`` (base members included), or None."""
        for m in self.members:
            if m.name == name:
                return m
        return None

    @property
    def empty(self) -> bool:
        """Whether the type has neither members nor variants (``{}`` on the wire)."""
        return not self.members and not self.variants


@dataclass
class AlternateType(Entity):
    """An alternate: a value of whichever branch type its JSON kind selects."""

    branches: list[AlternateBranch] = field(default_factory=list)

    meta: Literal["alternate"] = field(default="alternate", init=False)


TypeEntity: TypeAlias = BuiltinType | EnumType | ArrayType | ObjectType | AlternateType


@dataclass
class Command(Entity):
    """A command; ``arg_type``/``ret_type`` are None for no arguments / ``{}``."""

    arg_type: str | None = None
    ret_type: str | None = None
    boxed: bool = False
    gen: bool = True
    success_response: bool = True
    allow_oob: bool = False
    allow_preconfig: bool = False
    coroutine: bool = False

    meta: Literal["command"] = field(default="command", init=False)


@dataclass
class Event(Entity):
    """An event; ``arg_type`` is None when it carries no data."""

    arg_type: str | None = None
    boxed: bool = False

    meta: Literal["event"] = field(default="event", init=False)


SchemaOrigin: TypeAlias = Literal["qapi", "qapi-lenient", "legacy-2011", "introspection"]


@dataclass
class Schema:
    """A whole, resolved and checked schema.

    ``types`` holds every type including builtins and arrays, so any type
    name found in a member, command or event resolves through :meth:`type`.
    """

    types: dict[str, TypeEntity] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    origin: SchemaOrigin = "qapi"
    #: Type names are numbers (introspection as QEMU sends it).
    masked: bool = False
    files: list[str] = field(default_factory=list)
    pragmas: dict[str, object] = field(default_factory=dict)
    #: Where the schema was read from, for messages.
    source: str = ""
    #: What was accepted only because the QEMU of its time accepted it, one
    #: line each (empty for a schema today's rules accept as written).
    tolerated: list[str] = field(default_factory=list)

    def type(self, name: str) -> TypeEntity:
        """The type called ``name``.  Raises :class:`KeyError` when there is none."""
        try:
            return self.types[name]
        except KeyError:
            raise KeyError(f"type {name!r} is not defined") from None

    def object_type(self, name: str | None) -> ObjectType | None:
        """The object type ``name`` (None stays None).

        Raises :class:`KeyError` when no type has that name, and
        :class:`TypeError` when the type is not an object type.
        """
        if name is None:
            return None
        t = self.type(name)
        if not isinstance(t, ObjectType):
            raise TypeError(f"type {name!r} is a {t.meta}, not an object")
        return t

    def user_types(self) -> Iterator[TypeEntity]:
        """Types that are neither builtins nor arrays nor implicit."""
        for t in self.types.values():
            if isinstance(t, BuiltinType | ArrayType):
                continue
            if isinstance(t, ObjectType | EnumType) and t.implicit:
                continue
            yield t

    def summary(self) -> dict[str, object]:
        """The counts ``qmp-conform schema --summary`` prints.

        Structs and unions count user-defined object types (implicit argument
        and wrapper types excluded), so source schemas count what their
        authors wrote; introspection has no such distinction to draw beyond
        ``tag``.
        """
        counts = {"structs": 0, "unions": 0, "alternates": 0, "enums": 0}
        for t in self.user_types():
            if isinstance(t, ObjectType):
                counts["unions" if t.is_union else "structs"] += 1
            elif isinstance(t, AlternateType):
                counts["alternates"] += 1
            elif isinstance(t, EnumType):
                counts["enums"] += 1
        return {
            "origin": self.origin,
            "commands": len(self.commands),
            "events": len(self.events),
            **counts,
            "allow-oob": sorted(c.name for c in self.commands.values() if c.allow_oob),
        }

    def walk_types(self, roots: list[str]) -> list[str]:
        """Every type name reachable from ``roots``, each once, in visit order.

        Raises :class:`KeyError` when a root names no type.
        """
        seen: dict[str, None] = {}
        stack = list(reversed(roots))
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen[name] = None
            stack.extend(reversed(referenced_types(self.type(name))))
        return list(seen)


def referenced_types(t: TypeEntity) -> list[str]:
    """The type names ``t`` refers to directly."""
    if isinstance(t, ArrayType):
        return [t.element_type]
    if isinstance(t, ObjectType):
        return [m.type for m in t.members] + [v.type for v in t.variants]
    if isinstance(t, AlternateType):
        return [b.type for b in t.branches]
    return []
