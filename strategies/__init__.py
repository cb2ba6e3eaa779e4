"""Hypothesis strategies compiled from a QAPI schema model.

Valid values, arguments and requests; invalid ones, each labelled with the
rule it breaks; raw byte-level corruptions.  Everything is lazy (types are
compiled when first asked for), cached per schema, and shrinks with
Hypothesis's own combinators.  See ``docs/strategies.md``.

>>> from conformance.qapi import load
>>> import strategies
>>> schema = load("../shared/corpus/introspection/qemu-7.2.json")  # doctest: +SKIP
>>> strategies.arguments(schema, "blockdev-add").example()  # doctest: +SKIP
{'driver': 'null-co', 'node-name': 'É'}
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from conformance.qapi.model import Schema
from strategies.compile import Compiled, compiled
from strategies.invalid import (
    ARGUMENT_LABELS,
    ERROR_CLASSES,
    NEGOTIATION_RULES,
    REQUEST_RULES,
    Invalid,
    invalid_arguments,
    label_still_holds,
)
from strategies.json_values import ids, json_values
from strategies.raw import RAW_ID_PREFIX, RAW_RULES, raw_inputs, raw_noise
from strategies.requests import invalid_requests, requests

__all__ = [
    "ARGUMENT_LABELS",
    "ERROR_CLASSES",
    "NEGOTIATION_RULES",
    "RAW_ID_PREFIX",
    "RAW_RULES",
    "REQUEST_RULES",
    "Compiled",
    "Invalid",
    "arguments",
    "compiled",
    "ids",
    "invalid_arguments",
    "invalid_requests",
    "json_values",
    "label_still_holds",
    "raw_inputs",
    "raw_noise",
    "requests",
    "values",
]


def values(model: Schema, type_name: str, *, depth: int = 4) -> st.SearchStrategy[Any]:
    """Valid values of QAPI type ``type_name`` (``[T]`` for arrays of T).

    ``depth`` is the budget of nested levels through recursive types.
    Raises :class:`KeyError` when ``model`` has no type ``type_name``.

    >>> strategies.values(schema, "str").example()  # doctest: +SKIP
    '\\U0001f600"'
    """
    return compiled(model, depth=depth).value(type_name)


def arguments(model: Schema, command: str, *, depth: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    """Valid ``arguments`` objects of ``command``, optional members present
    and absent; ``gen: false`` commands also get extra members.

    Raises :class:`KeyError` when ``model`` has no command ``command``.

    >>> strategies.arguments(schema, "qom-list").example()  # doctest: +SKIP
    {'path': ''}
    """
    return compiled(model, depth=depth).arguments(command)
