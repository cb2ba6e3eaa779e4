"""What a client sent, as a server may have read it: the ids of its requests
and when it first asked to negotiate.

Two rules are about the client's side of the stream as much as the
server's: a reply must carry an id the client sent (Q16), and no event may
come before the client negotiated (Q11).  Judging them on every connection,
whatever bytes a check or a fuzz step wrote, needs the requests those bytes
hold.  A server may read them as QEMU does (single-quoted strings, a zero
then an exponent as two tokens) or as RFC 8259 does, so both readings are
taken and an id either of them finds counts as sent: the judgement never
blames a server for reading the grammar its own way.  A chunk that is one
object is read by Python's ``json`` instead, which is more lenient still
(``NaN``, the last of repeated keys): that can only count more ids as sent.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.protocol.stream import JSONStream, Parsed

#: Bytes of a connection read for ids; past it (floods, oversized tokens) the
#: ids sent are unknown and neither rule is judged from there on.
SENT_BUDGET = 256 << 10


class SentRequests:
    """The requests one connection sent, fed every chunk it writes."""

    def __init__(self, *, read: bool = True) -> None:
        """``read=False``: record nothing (the ids sent count as unknown from
        the start), for callers that judge by their own record."""
        self.ids: list[Any] = []
        #: Seconds (the session's clock) when a ``qmp_capabilities`` request
        #: was first sent; None until then.
        self.negotiate_at: float | None = None
        #: Seconds when the budget ran out; None while ids are known.
        self.unknown_at: float | None = None if read else 0.0
        self._size = 0
        self._readers = (JSONStream(), JSONStream(rfc8259=True))

    def add(self, data: bytes, when: float) -> None:
        """Record a chunk written at ``when`` seconds."""
        if self.unknown_at is not None:
            return
        self._size += len(data)
        if self._size > SENT_BUDGET:
            self.unknown_at = when
            return
        if not any(r.in_message for r in self._readers):
            # Most chunks are one request: read it once, in C.
            try:
                value = json.loads(data)
            except (ValueError, RecursionError):
                pass
            else:
                if isinstance(value, dict):
                    self._request(value, when)
                    return
        for reader in self._readers:
            for item in reader.feed(data):
                if isinstance(item, Parsed) and isinstance(item.value, dict):
                    self._request(item.value, when)

    def _request(self, request: dict[str, Any], when: float) -> None:
        if "id" in request:
            self.ids.append(request["id"])
        name = request.get("execute", request.get("exec-oob"))
        if name == "qmp_capabilities" and self.negotiate_at is None:
            self.negotiate_at = when

    def judged_until(self) -> float:
        """Until when (seconds) the ids sent are known."""
        return float("inf") if self.unknown_at is None else self.unknown_at
