"""The client-side rules a client's own bytes show, judged over a recorded exchange.

Pure: it reads what the client wrote and what the server wrote on one
connection (:class:`conformance.client.proxy.Record`) and says which rule
the client broke, where:

* C1: every request is one JSON object (RFC 8259), without a repeated key
  (whose meaning is unpredictable, Q5);
* C2: nothing is written before the greeting has been read;
* Q13: ``qmp_capabilities`` enables only capabilities the greeting offered;
* Q24: every ``exec-oob`` carries an ``id`` (MUST; passing one with every
  command is only recommended);
* Q26: at most eight in-band commands in flight (SHOULD).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conformance.protocol.stream import JSONStream, ParseError

#: Q26: in-band commands a client should have in flight at most.
IN_FLIGHT = 8

#: Client rule ids and what each asks.
CLIENT_RULES: dict[str, str] = {
    "C1": "every request is one JSON object, without a repeated key",
    "C2": "nothing is written before the greeting has been read",
    "Q13": "qmp_capabilities enables only capabilities the greeting offered",
    "Q24": "every exec-oob carries an id",
    "Q26": f"at most {IN_FLIGHT} in-band commands in flight (SHOULD)",
}


@dataclass(frozen=True)
class Breach:
    """One rule a client broke, with the bytes that show it."""

    rule: str
    message: str
    evidence: str


def judge(chunks: list[tuple[str, bytes]], greeting_expected: bool = True) -> list[Breach]:
    """The rules the client broke on one connection, from its chunks in the
    order they crossed the proxy: ``("client", bytes)`` written by the client,
    ``("server", bytes)`` written to it.  Without a greeting (a guest agent)
    C2 and Q13 do not apply."""
    stream = JSONStream(rfc8259=True)
    breaches: list[Breach] = []
    server = b""
    greeted = not greeting_expected
    # What the greeting offered, even to a client that wrote before reading it.
    offered = _offered(b"".join(d for side, d in chunks if side == "server"))
    executes = 0
    replies = 0
    scanned = 0
    worst = 0
    for side, data in chunks:
        if side == "server":
            server += data
            greeted = greeted or b"\n" in server
            # Count the replies in the lines this data completed, once each.
            end = server.rfind(b"\n") + 1
            if end > scanned:
                replies += _reply_count(server[scanned:end])
                scanned = end
            continue
        if not greeted:
            breaches.append(
                Breach("C2", "the client wrote before the greeting was read", repr(data[:200]))
            )
            greeted = True  # once is enough
        for item in stream.feed(data):
            if isinstance(item, ParseError):
                breaches.append(
                    Breach("C1", f"not a JSON request: {item.desc}", repr(bytes(item.raw[:200])))
                )
                continue
            request = item.value
            text = json.dumps(request)[:300]
            if not isinstance(request, dict):
                breaches.append(Breach("C1", "a request that is not a JSON object", text))
                continue
            breaches += _request_breaches(request, text, offered)
            if "execute" in request:
                executes += 1
                worst = max(worst, executes - replies)
    if stream.in_message:
        breaches.append(Breach("C1", "the client left a request unfinished", "(end of its bytes)"))
    if worst > IN_FLIGHT:
        breaches.append(
            Breach(
                "Q26",
                f"up to {worst} in-band commands in flight (SHOULD be at most {IN_FLIGHT})",
                f"{executes} commands, {replies} replies",
            )
        )
    return breaches


def _request_breaches(
    request: dict[str, Any], text: str, offered: list[str] | None
) -> list[Breach]:
    found: list[Breach] = []
    if request.get("execute") == "qmp_capabilities" and offered is not None:
        args = request.get("arguments")
        enable = args.get("enable", []) if isinstance(args, dict) else []
        unoffered = [c for c in enable if c not in offered] if isinstance(enable, list) else []
        if unoffered:
            found.append(
                Breach("Q13", f"enabled {unoffered}, which the greeting did not offer", text)
            )
    if "exec-oob" in request and "id" not in request:
        found.append(Breach("Q24", "an exec-oob without an id", text))
    return found


def _offered(server: bytes) -> list[str] | None:
    first = server.split(b"\n", 1)[0]
    try:
        greeting = json.loads(first)
        caps = greeting["QMP"]["capabilities"]
    except (ValueError, KeyError, TypeError):
        return None
    return [c for c in caps if isinstance(c, str)] if isinstance(caps, list) else None


def _reply_count(server: bytes) -> int:
    count = 0
    for line in server.split(b"\n"):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and ("return" in msg or "error" in msg):
            count += 1
    return count
