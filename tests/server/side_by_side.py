"""Run the committed protocol cases (cases.json) against one server; observe.

An observation keeps what the comparison is about and drops what may
legitimately differ (timestamps, desc wording, version package string):
each reply as (kind or error class, id present, id value), the events seen
as a multiset of names, and the greeting's capabilities and version triple.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from server_wire import WireClient, release_fifo

from conformance.protocol import json_equal

CASES_FILE = Path(__file__).with_name("cases.json")
SENTINEL_ID = "__sentinel__"
SENTINEL = b'{"execute":"query-name","id":"' + SENTINEL_ID.encode() + b'"}'


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"]
    return cases


def _is_reply_to(msg: Any, rid: Any) -> bool:
    return (
        isinstance(msg, dict) and "event" not in msg and "id" in msg and json_equal(msg["id"], rid)
    )


def run_case(path: str, case: dict[str, Any], timeout: float = 10.0) -> list[Any]:
    """Every message the server sent during ``case`` (after negotiation)."""
    with tempfile.TemporaryDirectory(prefix="qmp-case-") as tmp:
        fifo = os.path.join(tmp, "blkdebug.fifo")
        if case.get("fifo"):
            os.mkfifo(fifo)
        with WireClient(path, timeout=timeout) as client:
            messages: list[Any] = []
            if case["negotiate"] is None:
                messages.append(client.read_message())
            else:
                client.greet_and_negotiate(oob=case["negotiate"] == "oob")
            try:
                for step in case["steps"]:
                    if "send" in step:
                        client.send(step["send"].replace("@FIFO@", fifo).encode("latin-1"))
                    elif "quiet" in step:
                        messages += client.read_quiet(step["quiet"])
                    elif "until_id" in step:
                        rid = step["until_id"]
                        messages += client.read_until(lambda m, r=rid: _is_reply_to(m, r))
                    elif step.get("release"):
                        release_fifo(fifo)
                if case.get("sentinel", True):
                    client.send(SENTINEL)
                    messages += client.read_until(lambda m: _is_reply_to(m, SENTINEL_ID))
            finally:
                if case.get("fifo"):
                    # Never leave a server blocked on our FIFO.
                    with contextlib.suppress(OSError):
                        release_fifo(fifo)
            return messages


def observe(messages: list[Any]) -> dict[str, Any]:
    replies: list[Any] = []
    events: Counter[str] = Counter()
    for msg in messages:
        if not isinstance(msg, dict):
            replies.append(["not-an-object"])
        elif "QMP" in msg:
            body = msg["QMP"]
            replies.append(
                [
                    "greeting",
                    sorted(body.get("capabilities", [])),
                    body.get("version", {}).get("qemu"),
                ]
            )
        elif "event" in msg:
            events[msg["event"]] += 1
        elif "return" in msg:
            replies.append(["return", "id" in msg, msg.get("id")])
        elif "error" in msg:
            replies.append([msg["error"].get("class"), "id" in msg, msg.get("id")])
        else:
            replies.append(["unknown"])
    return {"replies": replies, "events": dict(sorted(events.items()))}


def same(a: dict[str, Any], b: dict[str, Any], *, unordered_after_first: bool = False) -> bool:
    """Observations agree: ids compared as JSON values, events as multisets."""
    if a["events"] != b["events"] or len(a["replies"]) != len(b["replies"]):
        return False
    if unordered_after_first:
        key = json.dumps
        a = {**a, "replies": a["replies"][:1] + sorted(a["replies"][1:], key=key)}
        b = {**b, "replies": b["replies"][:1] + sorted(b["replies"][1:], key=key)}
    return all(
        len(x) == len(y) and all(json_equal(p, q) for p, q in zip(x, y, strict=True))
        for x, y in zip(a["replies"], b["replies"], strict=True)
    )


def descs(messages: list[Any]) -> list[str]:
    return [
        m["error"].get("desc", "")
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("error"), dict)
    ]
