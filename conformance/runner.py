"""Run the check catalogue against one target and collect the verdicts.

A :class:`Runner` owns the target and the shared context; it runs checks one
by one (the CLI runs them all, the pytest plugin one per test item), turning
each check's outcome into a :class:`CheckResult` with its evidence.  A check
that fails or crashes may have left the shared session in any state, so that
session is dropped before the next check.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from conformance.checks import Check, Fail, Skip, catalogue, known
from conformance.checks.context import Context
from conformance.session import ReplyTimeout
from conformance.transport import ConnectionClosed, TargetError, open_target

STATUSES = ("pass", "fail", "skip", "error")


@dataclass
class CheckResult:
    id: str
    status: str
    rule: str
    message: str
    transcript: list[str] = field(default_factory=list)
    title: str = ""
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "rule": self.rule,
                "message": self.message, "transcript": self.transcript}


@dataclass
class RunResult:
    target: str
    dialect: str
    greeting: dict[str, Any] | None
    results: list[CheckResult] = field(default_factory=list)
    duration: float = 0.0

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for r in self.results:
            counts[r.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing broke."""
        s = self.summary
        return s["fail"] == 0 and s["error"] == 0

    def by_id(self) -> dict[str, CheckResult]:
        return {r.id: r for r in self.results}

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "dialect": self.dialect, "greeting": self.greeting,
                "results": [r.to_json() for r in self.results], "summary": self.summary}


class Runner:
    """Open with :meth:`start` (or as a context manager), then run checks."""

    def __init__(self, target: str, dialect: str | None = None,
                 only: str | list[str] | None = None, reply_timeout: float = 5.0) -> None:
        self.spec = target
        self.checks = catalogue(only)
        self.forced_dialect = dialect
        self.reply_timeout = reply_timeout
        self.ctx: Context | None = None

    def start(self) -> Context:
        """Start the target and learn its dialect; raises TargetError."""
        target = open_target(self.spec)
        try:
            dialect = self.forced_dialect
            if dialect is None and target.kind == "reference":
                dialect = target.options.get("dialect", ["qemu"])[-1]
            ctx = Context(target, dialect, self.reply_timeout)
            ctx.start()
        except BaseException:
            target.close()
            raise
        self.ctx = ctx
        return ctx

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_check(self, check: Check) -> CheckResult:
        ctx = self.ctx
        assert ctx is not None, "Runner.start() first"
        if ctx.dialect not in check.dialects:
            return CheckResult(check.id, "skip", check.rule,
                               f"does not apply to the {ctx.dialect} dialect", title=check.title)
        ctx.begin()
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
        if status == "fail":
            deviation = known.match(check.id, ctx.greeting, message + "\n".join(evidence))
            if deviation is not None:
                status = "skip"
                message = (f"KNOWN DEVIATION {deviation.key} (docs/known-deviations.md): "
                           f"{deviation.reason}\nWhat was seen: {message}")
        return CheckResult(check.id, status, check.rule, message, evidence, check.title,
                           time.monotonic() - started)

    def run(self) -> RunResult:
        """Every selected check; starts and closes the target itself."""
        started = time.monotonic()
        ctx = self.start()
        try:
            run = RunResult(self.spec, ctx.dialect, ctx.greeting)
            for check in self.checks:
                run.results.append(self.run_check(check))
        finally:
            self.close()
        run.duration = time.monotonic() - started
        return run


def run(target: str, dialect: str | None = None,
        only: str | list[str] | None = None) -> RunResult:
    """Run the catalogue against ``target``; raises TargetError if unreachable."""
    return Runner(target, dialect, only).run()
