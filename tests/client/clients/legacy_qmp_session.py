"""The same management session with the older PyPI `qmp` (QEMUMonitorProtocol).

Usage: python legacy_qmp_session.py SOCKET
"""

from __future__ import annotations

import sys

import qmp

TIMEOUT = 10.0


def session(path: str) -> None:
    monitor = qmp.QEMUMonitorProtocol(path)
    monitor.settimeout(TIMEOUT)
    monitor.connect()
    try:
        version = monitor.command("query-version")
        print("version", version["qemu"]["major"], version["qemu"]["minor"])
        print("status", monitor.command("query-status")["status"])
        reply = monitor.cmd("blockdev-del", {"node-name": "none"})
        print("error", reply["error"]["class"])
        monitor.command("stop")
        event = None
        while event is None or event["event"] != "STOP":  # other events may come first
            event = monitor.pull_event(wait=TIMEOUT)
            monitor.settimeout(TIMEOUT)  # pull_event(wait=...) leaves the socket blocking
        print("event", event["event"])
        monitor.command("cont")
        print("status", monitor.command("query-status")["status"])
    finally:
        monitor.close()


if __name__ == "__main__":
    try:
        session(sys.argv[1])
    except (qmp.QMPError, OSError) as err:
        # The library's own ways of saying a session failed: a clean failure.
        print("failed", type(err).__name__)
        sys.exit(1)
