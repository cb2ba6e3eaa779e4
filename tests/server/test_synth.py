"""Every command of a served schema is answered, with a value of its return type."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.qapi import load
from conformance.session import Session
from conformance.specs import Specs
from conformance.transport import open_target
from reference_server import launch
from reference_server.synth import Synthesizer

BUNDLED = Path(__file__).resolve().parents[2] / "reference_server" / "schema" / "qapi-schema.json"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "introspection"


def _schemas() -> list[Path]:
    return [BUNDLED, *sorted(CORPUS.glob("qemu-*.json"))]


@pytest.mark.parametrize("source", _schemas(), ids=lambda p: p.name)
def test_every_synthesized_return_validates(source: Path) -> None:
    schema = load(str(source))
    specs, synth = Specs(schema), Synthesizer(schema)
    for name, command in schema.commands.items():
        value = synth.returns(name)
        assert value == synth.returns(name)  # the same every time
        if command.ret_type is None:
            assert value == {}
        else:
            assert specs.errors("return", name, value) == [], name


#: What a management client sends first, besides what the server models.
FIRST_COMMANDS = [
    ("query-cpus-fast", None),
    ("query-machines", None),
    ("query-kvm", None),
    ("qom-list", {"path": "/"}),
    ("query-named-block-nodes", None),
    ("query-migrate", None),
]


def test_a_served_qemu_schema_answers_what_clients_send_first() -> None:
    source = CORPUS / "qemu-7.2.json"
    if not source.exists():
        pytest.skip("../shared/corpus is absent")
    schema = load(str(source))
    specs = Specs(schema)
    with launch(schema=str(source)) as path, open_target(f"unix:{path}") as target:
        session = Session(target.connect())
        session.read_greeting(5)
        session.execute("qmp_capabilities")
        for name, arguments in FIRST_COMMANDS:
            reply = session.execute(name, arguments)
            assert "return" in reply.obj, reply.brief()
            assert specs.errors("return", name, reply.obj["return"]) == [], name
        # Arguments are still checked as QEMU checks them.
        refused = session.execute("qom-list", {"path": "/", "depth": 1})
        assert refused.error_class == "GenericError"


@pytest.mark.qemu
def test_serve_a_live_targets_schema_under_its_release(tmp_path: Path) -> None:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    live = f"spawn:{qemu} -machine none -nodefaults -display none -qmp stdio"
    sock = tmp_path / "qmp.sock"
    server = subprocess.Popen(
        [sys.executable, "-m", "conformance", "serve", "--unix", str(sock), "--schema", live]
    )
    try:
        deadline = time.monotonic() + 20  # QEMU is asked for its schema first
        while not sock.exists() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.05)
        with open_target(f"unix:{sock}") as target:
            session = Session(target.connect())
            greeting = session.read_greeting(5)
            assert greeting is not None
            assert greeting["QMP"]["version"]["qemu"] == {"major": 7, "minor": 2, "micro": 22}
            session.execute("qmp_capabilities")
            names = {c["name"] for c in session.execute("query-commands").obj["return"]}
            assert len(names) == 216 and "query-cpus-fast" in names
            assert "return" in session.execute("query-cpus-fast").obj
    finally:
        server.terminate()
        server.wait(10)
