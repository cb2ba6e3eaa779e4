"""Requests per second of the reference server beside QEMU 7.2, same run.

Two measurements per server, over a raw UNIX socket with oob negotiated:
(a) one request in flight (send query-version, wait for its reply), for a
fixed duration; (b) pipelined: N query-version requests with ids written at
once, timed until the last reply.  The reference server runs as its own
process (``qmp-conform serve``) so both servers are measured the same way.

``--echo`` also measures a trivial server (a thread per connection that
answers each request with a fixed line and its id): the client's own
ceiling, which must stay well above both servers' figures.

    python bench/server_throughput.py [--seconds 3] [--pipelined 20000] [--echo]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator


def _wait_for(path: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(path)
        time.sleep(0.01)


@contextlib.contextmanager
def _server(cmd: list[str], path: str) -> Iterator[str]:
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        _wait_for(path)
        yield path
    finally:
        proc.kill()
        proc.wait(10)


class _Conn:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = b""
        self.line()
        self.sock.sendall(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}')
        self.line()

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def close(self) -> None:
        self.sock.close()


def one_in_flight(path: str, seconds: float) -> float:
    conn = _Conn(path)
    n = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        conn.sock.sendall(b'{"execute":"query-version","id":%d}' % n)
        conn.line()
        n += 1
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def pipelined(path: str, count: int) -> float:
    conn = _Conn(path)
    payload = b"".join(b'{"execute":"query-version","id":%d}' % i for i in range(count))
    start = time.perf_counter()
    sender = threading.Thread(target=conn.sock.sendall, args=(payload,))
    sender.start()
    for i in range(count):
        line = conn.line()
        if i == count - 1 and b'"id": %d' % i not in line:
            raise RuntimeError(f"last reply out of order: {line!r}")
    elapsed = time.perf_counter() - start
    sender.join()
    conn.close()
    return count / elapsed


_ECHO_REQUEST = re.compile(rb'\{"execute":"[^"]*"(?:,"arguments":\{[^}]*\})?(?:,"id":(\d+))?\}')


def _echo_serve(path: str) -> None:
    """The trivial server of ``--echo``: greeting, then one reply per request."""

    def client(conn: socket.socket) -> None:
        conn.sendall(b'{"QMP": {}}\r\n')
        buf = b""
        while data := conn.recv(1 << 16):
            buf += data
            replies = []
            end = 0
            for match in _ECHO_REQUEST.finditer(buf):
                end = match.end()
                replies.append(b'{"return": {}, "id": %s}\r\n' % (match.group(1) or b"0"))
            buf = buf[end:]
            if replies:
                conn.sendall(b"".join(replies))
        conn.close()

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path + ".tmp")
    listener.listen(8)
    os.rename(path + ".tmp", path)  # the path appears once connects succeed
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=client, args=(conn,), daemon=True).start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--pipelined", type=int, default=20000)
    ap.add_argument("--echo", action="store_true", help="also measure the client's own ceiling")
    ap.add_argument("--serve-echo", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_echo:
        _echo_serve(args.serve_echo)
        return 0
    qemu = shutil.which("qemu-system-x86_64")
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="qmp-bench-") as tmp:
        ref_path = os.path.join(tmp, "ref.sock")
        with _server(
            [sys.executable, "-m", "conformance.cli", "serve", "--unix", ref_path], ref_path
        ):
            results["reference"] = (
                one_in_flight(ref_path, args.seconds),
                pipelined(ref_path, args.pipelined),
            )
        if qemu:
            qemu_path = os.path.join(tmp, "qemu.sock")
            with _server(
                [
                    qemu,
                    "-machine",
                    "none",
                    "-nodefaults",
                    "-display",
                    "none",
                    "-qmp",
                    f"unix:{qemu_path},server=on,wait=off",
                ],
                qemu_path,
            ):
                results["qemu-7.2"] = (
                    one_in_flight(qemu_path, args.seconds),
                    pipelined(qemu_path, args.pipelined),
                )
        if args.echo:
            echo_path = os.path.join(tmp, "echo.sock")
            with _server([sys.executable, __file__, "--serve-echo", echo_path], echo_path):
                results["echo"] = (
                    one_in_flight(echo_path, args.seconds),
                    pipelined(echo_path, args.pipelined),
                )
    print(f"{'server':<12} {'one-in-flight req/s':>20} {'pipelined req/s':>16}")
    for name, (seq, pipe) in results.items():
        print(f"{name:<12} {seq:>20.0f} {pipe:>16.0f}")
    if "qemu-7.2" in results:
        ref, anchor = results["reference"], results["qemu-7.2"]
        print(
            f"ratio reference/qemu: one-in-flight {ref[0] / anchor[0]:.2f}, "
            f"pipelined {ref[1] / anchor[1]:.2f}"
        )
    else:
        print("qemu-system-x86_64 not found: no anchor, no ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
