"""Shared helpers for the protocol-core tests."""

from __future__ import annotations

from conformance.protocol.monitor import NEED_DATA, PAUSED, Dispatch, Monitor, Send
from conformance.protocol.values import JSON

# Canned results for the few commands the tests let the model "run"; they are
# what QEMU 7.2 with -machine none returns.
CANNED: dict[str, JSON] = {
    "query-name": {},
    "yank": {},
    "query-status": {"status": "running", "singlestep": False, "running": True},
}
OOB_COMMANDS = frozenset({"migrate-recover", "migrate-pause", "yank", "query-yank"})


def run_model(mon: Monitor, data: bytes) -> bytes:
    """Feed ``data`` and run every dispatched command at once; return the output."""
    out = bytearray()
    mon.receive_data(data)
    while True:
        ev = mon.next_event()
        if isinstance(ev, Send):
            out += ev.data
        elif isinstance(ev, Dispatch):
            mon.complete(ev.request, CANNED.get(ev.request.command, {}))
        elif ev is NEED_DATA or ev is PAUSED:
            return bytes(out)
