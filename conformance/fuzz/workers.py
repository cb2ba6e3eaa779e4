"""Running a campaign in N worker processes.

Each worker is a process of its own (Hypothesis and the oracles are
CPU-bound Python, so threads would share one core) with its own target
instance when the target is started by us (``spawn:``, ``reference``), its
own seed, and the campaign's shared example database and findings folder.
The parent only adds up the figures the workers send and shows them.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from conformance.errors import ConformanceError
from conformance.fuzz.campaign import Campaign, CampaignConfig
from conformance.fuzz.database import open_database
from conformance.fuzz.generate import DEFAULT_COMMANDS
from conformance.fuzz.progress import Progress, Stats
from conformance.protocol.dialects import DEFAULT, Dialect

#: Seconds between the figures a worker sends to the parent.
REPORT_EVERY = 0.5


@dataclass(frozen=True)
class CampaignSpec:
    """Everything a worker needs, in picklable form."""

    target: str
    out_dir: str
    duration: float | None = None
    max_examples: int | None = None
    seed: int | None = None
    db: str | None = None
    commands: tuple[str, ...] = DEFAULT_COMMANDS
    probe_timeout: float = 3.0
    dialect: Dialect = DEFAULT
    db_only: bool = False
    stateful: str = "off"
    machines: tuple[str, ...] = ()

    def config(self, worker: int) -> CampaignConfig:
        """The :class:`CampaignConfig` of worker number ``worker``, its example
        database opened.

        Raises :class:`DatabaseError` or :class:`OSError` when the database
        cannot be opened (see :func:`open_database`).
        """
        db = open_database(self.db or os.path.join(self.out_dir, "hypothesis-db"))
        return CampaignConfig(
            target=self.target,
            out_dir=self.out_dir,
            duration=self.duration,
            max_examples=self.max_examples,
            seed=self.seed,
            database=db,
            commands=self.commands,
            probe_timeout=self.probe_timeout,
            worker=worker,
            dialect=self.dialect,
            db_only=self.db_only,
            stateful=self.stateful,
            machines=self.machines,
        )


class SetupError(ConformanceError):
    """A worker could not start its campaign (target unreachable...)."""


@contextlib.contextmanager
def _interruptible(campaign: Campaign, stats: Stats) -> Iterator[None]:
    """Ctrl-C ends the block with ``stats.interrupted`` set.  The handler raises
    KeyboardInterrupt and also asks the campaign to stop (see
    :meth:`Campaign.request_stop`), so that it ends even if the exception is lost."""

    def handler(signum: int, frame: FrameType | None) -> None:
        campaign.request_stop()
        raise KeyboardInterrupt

    # Only the main thread may set a signal handler.
    installed = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, handler) if installed else None
    try:
        yield
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous)


def run_inline(spec: CampaignSpec, progress: Progress) -> Stats:
    """One worker, in this process; Ctrl-C ends it with ``interrupted`` set.

    Raises :class:`DatabaseError` or :class:`OSError` when the example database
    or the findings folder cannot be opened, :class:`TargetError` or
    :class:`QAPIError` when the target cannot be set up, and what
    :meth:`Campaign.run` raises (Ctrl-C excepted).
    """
    stats = Stats()
    config = spec.config(0)
    config.on_example = progress.update
    config.on_finding = lambda ident, path: progress.announce(f"finding {ident}: {path}")
    campaign = Campaign(config, stats)
    try:
        with _interruptible(campaign, stats):
            campaign.setup()
            campaign.run()
    finally:
        campaign.close()
    return stats


def _worker(spec: CampaignSpec, index: int, out: Any) -> None:
    stats = Stats()
    last = [0.0]

    def report(s: Stats) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_EVERY:
            last[0] = now
            out.put(("stats", index, s))

    campaign: Campaign | None = None
    try:
        config = spec.config(index)  # opens the database: may fail like the rest
        config.on_example = report
        config.on_finding = lambda ident, path: out.put(("finding", index, (ident, path)))
        campaign = Campaign(config, stats)
        with _interruptible(campaign, stats):
            campaign.setup()
            campaign.run()
    except Exception as exc:  # reported to the parent, which decides
        out.put(("error", index, f"{type(exc).__name__}: {exc}"))
    finally:
        if campaign is not None:
            with contextlib.suppress(Exception):
                campaign.close()
        out.put(("done", index, stats))


def run_parallel(spec: CampaignSpec, workers: int, progress: Progress) -> Stats:
    """``workers`` processes; their figures added up.

    Raises :class:`SetupError` when every worker ended with an error (as a
    rule: none could set its campaign up).
    """
    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    share = None if spec.max_examples is None else max(1, -(-spec.max_examples // workers))
    procs = [
        ctx.Process(target=_worker, args=(replace(spec, max_examples=share), i, out), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    latest: dict[int, Stats] = {}
    done: set[int] = set()
    errors: list[str] = []
    grace = (spec.duration or 0) + 60.0
    hard_stop = time.monotonic() + grace if spec.duration else float("inf")
    try:
        while len(done) < workers:
            try:
                kind, index, payload = out.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() > hard_stop or not any(p.is_alive() for p in procs):
                    break
                continue
            if kind == "stats" or kind == "done":
                latest[index] = payload
                if kind == "done":
                    done.add(index)
            elif kind == "finding":
                progress.announce(f"finding {payload[0]}: {payload[1]} (worker {index})")
            elif kind == "error":
                errors.append(f"worker {index}: {payload}")
                progress.announce(errors[-1])
            total = Stats()
            for s in latest.values():
                total.merge(s)
            progress.update(total)
    except KeyboardInterrupt:
        # Ask the workers to finish (they write their summaries), then collect.
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                if p.pid is not None:
                    os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 10
        while len(done) < workers and time.monotonic() < deadline:
            try:
                kind, index, payload = out.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind in ("stats", "done"):
                latest[index] = payload
                if kind == "done":
                    done.add(index)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    total = Stats()
    for s in latest.values():
        total.merge(s)
    if errors and len(errors) == workers:
        raise SetupError("; ".join(errors))
    return total
