"""Whole requests: valid ones in each dialect, and request-level negatives.

Dialects (see DESIGN.md): ``qemu`` sends ``execute`` or, with OOB
negotiated, ``exec-oob`` for commands that allow it; ``oob-draft`` (QEMU
2.12's 2018 draft) marks out-of-band requests with
``"control": {"run-oob": true}`` beside ``execute``.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from conformance.protocol.dialects import DEFAULT, Dialect, resolve
from conformance.protocol.messages import MISSING
from conformance.qapi.model import Schema
from strategies.compile import compiled, member_names
from strategies.invalid import REQUEST_RULES, Invalid, invalid_arguments, values_of_kind
from strategies.json_values import ids, json_values


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


def requests(model: Schema, commands: list[str] | None = None, *,
             dialect: Dialect | str = DEFAULT,
             oob: bool = False, with_ids: bool | None = None, depth: int = 4
             ) -> st.SearchStrategy[dict[str, Any]]:
    """Valid requests for ``commands`` (default: all) of ``model``.

    With ``oob`` (negotiated), commands with ``allow-oob`` are sometimes sent
    out of band: ``exec-oob`` in the ``qemu`` dialect, ``control.run-oob`` in
    ``oob-draft``.  ``with_ids``: True always, False never, None either.

    >>> from conformance.qapi import load
    >>> schema = load("../shared/corpus/introspection/qemu-7.2.json")  # doctest: +SKIP
    >>> requests(schema, ["qom-list"], with_ids=False).example()  # doctest: +SKIP
    {'execute': 'qom-list', 'arguments': {'path': '\\x00'}}
    """
    c = compiled(model, depth=depth)
    names = _commands(model, commands)
    style = resolve(dialect).oob_style

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        name = draw(st.sampled_from(names))
        args = draw(c.arguments(name))
        out_of_band = oob and model.commands[name].allow_oob and draw(st.booleans())
        if out_of_band and style == "exec-oob":
            message: dict[str, Any] = {"exec-oob": name}
        else:
            message = {"execute": name}
        if args or draw(st.booleans()):  # type: ignore[arg-type]
            message["arguments"] = args
        if out_of_band and style == "control":
            message["control"] = {"run-oob": True}
        return _with_id(message, draw(_id_choice(with_ids)))
    return build()


def invalid_requests(model: Schema, commands: list[str] | None = None, *, oob: bool = False,
                     labels: list[str] | None = None, depth: int = 4
                     ) -> st.SearchStrategy[Invalid]:
    """Requests that break one rule each, labelled (``REQUEST_RULES`` plus the
    argument labels of :mod:`strategies.invalid`), in the ``qemu`` dialect.

    ``oob`` says whether OOB was negotiated on the connection they go to:
    without it ``exec-oob`` is itself the violation (Q28); with it,
    ``exec-oob`` of a command without ``allow-oob`` is (Q27).  ``labels``
    restricts the mix (``"arguments"`` stands for every argument label).

    >>> ex = invalid_requests(schema, labels=["not-an-object"]).example()  # doctest: +SKIP
    >>> ex.label, ex.rule  # doctest: +SKIP
    ('not-an-object', 'Q18')
    """
    names = _commands(model, commands)
    not_oob = [n for n in names if not model.commands[n].allow_oob]
    wanted = set(labels) if labels is not None else {*REQUEST_RULES, "arguments"}
    if oob:
        wanted.discard("exec-oob-without-oob")
    else:
        wanted.discard("exec-oob-not-allowed")
    if not not_oob:
        wanted.discard("exec-oob-not-allowed")
    options: list[st.SearchStrategy[Invalid]] = []
    command = st.sampled_from(names)
    ident = _id_choice(None)

    def make(label: str, message: Any) -> Invalid:
        return Invalid(label, REQUEST_RULES[label], message)

    if "not-an-object" in wanted:
        options.append(st.sampled_from(["null", "boolean", "int", "number", "string", "array"])
                       .flatmap(values_of_kind).map(lambda v: make("not-an-object", v)))
    if "missing-execute" in wanted:
        options.append(st.tuples(ident, st.dictionaries(st.just("arguments"),
                                                        st.just({}), max_size=1))
                       .map(lambda x: make("missing-execute", _with_id(dict(x[1]), x[0]))))
    if "execute-not-string" in wanted:
        options.append(st.tuples(st.sampled_from(["null", "boolean", "int", "number", "object",
                                                  "array"]).flatmap(values_of_kind), ident)
                       .map(lambda x: make("execute-not-string",
                                           _with_id({"execute": x[0]}, x[1]))))
    if "arguments-not-object" in wanted:
        options.append(st.tuples(command, st.sampled_from(
            ["null", "boolean", "int", "number", "string", "array"]).flatmap(values_of_kind),
            ident).map(lambda x: make("arguments-not-object",
                                      _with_id({"execute": x[0], "arguments": x[1]}, x[2]))))
    if "unknown-top-level-member" in wanted:
        extra = st.one_of(member_names.filter(
            lambda k: k not in {"execute", "exec-oob", "arguments", "id"}), st.just("control"))
        options.append(st.tuples(command, extra, json_values(4), ident).map(
            lambda x: make("unknown-top-level-member",
                           _with_id({"execute": x[0], x[1]: x[2]}, x[3]))))
    if "exec-oob-without-oob" in wanted:
        options.append(st.tuples(command, ident).map(
            lambda x: make("exec-oob-without-oob", _with_id({"exec-oob": x[0]}, x[1]))))
    if "exec-oob-not-allowed" in wanted:
        options.append(st.tuples(st.sampled_from(not_oob), ident).map(
            lambda x: make("exec-oob-not-allowed", _with_id({"exec-oob": x[0]}, x[1]))))
    if "duplicate-key" in wanted:
        options.append(st.tuples(command, st.sampled_from(["execute", "id", "arguments"]))
                       .map(lambda x: _duplicate(*x)))
    if "arguments" in wanted:
        c = compiled(model, depth=depth)
        usable = [n for n in names
                  if model.commands[n].arg_type is not None or n not in c.lenient_commands]
        if usable:
            options.append(st.sampled_from(usable).flatmap(
                lambda n: invalid_arguments(model, n, depth=depth)))
    if not options:
        raise ValueError(f"no request-level violation fits {sorted(wanted)}")
    return st.one_of(options)


def _duplicate(command: str, key: str) -> Invalid:
    """A request with ``key`` repeated (Q5): only expressible as bytes."""
    name = json.dumps(command)
    body = {
        "execute": f'"execute": {name}, "execute": {name}',
        "id": f'"execute": {name}, "id": 1, "id": 2',
        "arguments": f'"execute": {name}, "arguments": {{}}, "arguments": {{}}',
    }[key]
    return Invalid("duplicate-key", REQUEST_RULES["duplicate-key"], raw=("{" + body + "}")
                   .encode(), command=command, detail=key)


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
    return False
