"""What a client sent, read as a server may have read it (protocol.sent)."""

from __future__ import annotations

from conformance.protocol.sent import SENT_BUDGET, SentRequests


def test_ids_of_requests_in_any_split_and_both_readings() -> None:
    sent = SentRequests()
    sent.add(b'{"execute":"qmp_capabilities","id":1}', 0.5)
    # Two requests in one chunk, the second cut in two.
    sent.add(b'{"execute":"a","id":"x"}{"exec', 1.0)
    sent.add(b'ute":"b","id":[2]}', 1.5)
    # QEMU's reading: a single-quoted string.
    sent.add(b"{'execute':'c','id':'q'}", 2.0)
    # RFC 8259's reading: an exponent after a leading zero (QEMU refuses it).
    sent.add(b'{"execute":"d","id":0E0}', 2.5)
    assert sent.negotiate_at == 0.5
    for ident in (1, "x", [2], "q", 0.0):
        assert ident in sent.ids, ident
    assert sent.judged_until() == float("inf")


def test_past_the_budget_nothing_is_known() -> None:
    sent = SentRequests()
    sent.add(b" " * (SENT_BUDGET + 1), 1.0)
    sent.add(b'{"execute":"qmp_capabilities","id":1}', 2.0)
    assert sent.judged_until() == 1.0
    assert sent.negotiate_at is None and sent.ids == []


def test_a_caller_may_read_nothing() -> None:
    sent = SentRequests(read=False)
    sent.add(b'{"execute":"qmp_capabilities","id":1}', 1.0)
    assert sent.judged_until() == 0.0 and sent.ids == []
