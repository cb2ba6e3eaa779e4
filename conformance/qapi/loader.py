"""``load(source)``: any schema source in, one model out.

The format is recognised from the content, not the file name: introspection
is strict JSON (a SchemaInfo list, or a whole ``{"return": [...]}`` reply); a
file whose top-level expressions are lists is the 2011 list form; anything
else is QAPI source, read strictly first (today's rules) and, if that fails,
again in lenient mode: what old releases' QEMU accepted (missing and trailing
commas, old names of ``any``, ``'yes'``/``'no'`` flags, QEMU 1.7's ``'str'``
discriminator), each noted in ``Schema.tolerated`` so callers can say so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from conformance.qapi import introspection, legacy
from conformance.qapi.build import build
from conformance.qapi.errors import QAPIError
from conformance.qapi.model import Schema
from conformance.qapi.source import _FileParser, read_tree

#: Where a QEMU source tree keeps its main schema, in the order tried.
TREE_ENTRY_POINTS = ("qapi-schema.json", "qapi/qapi-schema.json")

Leniency = Literal["auto", "strict", "lenient"]
#: The note a schema read in lenient mode carries in ``Schema.tolerated``.
LENIENT_NOTE = "missing or trailing commas accepted (QEMU 1.x's parser let them through)"


def find_entry_point(directory: str) -> str:
    """The main schema file of the QEMU source tree at ``directory``.

    Raises :class:`QAPIError` when the folder holds none of :data:`TREE_ENTRY_POINTS`.
    """
    for rel in TREE_ENTRY_POINTS:
        candidate = os.path.join(directory, rel)
        if os.path.isfile(candidate):
            return candidate
    raise QAPIError(directory, "no " + " or ".join(TREE_ENTRY_POINTS) + " in this folder")


def read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    """(path, text) of the schema at ``source``: a file, or a tree's folder
    (its entry point).

    Raises :class:`QAPIError` when there is no entry point or the file cannot
    be read as UTF-8 text.
    """
    path = os.fspath(source)
    if os.path.isdir(path):
        path = find_entry_point(path)
    try:
        return path, Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise QAPIError(path, f"can't read schema: {reason}") from None


def load(
    source: str | os.PathLike[str] | list[Any] | dict[str, Any], *, leniency: Leniency = "auto"
) -> Schema:
    """The model of ``source``: a QAPI file or tree folder, an introspection
    file, or an already parsed introspection list (or ``{"return": [...]}``).

    Raises :class:`QAPIError` with a ``file:line: message`` text for anything
    that is not a readable, valid schema.
    """
    if isinstance(source, list | dict):
        return introspection.read(source)
    path, text = read_source(source)
    intro = as_introspection(text)
    if intro is not None:
        return introspection.read(intro, source=path)
    if leniency == "strict":
        return _load_source(path, text, lenient=False)
    if leniency == "lenient":
        return _load_source(path, text, lenient=True)
    try:
        return _load_source(path, text, lenient=False)
    except QAPIError as strict_error:
        # An old release's schema: read it as its own QEMU did, and say so
        # (Schema.tolerated); a schema that fails either way gets today's error.
        try:
            return _load_source(path, text, lenient=True)
        except QAPIError:
            raise strict_error from None


def as_introspection(text: str) -> Any:
    """The SchemaInfo list ``text`` holds, or None when it is not introspection."""
    stripped = text.lstrip()
    if not stripped.startswith(("[", "{")) or '"meta-type"' not in text[:65536]:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("return"), list):
        value = value["return"]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(e, dict) and "meta-type" in e for e in value[:8])
    ):
        return value
    return None


def _load_source(path: str, text: str, *, lenient: bool) -> Schema:
    top = _FileParser(text, path, lenient).top_level()
    if any(isinstance(value, list) for value, _, _ in top):
        schema = build(legacy.translate(top), origin="legacy-2011", lenient=lenient)
        schema.files = [path]
    else:
        tree = read_tree(path, lenient=lenient)
        schema = build(
            tree.exprs, origin="qapi-lenient" if tree.lenient_used else "qapi", lenient=lenient
        )
        if tree.lenient_used:
            schema.tolerated.insert(0, LENIENT_NOTE)
        schema.files = tree.files
        schema.pragmas = tree.pragmas
    schema.source = path
    return schema
