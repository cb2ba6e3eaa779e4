# ruff: noqa: B023  (each per-command closure runs inside its own loop iteration)
"""Real QEMU judges the generators: every fetched release (5.2, 7.2, 10.0.2
from scripts/fetch-releases.sh), else the system's QEMU.

For every command of QEMU's live introspection (minus EXCLUDED): generated
valid arguments pass our JSON Schema and QEMU never rejects them with an
argument-level error; generated invalid arguments still break their labelled
rule (re-checked on every example, shrunk ones included) and QEMU rejects
them with GenericError, in an argument-level message unless the command is
``gen: false`` (``device_add`` validates its own arguments).  A crash is a
finding: QEMU is restarted and the judge goes on, and only the crashes
written up in docs/findings.md for that release (KNOWN_CRASHES) are
expected; likewise the commands of a release that do not follow their own
schema (SCHEMA_DEVIATIONS).
Counts are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import strategies
from conformance import releases
from conformance.qapi.model import Schema
from conformance.specs import Specs
from tests.strategies.qemu import QEMU, QemuUnderTest

#: The system emulators judged: each fetched release's, else the one on PATH.
JUDGES = [pytest.param(str(r.binary(QEMU)), id=f"qemu-{r.name}") for r in releases.available()] or [
    pytest.param(QEMU, id="qemu")
]

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.slow,
    pytest.mark.parametrize("qemu", JUDGES, indirect=True, scope="module"),
]


#: Commands left out, and why (docs/strategies.md carries the same list).
EXCLUDED = {
    "quit": "ends the process",
    "system_powerdown": "asks the machine to power down",
    "human-monitor-command": "random HMP text may be 'q' (quit) or anything else",
    "migrate": "an 'exec:' URI runs a shell command",
    "migrate-incoming": "an 'exec:' URI runs a shell command; a listening URI blocks",
    "dump-guest-memory": "writes a file at a generated path",
    "screendump": "writes a file at a generated path",
    "memsave": "writes a file at a generated path",
    "pmemsave": "writes a file at a generated path",
    "xen-save-devices-state": "writes a file at a generated path",
    "xen-load-devices-state": "reads a file at a generated path",
    "blockdev-create": "creates image files at generated paths",
    "chardev-add": "a listening socket with wait=on blocks the main loop; files are created",
    "chardev-change": "same as chardev-add",
}

_VISITOR = (
    r"Parameter '[^']*' (is missing|is unexpected|does not accept value .*"
    r"|expects (u?int(8|16|32|64)|size|integer|number|boolean|string))"
    r"|Invalid parameter type for '[^']*', expected: .*"
)

#: Argument-level rejections (QEMU's visitor and dispatcher messages).
ARGUMENT_ERROR = re.compile(rf"^({_VISITOR})$", re.S)

#: The same, for arguments known to be wrong: 5.2 also says "Invalid
#: parameter 'x'" for a bad enum value or union tag.  Not used on valid
#: arguments, since 5.2's handlers say the same of values their schema
#: types as plain strings (set_password's protocol, say).
REJECTED_ARGUMENT = re.compile(rf"^({_VISITOR}|Invalid parameter '.*')$", re.S)

#: Commands that do not follow their own introspected argument type, by
#: release (docs/findings.md): what the judge finds there is expected.
SCHEMA_DEVIATIONS: dict[str, dict[str, str]] = {
    "5.2": {
        "query-qmp-schema": "findings section 5: accepts arguments it does not have",
        "object-add": "findings section 6: checks its arguments itself, not by its type",
    },
}

#: Commands that crash QEMU on valid arguments, by release (docs/findings.md,
#: sections 2 to 4, 7 and 8).  A death after any other command fails the judge.
KNOWN_CRASHES: dict[str, set[str]] = {
    "5.2": {"migrate-set-parameters", "transaction"},
    "7.2": {"blockdev-reopen", "calc-dirty-rate", "transaction"},
    "10.0": {"blockdev-reopen", "rtc-reset-reinjection", "transaction"},
}

VALID_EXAMPLES = 8
INVALID_EXAMPLES = 8


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


def _commands(schema: Schema) -> list[str]:
    return sorted(n for n in schema.commands if n not in EXCLUDED)


def _transcript(qemu: QemuUnderTest, keep: int = 6) -> str:
    assert qemu.session is not None
    # Only the last entries are rendered: a failing example is rendered once
    # per shrink step, and the session's transcript holds the whole run.
    transcript = qemu.session.transcript
    return "\n".join(transcript.render(max(len(transcript.entries) - keep, 0))[-keep:])


def _deviating(qemu: QemuUnderTest) -> dict[str, str]:
    return SCHEMA_DEVIATIONS.get(qemu.release, {})


def _judge(check: Callable[[], None], name: str, qemu: QemuUnderTest, failures: list[str]) -> None:
    """Run one command's examples; a failure is a finding unless the command
    departs from its schema on this release (then it is printed as expected)."""
    try:
        check()
    except AssertionError as exc:
        deviating = _deviating(qemu)
        if name in deviating:
            print(f"\nexpected on QEMU {qemu.release}, {deviating[name]}: {exc}")
        else:
            failures.append(str(exc))


def _unexplained_deaths(qemu: QemuUnderTest) -> list[str]:
    known = KNOWN_CRASHES.get(qemu.release, set())
    return [
        f"QEMU {qemu.release} died after {command} (exit status {status}): {err}"
        for command, status, err in qemu.deaths
        if command not in known
    ]


def test_valid_arguments_are_accepted_by_qemu(qemu: QemuUnderTest, live_schema: Schema) -> None:
    specs = Specs(live_schema)
    commands = _commands(live_schema)
    failures: list[str] = []
    examples = 0
    for name in commands:

        @_settings(VALID_EXAMPLES)
        @given(strategies.arguments(live_schema, name))
        def check(args: dict[str, Any]) -> None:
            nonlocal examples
            examples += 1
            errors = specs.errors("arguments", name, args)
            assert not errors, f"{name}: our JSON Schema rejects {args!r}: {errors}"
            reply = qemu.execute(name, args)
            if reply is None or not reply.is_error:
                return
            assert not ARGUMENT_ERROR.match(reply.desc), (
                f"{name}: QEMU rejected valid arguments (Q33): {reply.desc}\n" + _transcript(qemu)
            )

        _judge(check, name, qemu, failures)
    print(
        f"\nvalid: {len(commands)} commands, {examples} examples, "
        f"{len(qemu.restarts)} restarts {qemu.restarts}"
    )
    # A crash on valid arguments is a finding: the judge goes on after it, and
    # only crashes written up for this release are expected.
    failures += _unexplained_deaths(qemu)
    assert not failures, "\n\n".join(failures)


def test_invalid_arguments_are_rejected_by_qemu(qemu: QemuUnderTest, live_schema: Schema) -> None:
    compiled = strategies.compiled(live_schema)
    commands = [
        n
        for n in _commands(live_schema)
        if live_schema.commands[n].arg_type is not None or n not in compiled.lenient_commands
    ]
    deviating = _deviating(qemu)
    failures: list[str] = []
    examples = 0
    labels: dict[str, int] = {}
    not_argument_level: list[str] = []
    for name in commands:

        @_settings(INVALID_EXAMPLES)
        @given(strategies.invalid_arguments(live_schema, name))
        def check(ex: strategies.Invalid) -> None:
            nonlocal examples
            examples += 1
            labels[ex.label] = labels.get(ex.label, 0) + 1
            assert strategies.label_still_holds(live_schema, ex), f"label lost: {ex}"
            reply = qemu.ask(ex.message)
            assert reply is not None, f"{name}: no reply to {ex.message!r}"
            assert reply.error_class == "GenericError", (
                f"{name}: QEMU did not reject {ex.label} at {ex.path} "
                f"({ex.detail}): {json.dumps(ex.arguments)[:500]}\n" + _transcript(qemu)
            )
            # gen: false commands check their own arguments, in their own words.
            if (
                name not in compiled.lenient_commands
                and name not in deviating
                and not REJECTED_ARGUMENT.match(reply.desc)
            ):
                not_argument_level.append(f"{name}/{ex.label}: {reply.desc}")

        _judge(check, name, qemu, failures)
    print(
        f"\ninvalid: {len(commands)} commands, {examples} examples, labels {labels}, "
        f"{len(qemu.restarts)} restarts"
    )
    failures += _unexplained_deaths(qemu)
    if not_argument_level:
        print(
            "rejected, but not with an argument-level message:",
            *not_argument_level[:20],
            sep="\n  ",
        )
    assert not failures, "\n\n".join(failures)
    assert not not_argument_level
