"""Whole requests: valid ones in each dialect, and request-level negatives.

Dialects (see DESIGN.md): ``qemu`` sends ``execute`` or, with OOB
negotiated, ``exec-oob`` for commands that allow it; ``oob-draft`` (QEMU
2.12's 2018 draft) marks out-of-band requests with
``"control": {"run-oob": true}`` beside ``execute``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from conformance.protocol.dialects import DEFAULT, Dialect, resolve
from conformance.protocol.messages import MISSING
from conformance.protocol.spellings import (
    NUMBER_SPELLINGS,
    SPELLINGS,
    STRING_SPELLINGS,
    Spelling,
)
from conformance.qapi.model import BuiltinType, EnumType, Schema
from strategies.compile import Compiled, compiled, member_names
from strategies.invalid import (
    NEGOTIATION_RULES,
    REQUEST_RULES,
    Invalid,
    invalid_arguments,
    values_of_kind,
)
from strategies.json_values import ids, json_strings, json_values


def _commands(model: Schema, commands: list[str] | None) -> list[str]:
    names = sorted(model.commands) if commands is None else list(commands)
    if not names:
        raise ValueError("no commands to build requests for")
    return names


def _with_id(message: dict[str, Any], ident: Any) -> dict[str, Any]:
    if ident is not MISSING:
        message["id"] = ident
    return message


def _id_choice(with_ids: bool | None) -> st.SearchStrategy[Any]:
    if with_ids is None:
        return st.one_of(st.just(MISSING), ids())
    return ids() if with_ids else st.just(MISSING)


_BOOLEANS: st.SearchStrategy[bool] = st.booleans()


def requests(
    model: Schema,
    commands: list[str] | None = None,
    *,
    dialect: Dialect | str = DEFAULT,
    oob: bool = False,
    with_ids: bool | None = None,
    depth: int = 4,
) -> st.SearchStrategy[dict[str, Any]]:
    """Valid requests for ``commands`` (default: all) of ``model``.

    With ``oob`` (negotiated), commands with ``allow-oob`` are sometimes sent
    out of band: ``exec-oob`` in the ``qemu`` dialect, ``control.run-oob`` in
    ``oob-draft``.  ``with_ids``: True always, False never, None either.

    Raises :class:`ValueError` when there is no command to choose from (an
    empty ``commands``, or a schema without commands); a name in ``commands``
    that ``model`` does not define raises :class:`KeyError` when drawn.

    >>> from conformance.qapi import load
    >>> schema = load("../shared/corpus/introspection/qemu-7.2.json")  # doctest: +SKIP
    >>> requests(schema, ["qom-list"], with_ids=False).example()  # doctest: +SKIP
    {'execute': 'qom-list', 'arguments': {'path': '\\x00'}}
    """
    c = compiled(model, depth=depth)
    names = _commands(model, commands)
    style = resolve(dialect).oob_style
    # Built once: a campaign draws requests by the million.
    name_choice = st.sampled_from(names)
    id_choice = _id_choice(with_ids)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        name = draw(name_choice)
        args = draw(c.arguments(name))
        out_of_band = oob and model.commands[name].allow_oob and draw(_BOOLEANS)
        if out_of_band and style == "exec-oob":
            message: dict[str, Any] = {"exec-oob": name}
        else:
            message = {"execute": name}
        empty_too: bool = not args and draw(_BOOLEANS)  # as often as none
        if args or empty_too:
            message["arguments"] = args
        if out_of_band and style == "control":
            message["control"] = {"run-oob": True}
        return message if with_ids is False else _with_id(message, draw(id_choice))

    return build()


#: Names no schema defines (QAPI names carry no ``qc-no-such-`` prefix); one
#: draw each, so they cost a campaign little.
unknown_command_names: st.SearchStrategy[str] = st.integers(0, (1 << 20) - 1).map(
    "qc-no-such-{:x}".format
)
#: Capability names that are spelled almost like a real one, then any string.
_CAPABILITY_EDGES = ("OOB", "oob ", "", "qc-no-such-cap")


def _labels_for(
    names: list[str], model: Schema, *, negotiated: bool, oob: bool, labels: list[str] | None
) -> set[str]:
    """The requested labels that can be broken in this connection state."""
    if not negotiated:
        possible = set(NEGOTIATION_RULES)
    else:
        possible = {*REQUEST_RULES, "arguments"}
        possible.discard("exec-oob-not-allowed" if not oob else "exec-oob-without-oob")
        if all(model.commands[n].allow_oob for n in names):
            possible.discard("exec-oob-not-allowed")
    return possible if labels is None else possible & set(labels)


def invalid_requests(
    model: Schema,
    commands: list[str] | None = None,
    *,
    oob: bool = False,
    negotiated: bool = True,
    labels: list[str] | None = None,
    with_ids: bool | None = None,
    depth: int = 4,
) -> st.SearchStrategy[Invalid]:
    """Requests that break one rule each, labelled (``REQUEST_RULES`` plus the
    argument labels of :mod:`strategies.invalid`), in the ``qemu`` dialect.
    ``with_ids`` as for :func:`requests` (a caller that numbers requests
    itself passes False and saves drawing ids it would replace).

    The connection's state decides what is a violation, so it is passed in.
    ``negotiated`` False means negotiation mode: only ``NEGOTIATION_RULES``
    apply there (any command but ``qmp_capabilities`` is refused, Q10; so is
    an unknown capability, Q14).  ``oob`` says whether OOB was negotiated:
    without it ``exec-oob`` is itself the violation (Q28); with it,
    ``exec-oob`` of a command without ``allow-oob`` is (Q27).  ``labels``
    restricts the mix (``"arguments"`` stands for every argument label);
    labels that cannot be broken in the given state are left out.

    Raises :class:`ValueError` when no requested label fits the state or
    ``commands`` is empty, and :class:`KeyError` when ``commands`` names a
    command ``model`` does not define.

    >>> ex = invalid_requests(schema, labels=["not-an-object"]).example()  # doctest: +SKIP
    >>> ex.label, ex.rule  # doctest: +SKIP
    ('not-an-object', 'Q18')
    """
    names = _commands(model, commands)
    wanted = _labels_for(names, model, negotiated=negotiated, oob=oob, labels=labels)
    not_oob = [n for n in names if not model.commands[n].allow_oob]
    # Without OOB, exec-oob is best tried on a command that allows it: then
    # only the missing negotiation makes the request wrong.
    oob_first = [n for n in names if model.commands[n].allow_oob] or names
    options: list[st.SearchStrategy[Invalid]] = []
    command = st.sampled_from(names)

    def make(label: str, message: Any) -> Invalid:
        return Invalid(label, REQUEST_RULES.get(label) or NEGOTIATION_RULES[label], message)

    def named(
        label: str, name_choice: st.SearchStrategy[str], *, key: str = "execute"
    ) -> st.SearchStrategy[Invalid]:
        return name_choice.map(lambda name: make(label, {key: name}))

    if "not-an-object" in wanted:
        options.append(
            st.sampled_from(["null", "boolean", "int", "number", "string", "array"])
            .flatmap(values_of_kind)
            .map(lambda v: make("not-an-object", v))
        )
    if "missing-execute" in wanted:
        options.append(
            st.dictionaries(st.just("arguments"), st.just({}), max_size=1).map(
                lambda members: make("missing-execute", dict(members))
            )
        )
    if "execute-not-string" in wanted:
        options.append(
            named(
                "execute-not-string",
                st.sampled_from(["null", "boolean", "int", "number", "object", "array"]).flatmap(
                    values_of_kind
                ),
            )
        )
    if "arguments-not-object" in wanted:
        options.append(
            st.tuples(
                command,
                st.sampled_from(["null", "boolean", "int", "number", "string", "array"]).flatmap(
                    values_of_kind
                ),
            ).map(lambda x: make("arguments-not-object", {"execute": x[0], "arguments": x[1]}))
        )
    if "unknown-top-level-member" in wanted:
        extra = st.one_of(
            member_names.filter(lambda k: k not in {"execute", "exec-oob", "arguments", "id"}),
            st.just("control"),
        )
        options.append(
            st.tuples(command, extra, json_values(2, 3)).map(
                lambda x: make("unknown-top-level-member", {"execute": x[0], x[1]: x[2]})
            )
        )
    if "exec-oob-without-oob" in wanted:
        options.append(named("exec-oob-without-oob", st.sampled_from(oob_first), key="exec-oob"))
    if "exec-oob-not-allowed" in wanted:
        options.append(named("exec-oob-not-allowed", st.sampled_from(not_oob), key="exec-oob"))
    if "duplicate-key" in wanted:
        options.append(
            st.tuples(command, st.sampled_from(["execute", "id", "arguments"])).map(
                lambda x: _duplicate(*x)
            )
        )
    if "unknown-command" in wanted:
        options.append(named("unknown-command", unknown_command_names))
    if "repeat-negotiation" in wanted:
        options.append(named("repeat-negotiation", st.just("qmp_capabilities")))
    if "command-before-negotiation" in wanted:
        others = [n for n in names if n != "qmp_capabilities"]
        before = (
            st.sampled_from(others) | unknown_command_names if others else (unknown_command_names)
        )
        options.append(named("command-before-negotiation", before))
    if "unknown-capability" in wanted:
        known = _capabilities(model)
        caps = st.one_of(st.sampled_from(_CAPABILITY_EDGES), json_strings).filter(
            lambda cap: cap not in known
        )
        options.append(
            caps.map(
                lambda cap: make(
                    "unknown-capability",
                    {"execute": "qmp_capabilities", "arguments": {"enable": [cap]}},
                )
            )
        )
    if "arguments" in wanted:
        c = compiled(model, depth=depth)
        usable = [
            n
            for n in names
            if model.commands[n].arg_type is not None or n not in c.lenient_commands
        ]
        if usable:
            options.append(
                st.sampled_from(usable).flatmap(lambda n: invalid_arguments(model, n, depth=depth))
            )
    if not options:
        raise ValueError(f"no request-level violation fits {sorted(wanted)}")
    if with_ids is False:
        return st.one_of(options)
    # One id draw for all labels (a request object gets it; bytes cannot).
    return st.tuples(st.one_of(options), _id_choice(with_ids)).map(_identified)


def _identified(pair: tuple[Invalid, Any]) -> Invalid:
    example, ident = pair
    if ident is MISSING or example.raw is not None or not isinstance(example.message, dict):
        return example
    return replace(example, message=_with_id(dict(example.message), ident))


def _capabilities(model: Schema) -> frozenset[str]:
    """The capability names the schema defines (``oob`` where it has no
    ``QMPCapability`` enum, as in releases before 2.12)."""
    found = model.types.get("QMPCapability")
    return frozenset(found.names) if isinstance(found, EnumType) else frozenset({"oob"})


def _duplicate(command: str, key: str) -> Invalid:
    """A request with ``key`` repeated (Q5): only expressible as bytes."""
    name = json.dumps(command)
    body = {
        "execute": f'"execute": {name}, "execute": {name}',
        "id": f'"execute": {name}, "id": 1, "id": 2',
        "arguments": f'"execute": {name}, "arguments": {{}}, "arguments": {{}}',
    }[key]
    return Invalid(
        "duplicate-key",
        REQUEST_RULES["duplicate-key"],
        raw=("{" + body + "}").encode(),
        command=command,
        detail=key,
    )


def _has_duplicate_key(raw: bytes) -> bool:
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        keys = [k for k, _ in items]
        found |= len(keys) != len(set(keys))
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        return False
    return found


def request_label_holds(model: Schema, ex: Invalid) -> bool:
    """The re-check of request-level labels (see ``label_still_holds``)."""
    m = ex.message
    if ex.label == "duplicate-key":
        return ex.raw is not None and _has_duplicate_key(ex.raw)
    if ex.label == "not-an-object":
        return not isinstance(m, dict)
    if not isinstance(m, dict):
        return False
    if ex.label == "missing-execute":
        return "execute" not in m and "exec-oob" not in m
    if ex.label == "execute-not-string":
        return "execute" in m and not isinstance(m["execute"], str)
    if ex.label == "arguments-not-object":
        return "arguments" in m and not isinstance(m["arguments"], dict)
    if ex.label == "unknown-top-level-member":
        return bool(set(m) - {"execute", "exec-oob", "arguments", "id"})
    if ex.label == "exec-oob-without-oob":
        return isinstance(m.get("exec-oob"), str)
    if ex.label == "exec-oob-not-allowed":
        cmd = model.commands.get(m.get("exec-oob", ""))
        return cmd is not None and not cmd.allow_oob
    name = m.get("execute")
    if ex.label == "unknown-command":
        return isinstance(name, str) and name not in model.commands
    if ex.label == "repeat-negotiation":
        return name == "qmp_capabilities"
    if ex.label == "command-before-negotiation":
        return isinstance(name, str) and name != "qmp_capabilities"
    if ex.label == "unknown-capability":
        enable = ex.arguments.get("enable") if isinstance(ex.arguments, dict) else None
        return (
            name == "qmp_capabilities"
            and isinstance(enable, list)
            and any(cap not in _capabilities(model) for cap in enable)
        )
    return False


_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def _admitted(c: Compiled, type_name: str) -> tuple[Spelling, ...]:
    """The spellings a value of type ``type_name`` may be written in and stay
    valid: integers as integers within the type's range, numbers and
    strings in every spelling of their class, anything for ``any``."""
    t = c.schema.type(type_name)
    if not isinstance(t, BuiltinType):
        return ()
    if t.json_type == "int":
        lo, hi = c.int_range(t)
        return tuple(
            s
            for s in NUMBER_SPELLINGS
            if _INTEGER_TEXT.fullmatch(s.text) and lo <= int(s.text) <= hi
        )
    if t.json_type == "number":
        return NUMBER_SPELLINGS
    if t.json_type == "string":
        return STRING_SPELLINGS
    if t.json_type == "value":
        return SPELLINGS
    return ()


def spellable_members(model: Schema, command: str) -> list[tuple[str, Spelling]]:
    """Each top-level argument of ``command`` whose type admits a value
    written as no encoder writes it, with each spelling it admits (RFC 8259's
    grammar: exponents, leading zeros of exponents, int64 and double edges,
    every escape, surrogate pairs; see ``protocol.spellings``).  A request
    with one of them is as valid as with the value json.dumps writes, except
    for the spellings RFC 8259 lets a reader refuse (``Spelling.limit``)."""
    c = compiled(model)
    cmd = model.commands[command]
    args = model.object_type(cmd.arg_type) if cmd.arg_type else None
    if args is None:
        return []
    return [(m.name, s) for m in args.members for s in _admitted(c, m.type)]
