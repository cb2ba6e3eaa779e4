"""No input crashes the server or costs the reply to a well-formed command."""

from __future__ import annotations

import json
import os
import random
import socket
import time

from server_wire import WireClient


def _probe(path: str, rid: str = "probe") -> None:
    """A fresh connection still gets greeted and answered."""
    with WireClient(path) as c:
        c.greet_and_negotiate()
        reply, _ = c.command("query-version", id=rid)
        assert "return" in reply


def test_garbage_then_recovery_on_same_connection(ref_path: str) -> None:
    rng = random.Random(1234)
    with WireClient(ref_path) as c:
        c.greet_and_negotiate()
        for _ in range(30):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            c.send(junk)
            # \x01 forces a lexical error: the parser is back to a known state (Q32).
            c.send(b"\x01")
            reply, _ = c.command("query-name", id="after-junk")
            assert reply["return"] == {}


def test_nesting_limit_is_survived(ref_path: str) -> None:
    with WireClient(ref_path) as c:
        c.greet_and_negotiate()
        c.send(b"[" * 2000 + b"]" * 2000)
        c.send(b"\x01")
        reply, _ = c.command("query-name", id="deep")
        assert reply == {"return": {}, "id": "deep"}
        errors = [json.loads(line) for line in c.lines if b"error" in line]
        assert any(e["error"]["desc"] == "JSON nesting depth limit exceeded" for e in errors)


def test_flood_of_pipelined_commands_all_answered_in_order(ref_path: str) -> None:
    with WireClient(ref_path, timeout=20) as c:
        c.greet_and_negotiate()
        n = 3000
        c.send(b"".join(b'{"execute":"query-name","id":%d}' % i for i in range(n)))
        ids = []
        while len(ids) < n:
            msg = c.read_message()
            assert msg is not None, f"only {len(ids)} replies"
            ids.append(msg["id"])
        assert ids == list(range(n))


def test_unread_output_and_abrupt_disconnects(ref_path: str) -> None:
    for i in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(ref_path)
        s.sendall(b'{"execute":"qmp_capabilities"}' + b'{"execute":"query-qmp-schema"}' * 20)
        if i % 2:
            s.sendall(b'{"execute":"query-na')  # half a command, then gone
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST with unread output
    _probe(ref_path)


def test_disconnect_while_command_blocked(ref_path: str, tmp_path: object) -> None:
    fifo = os.path.join(str(tmp_path), "cfg.fifo")
    os.mkfifo(fifo)
    with WireClient(ref_path) as a:
        a.greet_and_negotiate()
        a.send(
            json.dumps(
                {
                    "execute": "blockdev-add",
                    "id": "A",
                    "arguments": {
                        "driver": "blkdebug",
                        "node-name": "b",
                        "config": fifo,
                        "image": {"driver": "null-co"},
                    },
                }
            )
        )
        time.sleep(0.1)
    with WireClient(ref_path) as b:
        b.read_message()
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        b.send('{"execute":"qmp_capabilities","id":"neg"}')
        assert b.read_message() == {"return": {}, "id": "neg"}
        reply, _ = b.command("query-name", id="b1")
        assert reply == {"return": {}, "id": "b1"}


def test_many_monitors_negotiate_independently(ref_path: str) -> None:
    clients = [WireClient(ref_path) for _ in range(5)]
    try:
        for c in clients[:3]:
            c.greet_and_negotiate()
        for c in clients[3:]:
            c.read_message()
        reply, _ = clients[0].command("stop", id="s")
        assert reply["return"] == {}
        for c in clients[1:3]:
            ev = c.read_message()
            assert ev["event"] == "STOP"
        for c in clients[3:]:  # still negotiating: no events (Q11)
            c.send('{"execute":"query-status","id":"q"}')
            msg = c.read_message()
            assert msg["error"]["class"] == "CommandNotFound"
        clients[0].command("cont", id="c")
    finally:
        for c in clients:
            c.close()


def test_unix_socket_is_owner_only(ref_path: str) -> None:
    assert os.stat(ref_path).st_mode & 0o777 == 0o600


def test_a_burst_of_256_connects_is_all_served(ref_path: str) -> None:
    # Non-blocking connects, all before the server accepts any: each must
    # find room in the listen queue (EAGAIN means a client turned away).
    clients = []
    try:
        for _ in range(256):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            clients.append(sock)
            sock.connect(ref_path)
        for sock in clients:
            sock.settimeout(10)
            greeting = b""
            while not greeting.endswith(b"\r\n"):
                greeting += sock.recv(4096)
            assert json.loads(greeting)["QMP"]["capabilities"] == ["oob"]
    finally:
        for sock in clients:
            sock.close()


def test_servers_started_side_by_side_leave_the_umask_alone() -> None:
    """The umask is process-wide: a server that set it around its bind() could,
    started beside another in threads, leave the process at 0177."""
    from concurrent.futures import ThreadPoolExecutor

    from reference_server import launch

    def start_and_stop(_: int) -> int:
        with launch() as path:
            return os.stat(path).st_mode & 0o777

    before = os.umask(0o022)
    os.umask(before)
    with ThreadPoolExecutor(8) as pool:
        modes = list(pool.map(start_and_stop, range(16)))
    after = os.umask(before)
    assert after == before and modes == [0o600] * 16
