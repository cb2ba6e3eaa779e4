"""The protocol core's fast paths give exactly what its general paths give.

The stream decodes plain messages in C and the encoder writes common values
recursively; both fall back to the exact (QEMU-faithful) code for anything
else.  These tests hold the two paths to the same output, byte for byte.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.protocol import JSONStream, encode
from conformance.protocol.encoding import KeyOrder, _encode_iterative
from conformance.protocol.stream import BytesLike, Item, Parsed
from conformance.protocol.values import JSON


class _ExactStream(JSONStream):
    """A stream that never takes the fast path."""

    def _fast(self, data: BytesLike, stop_early: bool) -> int:
        return 0


def _summary(items: list[Item]) -> list[tuple[object, ...]]:
    # repr tells 1 from 1.0 and True; encode tells -0.0 from 0.0.
    return [
        ("value", i.raw, repr(i.value), encode(i.value, key_order="qdict"))
        if isinstance(i, Parsed)
        else ("error", i.raw, i.desc, i.kind)
        for i in items
    ]


_KEYS = st.sampled_from(["execute", "arguments", "id", "a", "b", "exec-oob"]) | st.text(max_size=4)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["{", "}", "[", "a:b", 'x"y', "\\", "é", "\x7f"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
#: Number spellings the two readers must tell apart.
_ODD_NUMBERS = [
    "1.0",
    "1e2",
    "0e1",
    "0E+1",
    "-0",
    "-0.0",
    "01",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" * 400 + ".5",
    "1" * 18,
    "1" * 19,
    "-" + "9" * 19,
    "18446744073709551615",
    "18446744073709551616",
    "0.5e-3",
]


@st.composite
def _spelled(draw: st.DrawFn, value: JSON) -> str:
    """``value`` as JSON text, with the spellings a client may use."""
    if isinstance(value, dict):
        pairs = [(json.dumps(k, ensure_ascii=draw(st.booleans())), v) for k, v in value.items()]
        if pairs and draw(st.integers(0, 9)) == 0:
            pairs.append(pairs[0])  # a duplicate member
        ws = draw(st.sampled_from(["", " ", "\n", "\t", " \r\n"]))
        members = [f"{k}{ws}:{ws}{draw(_spelled(v))}" for k, v in pairs]
        return "{" + ws + ("," + ws).join(members) + ws + "}"
    if isinstance(value, list):
        return "[" + ",".join(draw(_spelled(v)) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool) and draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(_ODD_NUMBERS))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=draw(st.booleans()))
    return json.dumps(value)


@st.composite
def _inputs(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        message = draw(st.dictionaries(_KEYS, _VALUES, max_size=4))
        parts.append(draw(st.sampled_from(["", " ", "\n", "\r\n\t"])) + draw(_spelled(message)))
        if draw(st.integers(0, 5)) == 0:
            parts.append(draw(st.sampled_from(["}", "garbage", "[", "{", "'x'", "1", " "])))
    return "".join(parts).encode("utf-8", "surrogatepass")


_ORDERS: list[KeyOrder] = ["qdict", "insertion"]
_LIMITS = st.sampled_from(
    [
        {},
        {"max_nesting": 2},
        {"max_token_count": 6},
        {"max_token_size": 20},
        {"max_nesting": 3, "max_token_count": 10, "max_token_size": 30},
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    _inputs(),
    _LIMITS,
    st.booleans(),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=5),
)
def test_stream_fast_path_reads_as_the_exact_one(
    data: bytes, limits: dict[str, int], rfc8259: bool, sizes: list[int]
) -> None:
    fast = JSONStream(rfc8259=rfc8259, **limits)
    exact = _ExactStream(rfc8259=rfc8259, **limits)
    assert _summary(fast.feed(data)) == _summary(exact.feed(data))
    # In pieces, as the monitor reads: one item at a time, from a window.
    fast = JSONStream(rfc8259=rfc8259, **limits)
    exact = _ExactStream(rfc8259=rfc8259, **limits)
    pos = 0
    index = 0
    while pos < len(data):
        window = bytearray(data[pos : pos + sizes[index % len(sizes)]])
        got, used = fast.feed_some(window)
        want, used_exact = exact.feed_some(window)
        assert (_summary(got), used) == (_summary(want), used_exact)
        pos += used
        index += 1


def test_stream_fast_path_takes_plain_requests() -> None:
    data = b' {"execute": "query-version", "arguments": {"a": [1, -2.5, true, null]}, "id": "x"}'
    stream = JSONStream(rfc8259=True)
    assert stream._fast(data, True) == len(data)
    assert stream._items == [
        Parsed(
            {"execute": "query-version", "arguments": {"a": [1, -2.5, True, None]}, "id": "x"},
            data[1:],
        )
    ]
    # What QEMU reads differently from Python's decoder is left to the exact path.
    for text in (b'{"a":1,"a":2}', b'{"a":1e5}', b'{"a":"\\u00e9"}', b'{"a":NaN}', b"{'a':1}"):
        assert JSONStream()._fast(text, True) == 0, text
    assert JSONStream()._fast(b'{"a":' + b"9" * 19 + b"}", True) == 0


@settings(max_examples=500, deadline=None)
@given(_VALUES | st.dictionaries(_KEYS, _VALUES), st.sampled_from(_ORDERS))
def test_encoder_fast_path_writes_as_the_general_one(value: JSON, key_order: KeyOrder) -> None:
    expected = _encode_iterative(value, key_order).encode("ascii") + b"\r\n"
    assert encode(value, key_order=key_order) == expected
    assert encode(value, key_order=key_order) == expected  # again, from the caches


def test_encoder_deep_values_fall_back() -> None:
    deep: JSON = []
    node = deep
    for _ in range(3000):
        inner: list[JSON] = []
        assert isinstance(node, list)
        node.append({"x": inner})
        node = inner
    assert encode(deep, key_order="qdict") == (
        _encode_iterative(deep, "qdict").encode("ascii") + b"\r\n"
    )
