"""JSONStream against the behaviour table observed on QEMU 7.2 (observed §4, §5)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.protocol import JSONStream, Parsed, ParseError, parse_all, validate_request
from conformance.protocol.encoding import encode
from conformance.protocol.request import Request

PE = "JSON parse error, "
NOT_OBJ = "QMP input must be a JSON object"


def outcome(data: bytes, *, oob: bool = True, **limits: int) -> list[str]:
    """Error descs QEMU would send, with '<cmd>' for a request that would run."""
    out: list[str] = []
    for item in parse_all(data, **limits):
        if isinstance(item, ParseError):
            out.append(item.desc)
            continue
        checked = validate_request(item.value, oob_enabled=oob)
        out.append(f"<{checked.command}>" if isinstance(checked, Request) else checked.desc)
    return out


# Observed §5, row by row (plus the invalid-number rows of §4).
OBSERVED = [
    (b"hello world\n", [PE + "invalid keyword 'hello'", PE + "invalid keyword 'world'"]),
    (b"{]", [PE + "expecting value"]),
    (b"[1,2,3]", [NOT_OBJ]),
    (b"[]", [NOT_OBJ]),
    (b"42\n", [NOT_OBJ]),
    (b'"query-version"', [NOT_OBJ]),
    (b"null\n", [NOT_OBJ]),
    (b"true\n", [NOT_OBJ]),
    (b"{}", ["QMP input lacks member 'execute'"]),
    (b'{"arguments":{}}', ["QMP input lacks member 'execute'"]),
    *[
        (b'{"execute":' + v + b"}", ["QMP input member 'execute' must be a string"])
        for v in (b"1", b"true", b"null", b"[1]", b"{}")
    ],
    *[
        (
            b'{"execute":"query-name","arguments":' + v + b"}",
            ["QMP input member 'arguments' must be an object"],
        )
        for v in (b"[]", b"null", b'"x"', b"1")
    ],
    (b'{"execute":"query-name","extra":1}', ["QMP input member 'extra' is unexpected"]),
    (
        b'{"execute":"query-name","control":{"run-oob":true}}',
        ["QMP input member 'control' is unexpected"],
    ),
    (b'{"execute":"x","id":"\xff"}', [PE + "stray '\"\ufffd'", PE + "expecting value"]),
    (b"{\xff", [PE + "stray '\ufffd'"]),
    (b'{"execute":"x","id":"\x80"}', [PE + "invalid UTF-8 sequence in string"]),
    (b'{"execute":"x","id":"\xed\xa0\x80"}', [PE + "invalid UTF-8 sequence in string"]),
    (b'{"execute":"x","id":"\xe2\x82"}', [PE + "invalid UTF-8 sequence in string"]),
    (b'{"execute":"x","id":"\xc0\x80"}', ["<x>"]),
    (b'{"execute":"x","id":"\\ud800"}', [PE + "\\ud800 is not a valid Unicode character"]),
    (b'{"execute":"x","id":"\\x41"}', [PE + "invalid escape sequence in string"]),
    (b'"abc\n{"execute":"query-name"}', [PE + "stray '\"abc\n'", "<query-name>"]),
    (b"{\x01", [PE + "stray '\x01'"]),
    (b"\x00", [PE + "stray ''"]),
    (b'\xef\xbb\xbf{"execute":"query-name"}', [PE + "stray '\ufffd'", "<query-name>"]),
    (b"%p\n", [PE + "stray '%'"]),
    (b'{"execute":"query-name","id":"tg"} xyz\n', ["<query-name>", PE + "invalid keyword 'xyz'"]),
    (b'{"execute":"query-name",}', [PE + "expecting value"]),
    (b'{execute:"query-name"}', [PE + "invalid keyword 'execute'"]),
    (b'{"execute":"x","id":True}', [PE + "stray 'T'", PE + "expecting value"]),
    (b'{"execute":"x","id":NULL}', [PE + "stray 'N'", PE + "expecting value"]),
    (b'{"execute":"x","id":-}', [PE + "stray '-}'"]),
    (b'{"execute":"x","id":1.}', [PE + "stray '1.}'"]),
    (b'{"execute":"x","id":1e}', [PE + "stray '1e}'"]),
    (b'{"execute":"x","id":0x10}', [PE + "expected separator in dict"]),
    (b'{"execute":"x","execute":"y"}', [PE + "duplicate key"]),
    (b"}", [PE + "expecting value"]),
    (b"]]", [PE + "expecting value"] * 2),
    (b" \t\r\n\r\n", []),
    (b'{"execute":"query-name" {"execute":"query-name"}', []),
    (b'{"execute":"query-name" {"execute":"query-name"}\xff', [PE + "stray '\ufffd'"]),
    (b'{"execute":"query-name" {"execute":"query-name"}\x01', [PE + "stray '\x01'"]),
    (b'{"execute":"query-name" {"execute":"query-name"}}', [PE + "expected separator in dict"]),
    # §4: invalid number literals give two errors each
    (b'{"execute":"x","id":01}', [PE + "stray '01'", PE + "expecting value"]),
    (b'{"execute":"x","id":+1}', [PE + "stray '+'", PE + "expecting value"]),
    (b'{"execute":"x","id":.5}', [PE + "stray '.'", PE + "expecting value"]),
    (b'{"execute":"x","id":NaN}', [PE + "stray 'N'", PE + "expecting value"]),
    (b'{"execute":"x","id":Infinity}', [PE + "stray 'I'", PE + "expecting value"]),
    # framing
    (b'{"execute":"a"}{"execute":"b"}{"execute":"c"}', ["<a>", "<b>", "<c>"]),
    (b"{'execute':'qmp_capabilities'}", ["<qmp_capabilities>"]),
    # parser messages seen live
    (b'{"a" 1}', [PE + "missing : in object pair"]),
    (b"{1:2}", [PE + "key is not a string in object"]),
    (b'{"a":1]', [PE + "expected separator in dict"]),
    (b"[1}", [PE + "expected separator in list"]),
    (b"[1,,]", [PE + "expecting value"]),
    (b"1}", [NOT_OBJ, PE + "expecting value"]),
    (b'"\\u12" ', [PE + '\\u12" is not a valid Unicode character']),
    (b'"\\uFFFF" ', [PE + "\\uFFFF is not a valid Unicode character"]),
    (b'"\\ud800\\u0041" ', [PE + "\\ud800 is not a valid Unicode character"]),
    (b'"\xef\xbf\xbf" ', [PE + "invalid UTF-8 sequence in string"]),
    (b"1\xc3 ", [NOT_OBJ, PE + "stray '\ufffd'"]),
]


@pytest.mark.parametrize(("data", "expected"), OBSERVED, ids=[repr(d)[:50] for d, _ in OBSERVED])
def test_observed_table(data: bytes, expected: list[str]) -> None:
    assert outcome(data) == expected


def test_exec_oob_depends_on_negotiation() -> None:
    both = b'{"execute":"query-name","exec-oob":"query-name"}'
    assert outcome(both, oob=False) == ["QMP input member 'exec-oob' is unexpected"]
    assert outcome(both, oob=True) == ["QMP input member 'execute' clashes with 'exec-oob'"]


# Observed §4: how ids come back (value after a QEMU round trip, as printed).
IDS = [
    (b"1.5", b"1.5"),
    (b"1.0", b"1"),
    (b"1e2", b"100"),
    (b"-0", b"0"),
    (b"0.1", b"0.10000000000000001"),
    (b"1E-7", b"9.9999999999999995e-08"),
    (b"9223372036854775807", b"9223372036854775807"),
    (b"9223372036854775808", b"9223372036854775808"),
    (b"18446744073709551615", b"18446744073709551615"),
    (b"18446744073709551616", b"1.8446744073709552e+19"),
    (b"-9223372036854775809", b"-9.2233720368547758e+18"),
    (b"123456789012345678901234567890", b"1.2345678901234568e+29"),
    (b"'single'", b'"single"'),
    (b'"\\u0000"', b'"\\u0000"'),
    (b'"\xc0\x80"', b'"\\u0000"'),
    (b"1e400", b"inf"),
    (b"-0.0", b"-0"),
    (b'"\xc3\xa9\xf0\x9f\x98\x80"', b'"\\u00E9\\uD83D\\uDE00"'),
    (b'"\\u00e9\\ud83d\\ude00"', b'"\\u00E9\\uD83D\\uDE00"'),
    (b'"\\/"', b'"/"'),
    (b"{}", b"{}"),
    (b"[]", b"[]"),
    (b"null", b"null"),
]


@pytest.mark.parametrize(("sent", "echoed"), IDS, ids=[s.decode("latin1") for s, _ in IDS])
def test_id_round_trip(sent: bytes, echoed: bytes) -> None:
    (item,) = parse_all(b'{"execute":"x","id":' + sent + b"}")
    assert isinstance(item, Parsed)
    assert isinstance(item.value, dict)
    assert encode(item.value["id"], terminator=b"") == echoed


def test_integer_kinds() -> None:
    (item,) = parse_all(b"[9223372036854775807,9223372036854775808,-9223372036854775808,-1e400]")
    assert isinstance(item, Parsed)
    assert item.value == [2**63 - 1, 2**63, -(2**63), -math.inf]
    assert [type(v) for v in item.value] == [int, int, int, float]  # type: ignore[union-attr]


def test_zero_exponent_is_two_tokens_for_qemu() -> None:
    # QEMU's lexer ends a number at a leading zero: 0E5 is 0, then a stray E.
    items = parse_all(b'{"id":0E5}')
    assert isinstance(items[0], ParseError)
    assert items[0].desc == "JSON parse error, stray 'E'"


@pytest.mark.parametrize(
    ("text", "value"), [(b"0e5", 0.0), (b"-0E1", -0.0), (b"0e+2", 0.0), (b"1e2", 100.0)]
)
def test_rfc8259_reads_zero_exponents(text: bytes, value: float) -> None:
    (item,) = JSONStream(rfc8259=True).feed(b'{"id":' + text + b"}")
    assert isinstance(item, Parsed)
    assert item.value == {"id": value}


@pytest.mark.parametrize("text", [b"1e400", b"-1e400", b"1" * 400])
def test_rfc8259_refuses_numbers_past_a_double(text: bytes) -> None:
    (item,) = JSONStream(rfc8259=True).feed(b'{"id":' + text + b"}")
    assert isinstance(item, ParseError)
    assert "out of range" in item.desc
    (qemu,) = parse_all(b'{"id":' + text + b"}")
    assert isinstance(qemu, Parsed)
    assert qemu.value in ({"id": math.inf}, {"id": -math.inf})


# ---------------------------------------------------------------- limits
def test_nesting_real_size_accepted() -> None:
    data = b'{"execute":"x","id":' + b"[" * 1023 + b"]" * 1023 + b"}"
    (item,) = parse_all(data)
    assert isinstance(item, Parsed)
    assert encode(item.value, terminator=b"").count(b"[") == 1023


def test_nesting_real_size_exceeded() -> None:
    data = b'{"execute":"x","id":' + b"[" * 1024 + b"]" * 1024 + b"}"
    got = outcome(data)
    assert len(got) == 1026
    assert got[0] == "JSON nesting depth limit exceeded"
    assert set(got[1:]) == {PE + "expecting value"}


def test_nesting_2000_bare() -> None:
    got = outcome(b"[" * 2000 + b"]" * 2000)
    assert got[:2] == ["JSON nesting depth limit exceeded", NOT_OBJ]
    assert got[2:] == [PE + "expecting value"] * 1025


def test_nesting_deep_recovery_needs_lexical_error() -> None:
    stream = JSONStream()
    # The limit error resets the count, so the 975 brackets after it are open.
    assert [i.desc for i in stream.feed(b"[" * 2000) if isinstance(i, ParseError)] == [
        "JSON nesting depth limit exceeded"
    ]
    assert stream.feed(b'{"execute":"x"}') == []  # swallowed by the open lists
    items = stream.feed(b'\x01{"execute":"x"}')
    assert isinstance(items[0], ParseError) and items[0].desc == PE + "stray '\x01'"
    assert isinstance(items[1], Parsed)


def test_small_nesting_limit() -> None:
    assert outcome(b"[[[1]]]", max_nesting=3) == [NOT_OBJ]
    assert outcome(b"[[[[1]]]]", max_nesting=3) == [
        "JSON nesting depth limit exceeded",
        NOT_OBJ,  # the bare 1
        *[PE + "expecting value"] * 4,
    ]


def test_small_token_count_limit() -> None:
    assert outcome(b"[1,2,3]", max_token_count=7) == [NOT_OBJ]
    assert outcome(b"[1,2,3,4]", max_token_count=7) == [
        "JSON token count limit exceeded",  # at the 8th token ("4" is dropped)
        PE + "expecting value",  # "]"
    ]


@pytest.mark.slow
def test_token_count_real_size_follow_on_errors() -> None:
    # Observed: 1.1M-element id array -> limit error + 102,856 follow-on errors.
    data = b'{"execute":"query-version","id":[' + b",".join([b"1"] * 1_100_000) + b"]}"
    items = parse_all(data)
    assert isinstance(items[0], ParseError)
    assert items[0].desc == "JSON token count limit exceeded"
    assert len(items) - 1 == 102_856


def test_small_token_size_limit() -> None:
    # QEMU accepts a message whose tokens total at most limit - 1 bytes.
    assert outcome(b'"' + b"a" * 7 + b'"', max_token_size=10) == [NOT_OBJ]  # 9 bytes
    assert outcome(b'"' + b"a" * 8 + b'"', max_token_size=10) == ["JSON token size limit exceeded"]


def test_oversized_string_token_is_cut_like_qemu() -> None:
    # Observed for a 65 MiB string: size limit, then the rest lexes as a
    # keyword (desc cut to ~1 KiB, no closing quote), then a stray.
    limit = 4096
    data = b'{"execute":"x","id":"' + b"a" * (limit + 2000) + b'"}\n'
    got = outcome(data, max_token_size=limit)
    assert got[0] == "JSON token size limit exceeded"
    assert got[1].startswith(PE + "invalid keyword 'aaaa")
    assert len(got[1].encode()) == len(PE) + 1023 and not got[1].endswith("'")
    assert got[2:] == [PE + "stray '\"}\n'"]


def test_large_string_is_fast() -> None:
    payload = "é" * (1 << 20)
    (item,) = parse_all(b'{"execute":"x","id":"' + payload.encode() + b'"}')
    assert isinstance(item, Parsed) and isinstance(item.value, dict)
    assert item.value["id"] == payload


def test_raw_bytes() -> None:
    items = parse_all(b'  {"execute": "a"}\n\t[1, 2] xyz ')
    assert [i.raw for i in items] == [b'{"execute": "a"}', b"[1, 2]", b"xyz"]


def test_feed_some_stops_after_item() -> None:
    stream = JSONStream()
    data = b'{"execute":"a"} {"execute":"b"}'
    items, used = stream.feed_some(data)
    assert len(items) == 1 and used == len(b'{"execute":"a"}')
    items, used2 = stream.feed_some(data[used:])
    assert len(items) == 1 and used + used2 == len(data)
    items, used = JSONStream().feed_some(b"1} 2")
    assert len(items) == 2 and used == 2


# ---------------------------------------------------------------- splitting
_FRAGMENTS = [
    b'{"execute":"query-name","id":"\xc3\xa9\\u00e9\\ud83d\\ude00"}',
    b"{'a':'b\\'c'}",
    b"[1, -2.5e3, 0, true, false, null]",
    b"\xff",
    b"\x01",
    b'"abc\n',
    b"hello ",
    b"}",
    b"]",
    b'{"a":1,"a":2}',
    b"\xf0\x9f\x98\x80",
    b'"\xf0\x9f\x98\x80"',
    b"12345",
    b" ",
    b"{",
    b"[[",
    b'"\\u12"',
    b"1e",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_FRAGMENTS) | st.binary(max_size=6), max_size=12),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=8),
)
def test_any_split_gives_same_items(parts: list[bytes], sizes: list[int]) -> None:
    data = b"".join(parts)
    whole = JSONStream(max_nesting=4, max_token_count=40, max_token_size=64).feed(data)
    byte_stream = JSONStream(max_nesting=4, max_token_count=40, max_token_size=64)
    one_by_one = [item for b in data for item in byte_stream.feed(bytes([b]))]
    chunk_stream = JSONStream(max_nesting=4, max_token_count=40, max_token_size=64)
    chunked = []
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        chunked += chunk_stream.feed(data[pos : pos + size])
        pos += size
        index += 1
    assert one_by_one == whole
    assert chunked == whole


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_feed_some_equals_feed(data: bytes) -> None:
    whole = JSONStream().feed(data)
    stream = JSONStream()
    pieces = []
    pos = 0
    while pos < len(data):
        items, used = stream.feed_some(data[pos:])
        assert used > 0
        pieces += items
        pos += used
    assert pieces == whole
