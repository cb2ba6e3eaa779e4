"""Events: timestamped once, then written whole to every negotiated monitor.

Each event is one message handed to each monitor's writer in a single call,
so it can never land inside another message (Q30); monitors still in
negotiation mode get nothing (Q11).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class EventSink(Protocol):
    """A monitor, as far as events are concerned."""

    def deliver_event(self, message: dict[str, Any]) -> None:
        """Send ``message``, one complete event, to this monitor's peer if it may have it."""


def timestamp() -> dict[str, int]:
    """Wall-clock time split as QEMU's event timestamps are."""
    now_us = time.time_ns() // 1000
    return {"seconds": now_us // 1_000_000, "microseconds": now_us % 1_000_000}


class EventBus:
    """Fans events out to the monitors registered with it."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []
        #: Rewrites each event before delivery (defects hook in here).
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] = lambda m: m

    def attach(self, sink: EventSink) -> None:
        """Deliver every later event to ``sink`` too."""
        self._sinks.append(sink)

    def detach(self, sink: EventSink) -> None:
        """Deliver no more events to ``sink``; one that is not attached is ignored."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    def emit(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Timestamp the event ``name`` (with ``data`` when given) and deliver it to every sink."""
        message: dict[str, Any] = {"timestamp": timestamp(), "event": name}
        if data is not None:
            message["data"] = data
        message = self.rewrite(message)
        for sink in list(self._sinks):
            sink.deliver_event(message)
