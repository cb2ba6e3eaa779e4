"""Small facts about QEMU's C-side data handling that several modules need.

* QEMU keeps JSON text as NUL-terminated C strings in "modified UTF-8"
  (U+0000 is stored as the overlong pair C0 80 so it never truncates).
* Its QDict is a 512-bucket hash table; iteration (and therefore both the
  order in which the dispatcher checks request members and the member order
  of every object QEMU prints) follows bucket order, and within a bucket the
  most recently inserted key comes first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

QDICT_BUCKETS = 512

# Unicode noncharacters: QEMU's codepoint validity check rejects these, so
# they are as unusable as surrogates both in input strings and in \\u escapes.
_NONCHAR_CLASS = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)
)
NONCHAR_OR_SURROGATE = re.compile("[" + _NONCHAR_CLASS + "\ud800-\udfff]")


def is_valid_codepoint(cp: int) -> bool:
    """QEMU's notion of a usable code point (no surrogates, no noncharacters)."""
    if cp < 0 or cp > 0x10FFFF:
        return False
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return False
    return not 0xD800 <= cp <= 0xDFFF


def c_key_bytes(key: str) -> bytes:
    """The bytes QEMU holds for a dict key (modified UTF-8)."""
    return key.encode("utf-8", "surrogatepass").replace(b"\x00", b"\xc0\x80")


@functools.lru_cache(maxsize=4096)
def qdict_bucket(key: str) -> int:
    """Bucket of ``key`` in a QDict (the gdbm/tdb string hash, mod 512)."""
    # Cached: the same member names are hashed for every message.
    data = c_key_bytes(key)
    value = (0x238F13AF * len(data)) & 0xFFFFFFFF
    for i, byte in enumerate(data):
        value = (value + (byte << (i * 5 % 24))) & 0xFFFFFFFF
    return ((1103515243 * value + 12345) & 0xFFFFFFFF) % QDICT_BUCKETS


#: Orders already computed, by key tuple; bounded, since keys may come from peers.
_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}
_ORDERS_MAX = 4096


def qdict_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """:func:`qdict_order` as a tuple, memoized: messages of one kind share
    their member names, so the sort is done once per shape."""
    key = tuple(keys)
    order = _ORDERS.get(key)
    if order is None:
        if len(_ORDERS) >= _ORDERS_MAX:
            _ORDERS.clear()
        indexed = sorted([(qdict_bucket(k), -i, k) for i, k in enumerate(key)])
        order = _ORDERS[key] = tuple(k for _, _, k in indexed)
    return order


def qdict_order(keys: Iterable[str]) -> list[str]:
    """Return ``keys`` (given in insertion order) in QDict iteration order."""
    return list(qdict_keys(keys))


def _mod_utf8_codepoint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode one character of a C string at ``pos``; -1 marks an invalid one.

    Mirrors QEMU's decoder: bytes past the end read as NUL (so a truncated
    sequence is invalid), an invalid sequence consumes its lead byte plus the
    continuation bytes that were present, and C0 80 is accepted as U+0000.
    """
    n = len(data)
    byte = data[pos]
    pos += 1
    if byte < 0x80:
        return byte, pos
    if byte >= 0xFE or not byte & 0x40:
        return -1, pos
    length = 0
    mask = 0x80
    while byte & mask:
        length += 1
        mask >>= 1
    cp = byte & (mask - 1)
    for _ in range(1, length):
        nxt = data[pos] if pos < n else 0
        if nxt & 0xC0 != 0x80:
            return -1, pos
        pos += 1
        cp = cp << 6 | (nxt & 0x3F)
    min_cp = (0x80, 0x800, 0x10000, 0x200000, 0x4000000)[length - 2]
    if not is_valid_codepoint(cp) or (cp < min_cp and not (cp == 0 and length == 2)):
        return -1, pos
    return cp, pos


def c_text(data: bytes) -> str:
    """What a client reads after QEMU prints the C string ``data``.

    The string ends at the first NUL byte (C semantics) and every invalid
    modified-UTF-8 sequence becomes U+FFFD, as QEMU's JSON writer does.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        data = data[:nul]
    if data.isascii():
        return data.decode("ascii")
    if b"\xc0" not in data:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if not NONCHAR_OR_SURROGATE.search(text):
                return text
    out: list[str] = []
    pos = 0
    while pos < len(data):
        cp, pos = _mod_utf8_codepoint(data, pos)
        out.append("\ufffd" if cp < 0 else chr(cp))
    return "".join(out)


def mod_utf8_decode(data: bytes) -> str | None:
    """Decode raw string content as QEMU's parser does; None if invalid."""
    if data.isascii():
        return data.decode("ascii")
    if b"\xc0\x80" in data:
        data = data.replace(b"\xc0\x80", b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if NONCHAR_OR_SURROGATE.search(text):
        return None
    return text
