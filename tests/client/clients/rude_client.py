"""A client that breaks every client rule the wire shows (for the judge's tests).

It writes before the greeting arrives, enables a capability nobody offered,
sends a request with a repeated key and one that is no JSON object, an
exec-oob without an id, and ten commands at once; then it reads what comes
and exits 0.  Usage: python rude_client.py SOCKET
"""

from __future__ import annotations

import socket
import sys
import time


def main(path: str) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(path)
    sock.sendall(b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob", "nope"]}}')
    time.sleep(0.1)
    sock.sendall(b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}')
    time.sleep(0.1)
    sock.sendall(b'{"execute": "query-name", "execute": "query-name"}[1, 2]')
    sock.sendall(b'{"exec-oob": "query-yank"}')
    sock.sendall(b"".join(b'{"execute": "query-name", "id": %d}' % n for n in range(10)))
    time.sleep(0.2)
    sock.close()


if __name__ == "__main__":
    main(sys.argv[1])
