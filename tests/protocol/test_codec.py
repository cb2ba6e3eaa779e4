"""encode (QEMU's output format), decode (client side) and json_equal."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.protocol import (
    DecodeError,
    Parsed,
    decode,
    decode_buffer,
    encode,
    encode_string,
    format_number,
    json_equal,
    parse_all,
)
from conformance.protocol.values import JSON


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.10000000000000001"),
        (1.0, "1"),
        (1.5, "1.5"),
        (2.0**64, "1.8446744073709552e+19"),
        (1e-7, "9.9999999999999995e-08"),
        (-0.0, "-0"),
        (math.inf, "inf"),
        (2**63, "9223372036854775808"),
        (2**64, "1.8446744073709552e+19"),  # an int QEMU cannot hold
        (-(2**63) - 1, "-9.2233720368547758e+18"),
        (10**400, "inf"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("é😀", '"\\u00E9\\uD83D\\uDE00"'),
        ('\b\f\n\r\t"\\', '"\\b\\f\\n\\r\\t\\"\\\\"'),
        ("/", '"/"'),
        ("\x00\x01\x1f\x7f", '"\\u0000\\u0001\\u001F\\u007F"'),
        ("\\u00e9", '"\\\\u00e9"'),  # a literal backslash-u stays lowercase
        ("\ud800", '"\\uFFFD"'),  # QEMU can't hold a lone surrogate
        ("\ufdd0\uffff", '"\\uFFFD\\uFFFD"'),
    ],
)
def test_encode_string(text: str, literal: str) -> None:
    assert encode_string(text) == literal


def test_encode_layout() -> None:
    msg: JSON = {"return": {"a": [1, {"b": None}], "c": True}, "id": "x"}
    assert encode(msg) == b'{"return": {"a": [1, {"b": null}], "c": true}, "id": "x"}\r\n'
    assert encode([], terminator=b"\n") == b"[]\n"
    assert encode({}) == b"{}\r\n"


def test_encode_qdict_order() -> None:
    # Observed: id {"b":1,"a":2,"micro":1,"minor":2} echoed as minor, micro, a, b.
    value = {"b": 1, "a": 2, "micro": 1, "minor": 2}
    assert encode(value, key_order="qdict", terminator=b"") == (
        b'{"minor": 2, "micro": 1, "a": 2, "b": 1}'
    )
    error = {"error": {"desc": "d", "class": "c"}, "id": 1}
    assert encode(error, key_order="qdict", terminator=b"") == (
        b'{"id": 1, "error": {"class": "c", "desc": "d"}}'
    )


def test_encode_deep() -> None:
    value: JSON = []
    for _ in range(100_000):
        value = [value]
    data = encode(value)
    assert data.startswith(b"[" * 100_001) and data.endswith(b"]\r\n")
    assert json_equal(decode(data), value)


def test_encode_rejects_non_json() -> None:
    with pytest.raises(TypeError):
        encode({"a": object()})  # type: ignore[dict-item]


def test_decode_basic() -> None:
    assert decode(b'{"return": {}, "id": 1}\r\n') == {"return": {}, "id": 1}
    assert decode('{"id": inf}') == {"id": math.inf}
    assert decode(b"[-inf]") == [-math.inf]


def test_decode_deep_echo() -> None:
    line = b'{"return": {}, "id": ' + b"[" * 1023 + b"]" * 1023 + b"}\r\n"
    value = decode(line)
    assert isinstance(value, dict)
    depth = 0
    node = value["id"]
    while isinstance(node, list) and node:
        node = node[0]
        depth += 1
    assert depth == 1022


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"{",
        b"[1,]",
        b"{'a': 1}",
        b"NaN",
        b"Infinity",
        b"01",
        b"1.",
        b'{"a" 1}',
        b"[1] x",
        b"\xff",
        b'"\x01"',
        b"[" * 5000,
        b"{" * 5000,
        b'{"a":' * 3000,
        b"tru",
    ],
)
def test_decode_errors_are_decode_errors(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(bad)


def test_decode_strict_nonfinite() -> None:
    with pytest.raises(DecodeError):
        decode(b"inf", allow_nonfinite=False)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_decode_never_raises_other_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


def test_decode_buffer() -> None:
    buf = b'{"return": {}}\r\n\xff{"return": 5}\n{"bad"\r\n{"part'
    lines, rest = decode_buffer(buf)
    assert rest == b'{"part'
    assert [line.value for line in lines] == [{"return": {}}, {"return": 5}, None]
    assert [line.sentinel for line in lines] == [False, True, False]
    assert lines[2].error is not None


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True),
        ([1, 2], [2, 1], False),
        (1.0, 1, True),
        (2**64, 1.8446744073709552e19, True),
        (-(2**63) - 1, -9.2233720368547758e18, True),
        (2**63 + 1, 9.223372036854775808e18, False),  # QEMU keeps it exactly
        (12345678901234567890123456789, 1.2345678901234568e28, True),
        (0.1, 0.10000000000000001, True),
        (True, 1, False),
        (False, 0, False),
        (None, False, False),
        ("1", 1, False),
        ({}, [], False),
        (math.nan, math.nan, True),
        ({"a": None}, {"b": None}, False),
    ],
)
def test_json_equal(a: JSON, b: JSON, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal


def test_json_equal_deep() -> None:
    a: JSON = 1
    b: JSON = 1.0
    for _ in range(50_000):
        a, b = {"x": [a]}, {"x": [b]}
    assert json_equal(a, b)


# -------- round trips: value -> our encoder -> QEMU's parser / client decoder
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_encode_decode_round_trip(value: JSON) -> None:
    data = encode(value)
    assert data.isascii() and data.endswith(b"\r\n") and b"\n" not in data[:-2]
    back = decode(data)
    clean = decode(encode(back))  # surrogates/noncharacters became U+FFFD once
    assert json_equal(back, clean)
    if "\\uFFFD" not in data.decode():
        assert json_equal(value, back)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_encode_then_qemu_parser(value: JSON) -> None:
    data = encode(value, terminator=b"")
    items = parse_all(data + b" ")
    assert len(items) == 1 and isinstance(items[0], Parsed)
    assert json_equal(items[0].value, decode(data))
    # Echoing through QEMU twice changes nothing more than once (-0.0 prints
    # as "-0", which QEMU then reads as the integer 0).
    once = encode(items[0].value, terminator=b"")
    (again,) = parse_all(once + b" ")
    assert isinstance(again, Parsed)
    assert encode(again.value, terminator=b"") == once


def test_python_json_agrees_on_plain_values() -> None:
    value = {"a": [1, 2.5, "x\u00e9"], "b": None}
    assert json.loads(encode(value)) == value
