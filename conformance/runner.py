"""Run the check catalogue against one target and collect the verdicts.

A :class:`Runner` owns the target and the shared context; it runs checks one
by one (the CLI runs them all, the pytest plugin one per test item), turning
each check's outcome into a :class:`CheckResult` with its evidence.  A check
that fails or crashes may have left the shared session in any state, so that
session is dropped before the next check.

A failure the baseline expects becomes ``xfail``; a pass where it expects a
failure becomes ``xpass`` (:mod:`conformance.baseline`).

When a failing check leaves the server dead, that check's verdict says so
(with the exit status and output where the harness started the server), and
the later checks do not each fail with "connection refused": a server the
run started itself (``spawn:`` with ``{socket}``, the reference server) is
started afresh for them; any other target is gone, and they are reported as
not run.

A target that is alive but has stopped answering (it greets, then says
nothing, or sends only events or lines that answer nothing) would cost a
reply timeout in every check; after :data:`SILENT_LIMIT` failed checks in a
row in which no wait got a reply, the run stops and reports the rest as not
run, naming the checks that went unanswered.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from conformance import baseline as baselines
from conformance.baseline import Baseline, Entry
from conformance.checks import Check, Fail, Skip, catalogue
from conformance.checks.context import Context
from conformance.session import ReplyTimeout
from conformance.transport import CONNECT_TIMEOUT, ConnectionClosed, TargetError, open_target
from conformance.verdicts import STATUSES, gate_ok

#: Failed checks in a row without a single reply (the detection session's
#: unanswered schema request counts as one) after which a target is taken
#: to have stopped answering.
SILENT_LIMIT = 3


@dataclass
class CheckResult:
    """One check's verdict, with its message and the transcript lines that are its evidence."""

    id: str
    status: str
    rule: str
    message: str
    transcript: list[str] = field(default_factory=list)
    title: str = ""
    duration: float = 0.0
    #: The baseline entry behind an ``xfail`` or ``xpass``.
    expected: Entry | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as the JSON report holds it (a baseline entry by its key)."""
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "rule": self.rule,
            "message": self.message,
            "transcript": self.transcript,
            "duration": round(self.duration, 4),
        }
        if self.expected is not None:
            data["baseline"] = self.expected.key
        return data


@dataclass
class RunResult:
    """Every verdict of one run against one target, and what the target said it is."""

    target: str
    dialect: str
    greeting: dict[str, Any] | None
    results: list[CheckResult] = field(default_factory=list)
    duration: float = 0.0
    #: Stale baseline entries (``xpass``) fail the gate too.
    strict: bool = False
    #: What the server says it is (release) and the program the run started.
    version: str = ""
    program: str = ""

    @property
    def server(self) -> str:
        """The server as it names itself, for reports and baselines."""
        name = baselines.server_name(self.greeting) or (
            f"guest agent {self.version}" if self.version else ""
        )
        return f"{name}: {self.program}" if name and self.program else name or self.program

    @property
    def summary(self) -> dict[str, int]:
        """How many results have each verdict; every verdict is listed, zero counts included."""
        counts = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            counts[r.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing broke (nor went stale, when strict)."""
        return gate_ok(self.summary, self.strict)

    def by_id(self) -> dict[str, CheckResult]:
        """The results keyed by check id."""
        return {r.id: r for r in self.results}

    def to_json(self) -> dict[str, Any]:
        """The run as the JSON report holds it, with the summary."""
        return {
            "target": self.target,
            "dialect": self.dialect,
            "greeting": self.greeting,
            "server": {"version": self.version, "program": self.program, "name": self.server},
            "strict": self.strict,
            "results": [r.to_json() for r in self.results],
            "summary": self.summary,
        }

    def baseline(self) -> dict[str, Any]:
        """A baseline document expecting every failure of this run."""
        return baselines.record(self.results, self.version, self.program, self.server)


class Runner:
    """Open with :meth:`start` (or as a context manager), then run checks."""

    def __init__(
        self,
        target: str,
        dialect: str | None = None,
        only: str | list[str] | None = None,
        reply_timeout: float = 5.0,
        baseline: Baseline | None = None,
        strict: bool = False,
    ) -> None:
        self.spec = target
        self.checks = catalogue(only)
        self.forced_dialect = dialect
        self.reply_timeout = reply_timeout
        self.baseline = baselines.builtin() if baseline is None else baseline
        self.strict = strict
        self.ctx: Context | None = None
        #: Why the target is gone for good (later checks are not run), if it is.
        self.gone: str | None = None
        #: The latest failed checks in a row in which nothing was answered.
        self.silent: list[str] = []

    def start(self) -> Context:
        """Start the target and learn its dialect.  Raises :class:`TargetError` when the
        target cannot be started or reached, and :class:`ValueError` when the forced
        dialect is not a known one."""
        target = open_target(self.spec)
        try:
            ctx = Context(target, self.forced_dialect or target.dialect, self.reply_timeout)
            ctx.start()
        except BaseException:
            target.close()
            raise
        self.ctx = ctx
        if ctx.silent_at_start:
            self.silent = ["the start (qmp_capabilities, query-qmp-schema)"]
        return ctx

    def close(self) -> None:
        """Close the sessions and the target; :meth:`start` may open them again."""
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_check(self, check: Check) -> CheckResult:
        """Run one check (after :meth:`start`) and judge its outcome against the baseline.
        Never raises for what the target does: a check that breaks is an ``error`` verdict."""
        ctx = self.ctx
        assert ctx is not None, "Runner.start() first"
        if self.gone is not None and check.needs_target:
            return CheckResult(
                check.id, "skip", check.rule, f"not run: {self.gone}", title=check.title
            )
        if ctx.dialect not in check.dialects:
            return CheckResult(
                check.id,
                "skip",
                check.rule,
                f"does not apply to the {ctx.dialect} dialect",
                title=check.title,
            )
        ctx.begin(check.id)
        started = time.monotonic()
        try:
            status, message = "pass", check(ctx)
        except Skip as exc:
            status, message = "skip", str(exc)
        except Fail as exc:
            status, message = "fail", exc.text()
        except (ReplyTimeout, ConnectionClosed) as exc:
            # The target went quiet or away in the middle of a check: a finding.
            status, message = "fail", f"the server stopped responding: {exc}"
        except TargetError as exc:
            status, message = "fail", f"the target could not be reached again: {exc}"
        except Exception:
            status, message = "error", traceback.format_exc(limit=6)
        if status in ("fail", "error"):
            ctx.discard()
        evidence = ctx.evidence() if status != "skip" else []
        if status in ("fail", "error"):
            message += self._after_failure(ctx, check)
        message += self._after_silence(ctx, check, status)
        result = CheckResult(
            check.id, status, check.rule, message, evidence, check.title, time.monotonic() - started
        )
        return self._against_baseline(result, ctx)

    def _against_baseline(self, result: CheckResult, ctx: Context) -> CheckResult:
        version, program = ctx.version, ctx.target.program
        entry: Entry | None = None
        if result.status == "fail":
            entry = self.baseline.expected(
                result.id, version, program, result.message + "\n" + "\n".join(result.transcript)
            )
            if entry is not None:
                result.status = "xfail"
                result.message = (
                    f"EXPECTED FAILURE {entry.key} ({entry.source}): "
                    f"{entry.reason}\nWhat was seen: {result.message}"
                )
        elif result.status == "pass":
            entry = self.baseline.stale(result.id, version, program)
            if entry is not None:
                result.status = "xpass"
                result.message = (
                    f"STALE BASELINE ENTRY {entry.key} ({entry.source}): the "
                    "check passes, but the baseline expects it to fail"
                )
        result.expected = entry
        return result

    def _after_failure(self, ctx: Context, check: Check) -> str:
        """Whether the failed check left the server dead: if so, bring up a
        fresh one for the next checks (a server this run started) or mark the
        target gone; what happened, to append to the check's message."""
        target = ctx.target
        server = target.server
        if target.restarts:
            return ""  # every connection starts its own process
        if server is not None:
            if server.proc.poll() is None:
                return ""
            fate = server.diagnostics()
        else:
            try:
                target.connect(CONNECT_TIMEOUT).close()
                return ""
            except (TargetError, ConnectionClosed, OSError) as exc:
                fate = str(exc)
        if target.kind in ("served", "reference"):
            ctx.close()
            try:
                ctx.target = open_target(self.spec)
            except TargetError as exc:
                self.gone = f"the target died in {check.id} and could not be started again: {exc}"
                return f"\nThe server died in this check ({fate}) and did not start again."
            return (
                f"\nThe server died in this check ({fate}); "
                "a fresh one was started for the remaining checks."
            )
        self.gone = f"the target died in {check.id} ({fate})"
        return f"\nThe server died in this check: {fate}"

    def _after_silence(self, ctx: Context, check: Check, status: str) -> str:
        """Count failed checks whose every wait went unanswered (a check that
        waited for nothing says nothing either way); at the limit, give the
        target up; what to append to the check's message."""
        answered, unanswered = ctx.waits()
        if answered:
            self.silent = []
        if answered or not unanswered or status not in ("fail", "error"):
            return ""
        self.silent.append(check.id)
        if len(self.silent) < SILENT_LIMIT or self.gone is not None:
            return ""
        self.gone = f"the target stopped answering (no reply at all in {', '.join(self.silent)})"
        return (
            f"\nNo reply came in this check nor in the {len(self.silent) - 1} before it: "
            "the remaining checks are not run."
        )

    def run(self) -> RunResult:
        """Every selected check; starts and closes the target itself.  Raises as
        :meth:`start` does."""
        started = time.monotonic()
        ctx = self.start()
        try:
            run = RunResult(
                self.spec,
                ctx.dialect.name,
                ctx.greeting,
                strict=self.strict,
                version=ctx.version,
                program=ctx.target.program,
            )
            for check in self.checks:
                run.results.append(self.run_check(check))
        finally:
            self.close()
        run.duration = time.monotonic() - started
        return run


def run(
    target: str,
    dialect: str | None = None,
    only: str | list[str] | None = None,
    baseline: Baseline | None = None,
    strict: bool = False,
) -> RunResult:
    """Run the catalogue against ``target``, judged against ``baseline`` (the
    built-in known deviations by default); raises TargetError if unreachable, and
    ValueError when ``dialect`` is not a known one."""
    return Runner(target, dialect, only, baseline=baseline, strict=strict).run()
