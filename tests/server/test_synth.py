"""Every command of a served schema is answered, with a value of its return type."""

from __future__ import annotations

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
