"""Run a client under each liberty and give the verdicts (``qmp-conform check-client``).

The client is a command line in which ``{socket}`` stands for the UNIX
socket it must connect to (a Python callable ``module:function`` is run as
such a command: the function gets the socket path).  It runs once with no
liberty taken, which must succeed and sets the result every other run is
held to, then once under each liberty, each time against a fresh reference
server behind the hostile proxy:

* ``client.plain``: the client works at all (exit status 0);
* ``client.liberty.NAME``: under a liberty a conforming client survives with
  the same result (``same_result``), it exits 0 and prints what it printed
  without it; under the others (its commands fail, the connection drops) it
  ends in its own time, without a traceback or a signal;
* ``client.rule.ID``: the rules the client's own bytes show, judged over
  every connection of every run (:mod:`conformance.client.judge`).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from conformance.client import liberties, proxy
from conformance.client.judge import CLIENT_RULES, Breach, judge
from conformance.client.liberties import Liberty
from conformance.errors import ConformanceError
from conformance.runner import CheckResult, RunResult

#: How long one run of the client may take.
DEFAULT_TIMEOUT = 60.0
#: Runs of the client at once (each against its own server).
PARALLEL = 4
#: What a Python crash leaves on stderr.
TRACEBACK = "Traceback (most recent call last)"


class ClientError(ConformanceError):
    """The client command cannot be used (malformed, no ``{socket}``)."""


def client_command(text: str | None = None, function: str | None = None) -> list[str]:
    """The argv template of a client given as a command line or a ``module:function``.

    Raises :class:`ClientError` when neither or both are given, the command
    has no ``{socket}``, or the function is not ``module:function``.
    """
    if (text is None) == (function is None):
        raise ClientError("give the client as a command line or as module:function, one of them")
    if function is not None:
        module, _, name = function.partition(":")
        if not module or not name:
            raise ClientError(f"not module:function: {function!r}")
        code = (
            "import importlib, sys; m, f = sys.argv[1].split(':', 1); "
            "getattr(importlib.import_module(m), f)(sys.argv[2])"
        )
        return [sys.executable, "-c", code, function, "{socket}"]
    assert text is not None
    argv = shlex.split(text)
    if not any("{socket}" in a for a in argv):
        raise ClientError(f"the client command has no {{socket}} to connect to: {text!r}")
    return argv


@dataclass
class ClientRun:
    """One run of the client: under which liberty, how it ended, the exchange."""

    liberty: Liberty | None
    status: int | None  # None: it did not end in time
    stdout: str
    stderr: str
    duration: float
    record: proxy.Record

    @property
    def crashed(self) -> bool:
        """Killed by a signal, or ended by an uncaught Python exception."""
        return (self.status is not None and self.status < 0) or TRACEBACK in self.stderr

    def ending(self) -> str:
        """How the run ended, in words, with the end of its stderr."""
        if self.status is None:
            how = "did not end in time (killed)"
        elif self.status < 0:
            how = f"was killed by signal {-self.status}"
        else:
            how = f"exited with status {self.status}"
        tail = self.stderr.strip().splitlines()[-6:]
        return how + (": " + " | ".join(tail) if tail else "")


def run_once(
    argv: Sequence[str], liberty: Liberty | None, timeout: float, schema: str | None = None
) -> ClientRun:
    """The client against a fresh reference server behind the proxy, once."""
    from reference_server import launch

    with launch(schema=schema) as upstream, proxy.running(upstream, liberty) as hostile:
        command = [a.replace("{socket}", hostile.path) for a in argv]
        start = time.monotonic()
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
            status, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            status = None
            out = _text(exc.stdout)
            err = _text(exc.stderr)
        except OSError as exc:
            raise ClientError(f"cannot run the client: {exc}") from exc
        return ClientRun(liberty, status, out, err, time.monotonic() - start, hostile.record)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data or ""


def check_client(
    argv: Sequence[str],
    names: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    schema: str | None = None,
    *,
    echoes: bool = False,
) -> RunResult:
    """Every verdict on the client ``argv``; ``names`` picks liberties (default: all).
    A client that ``echoes`` what it receives (a shell) is held only to
    ending cleanly: its output changes with what the server writes.

    Raises :class:`ClientError` for an unknown liberty name or a client that
    cannot be started.
    """
    unknown = [n for n in names or () if n not in liberties.BY_NAME]
    if unknown:
        raise ClientError(f"unknown liberty {unknown[0]!r} (see --list)")
    chosen = [liberties.BY_NAME[n] for n in names] if names else list(liberties.CATALOGUE)
    began = time.monotonic()
    result = RunResult(target=" ".join(argv), dialect="qemu", greeting=None, program="client")
    plain = run_once(argv, None, timeout, schema)
    runs = [plain]
    works = plain.status == 0 and not plain.crashed
    result.results.append(
        CheckResult(
            "client.plain",
            "pass" if works else "fail",
            "-",
            f"without liberties the client {plain.ending()}",
            _evidence(plain),
            "the client works against a server taking no liberty",
            plain.duration,
        )
    )
    if not works:
        result.results += [
            CheckResult(
                f"client.liberty.{liberty.name}",
                "skip",
                liberty.rule,
                "the client does not work without liberties",
                title=liberty.summary,
            )
            for liberty in chosen
        ]
    else:
        # Each run has its own server and proxy: they can run side by side.
        with ThreadPoolExecutor(PARALLEL) as pool:
            done = list(pool.map(lambda lib: run_once(argv, lib, timeout, schema), chosen))
        runs += done
        result.results += [
            liberty_verdict(lib, run, plain, echoes=echoes)
            for lib, run in zip(chosen, done, strict=True)
        ]
    result.results += _rule_verdicts(runs)
    result.duration = time.monotonic() - began
    return result


def liberty_verdict(
    liberty: Liberty, run: ClientRun, plain: ClientRun, *, echoes: bool = False
) -> CheckResult:
    """The verdict on ``run`` under ``liberty``, held to ``plain``, the run without
    (only to ending cleanly for a client that ``echoes`` the wire)."""
    same = liberty.same_result and not echoes
    problem = ""
    if run.status is None:
        problem = f"the client {run.ending()}"
    elif run.crashed:
        problem = f"the client crashed: it {run.ending()}"
    elif same and run.status != 0:
        problem = f"the client failed where it succeeds without the liberty: it {run.ending()}"
    elif same and run.stdout != plain.stdout:
        problem = (
            "the client's result differs from its result without the liberty: "
            f"{_first_difference(plain.stdout, run.stdout)}"
        )
    status = "fail" if problem else "pass"
    message = problem or (
        f"same result as without it ({run.duration:.1f} s)"
        if same
        else f"the client ended cleanly: it {run.ending()}"
    )
    return CheckResult(
        f"client.liberty.{liberty.name}",
        status,
        liberty.rule,
        message,
        _evidence(run),
        liberty.summary,
        run.duration,
    )


def _first_difference(expected: str, seen: str) -> str:
    for n, (a, b) in enumerate(zip(expected.splitlines(), seen.splitlines(), strict=False)):
        if a != b:
            return f"line {n + 1}: expected {a[:200]!r}, printed {b[:200]!r}"
    return f"{len(expected.splitlines())} lines expected, {len(seen.splitlines())} printed"


def _evidence(run: ClientRun) -> list[str]:
    name = run.liberty.name if run.liberty else "none"
    return [f"-- liberty: {name}", *run.record.transcript(), f"-- the client {run.ending()}"]


def _rule_verdicts(runs: list[ClientRun]) -> list[CheckResult]:
    found: dict[str, list[tuple[ClientRun, Breach]]] = {rule: [] for rule in CLIENT_RULES}
    for run in runs:
        for conn in run.record.connections():
            chunks = [(s, d) for _, c, s, d in run.record.chunks if c == conn]
            for breach in judge(chunks):
                found[breach.rule].append((run, breach))
    out: list[CheckResult] = []
    for rule, breaches in found.items():
        if not breaches:
            out.append(
                CheckResult(
                    f"client.rule.{rule}",
                    "pass",
                    rule,
                    f"kept over {len(runs)} runs",
                    title=CLIENT_RULES[rule],
                )
            )
            continue
        run, first = breaches[0]
        out.append(
            CheckResult(
                f"client.rule.{rule}",
                "fail",
                rule,
                f"{first.message} ({len(breaches)} times)",
                [f"-- {first.evidence}", *_evidence(run)],
                CLIENT_RULES[rule],
            )
        )
    return out
