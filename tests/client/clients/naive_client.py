"""A client that leans on what QMP leaves free (for the liberties' tests).

It takes the line after a request for its reply, recognises a success by the
text it starts with, and tells errors apart by their desc.  Usage:
python naive_client.py SOCKET
"""

from __future__ import annotations

import socket
import sys


def main(path: str) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(path)
    lines = sock.makefile("rb")
    lines.readline()  # the greeting
    sock.sendall(b'{"execute": "qmp_capabilities"}')
    lines.readline()
    for command in (b"query-name", b"query-status"):
        sock.sendall(b'{"execute": "%s"}' % command)
        reply = lines.readline()
        print(command.decode(), "ok" if reply.startswith(b'{"return"') else "refused")
    sock.sendall(b'{"execute": "no-such-command"}')
    reply = lines.readline()
    print("missing", "not found" if b"has not been found" in reply else "other")
    sock.close()


if __name__ == "__main__":
    main(sys.argv[1])
