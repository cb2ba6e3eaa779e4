"""Events: timestamped once, then written whole to every negotiated monitor.

Each event is one message handed to each monitor's writer in a single call,
so it can never land inside another message (Q30); monitors still in
negotiation mode get nothing (Q11).  The events a guest can trigger in
bursts are throttled as QEMU throttles them (Q31): the first of a burst goes
out at once, the rest of the second are dropped but the last, which goes out
when the second is over, with the time it was emitted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

#: QEMU's throttled events, and the data member that tells one source's
#: events from another's ("" when all are one source).
THROTTLED: dict[str, str] = {
    "RTC_CHANGE": "",
    "WATCHDOG": "",
    "BALLOON_CHANGE": "",
    "QUORUM_REPORT_BAD": "node-name",
    "QUORUM_FAILURE": "",
    "VSERPORT_CHANGE": "id",
    "MEMORY_DEVICE_SIZE_CHANGE": "qom-path",
}
#: At most one event of a source per this many seconds.
THROTTLE_PERIOD = 1.0


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
        #: Whether throttled events are throttled (a seeded defect says not).
        self.throttle = True
        #: Per throttled source, in its period: the event waiting for its end.
        self._held: dict[tuple[str, Any], dict[str, Any] | None] = {}

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
        if self.throttle and name in THROTTLED:
            key = (name, (data or {}).get(THROTTLED[name]))
            if key in self._held:
                self._held[key] = message  # the latest replaces what waits
                return
            self._held[key] = None
            asyncio.get_running_loop().call_later(THROTTLE_PERIOD, self._period_over, key)
        self._deliver(message)

    def _period_over(self, key: tuple[str, Any]) -> None:
        waiting = self._held.get(key)
        if waiting is None:
            self._held.pop(key, None)
            return
        # What waited goes out now and opens a period of its own.
        self._held[key] = None
        asyncio.get_running_loop().call_later(THROTTLE_PERIOD, self._period_over, key)
        self._deliver(waiting)

    def _deliver(self, message: dict[str, Any]) -> None:
        for sink in list(self._sinks):
            sink.deliver_event(message)
