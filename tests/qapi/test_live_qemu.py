"""The live introspection of an installed QEMU loads, and the JSON Schemas built
from it validate what that same QEMU sends."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from conformance.qapi import load
from conformance.specs import Specs

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed"),
]


class _Lines:
    """Just enough QMP for this test: CRLF lines with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read(self, deadline: float) -> dict[str, Any]:
        while b"\r\n" not in self.buf:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("QEMU closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        value: dict[str, Any] = json.loads(line)
        return value

    def call(self, command: str, ident: str) -> dict[str, Any]:
        self.sock.sendall(json.dumps({"execute": command, "id": ident}).encode())
        deadline = time.monotonic() + 20
        while True:
            reply = self.read(deadline)
            if reply.get("id") == ident:
                return reply


@pytest.fixture(scope="module")
def qemu() -> Iterator[tuple[dict[str, Any], _Lines]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "qmp.sock")
        assert QEMU is not None
        proc = subprocess.Popen(
            [
                QEMU,
                "-machine",
                "none",
                "-nodefaults",
                "-display",
                "none",
                "-qmp",
                f"unix:{path},server=on,wait=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(path):
                assert time.monotonic() < deadline and proc.poll() is None, "QEMU did not start"
                time.sleep(0.02)
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(path)
            lines = _Lines(sock)
            greeting = lines.read(time.monotonic() + 20)
            assert "return" in lines.call("qmp_capabilities", "neg")
            yield greeting, lines
            sock.close()
        finally:
            proc.kill()
            proc.wait(timeout=20)


def test_live_introspection_loads_and_validates_replies(
    qemu: tuple[dict[str, Any], _Lines],
) -> None:
    greeting, lines = qemu
    reply = lines.call("query-qmp-schema", "schema")
    schema = load(reply["return"])
    summary = schema.summary()
    assert summary["commands"] == len(
        {e["name"] for e in reply["return"] if e["meta-type"] == "command"}
    )
    assert "query-version" in schema.commands and schema.masked
    specs = Specs(schema)

    version = lines.call("query-version", "v")
    assert specs.errors("return", "query-version", version["return"]) == []
    assert not list(specs.wire_validator("success").iter_errors(version))
    assert not list(specs.wire_validator("greeting").iter_errors(greeting))
    # the schema has teeth: a reply with a member missing or mistyped fails
    broken = {**version["return"], "package": 7}
    assert specs.errors("return", "query-version", broken) == ["package: 7 is not of type 'string'"]
    status = lines.call("query-status", "s")
    assert specs.errors("return", "query-status", status["return"]) == []
    assert specs.errors("return", "query-status", {**status["return"], "status": "dancing"})


def test_schema_cli_reads_a_live_target(
    qemu: tuple[dict[str, Any], _Lines], tmp_path: Path
) -> None:
    """``qmp-conform schema spawn:...`` reads introspection from the running
    server, and its JSON Schema export validates what QEMU sends."""
    target = f"spawn:{QEMU} -machine none -nodefaults -display none -qmp stdio"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "schema",
            target,
            "--summary",
            "--jsonschema",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["origin"] == "introspection" and summary["commands"] > 150
    assert "yank" in summary["allow-oob"]
    greeting, lines = qemu
    exported = json.loads((tmp_path / "wire/qemu/greeting.schema.json").read_text())
    assert Draft202012Validator(exported).is_valid(greeting)
    assert not Draft202012Validator(exported).is_valid(
        {"QMP": {**greeting["QMP"], "version": {"qemu": {"major": 7}}}}
    )
    status = json.loads((tmp_path / "commands/query-status.return.schema.json").read_text())
    assert Draft202012Validator(status).is_valid(lines.call("query-status", "cli")["return"])
