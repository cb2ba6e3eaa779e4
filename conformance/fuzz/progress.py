"""Campaign figures (elapsed, examples, messages per second, findings, coverage),
shown live while it runs and summarised as JSON at the end.

:class:`Stats` is plain data so workers can send theirs to the parent, which
adds them up.  The live display uses ``rich`` when it is installed and
writes plain lines otherwise (and always when the output is not a terminal).
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO


@dataclass
class Stats:
    """The figures of a campaign; plain data, so that workers can send theirs
    to the parent, which adds them up (:meth:`merge`)."""

    examples: int = 0
    messages: int = 0
    bytes_sent: int = 0
    confirmations: int = 0
    unconfirmed: int = 0
    restarts: int = 0
    findings: dict[str, str] = field(default_factory=dict)  # ident -> path
    commands: set[str] = field(default_factory=set)
    rules: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    #: Why the campaign stopped early because the target could not be reached again.
    gone: str = ""
    #: Runs of the stateful machines (``--stateful``), in all and per machine.
    stateful_examples: int = 0
    stateful_machines: dict[str, int] = field(default_factory=dict)
    #: Machines the target cannot run, and why.
    stateful_skipped: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Stats) -> None:
        """Add ``other``'s figures to these."""
        self.examples += other.examples
        self.messages += other.messages
        self.bytes_sent += other.bytes_sent
        self.confirmations += other.confirmations
        self.unconfirmed += other.unconfirmed
        self.restarts += other.restarts
        self.interrupted |= other.interrupted
        self.gone = self.gone or other.gone
        self.findings.update(other.findings)
        self.commands |= other.commands
        self.rules |= other.rules
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.stateful_examples += other.stateful_examples
        for k, v in other.stateful_machines.items():
            self.stateful_machines[k] = self.stateful_machines.get(k, 0) + v
        self.stateful_skipped.update(other.stateful_skipped)

    def summary(self, elapsed: float, **extra: Any) -> dict[str, Any]:
        """The end-of-campaign summary, ready for JSON; ``extra`` items are added."""
        data = asdict(self)
        data["commands"] = sorted(self.commands)
        data["rules"] = sorted(self.rules)
        return {
            "elapsed": round(elapsed, 3),
            "examples": self.examples,
            "messages": self.messages,
            "messages_per_second": round(self.messages / elapsed, 1) if elapsed > 0 else 0.0,
            "bytes_sent": self.bytes_sent,
            "findings": len(self.findings),
            "finding_files": sorted(self.findings.values()),
            "commands_covered": len(self.commands),
            "commands": data["commands"],
            "rules_covered": data["rules"],
            "restarts": self.restarts,
            "confirmations": self.confirmations,
            "unconfirmed": self.unconfirmed,
            "error_classes": dict(sorted(self.errors.items())),
            "interrupted": self.interrupted,
            "target_gone": self.gone or None,
            "stateful_examples": self.stateful_examples,
            "stateful_machines": dict(sorted(self.stateful_machines.items())),
            "stateful_skipped": dict(sorted(self.stateful_skipped.items())),
            **extra,
        }

    def line(self, elapsed: float) -> str:
        """One line of live progress, ``elapsed`` seconds in."""
        rate = self.messages / elapsed if elapsed > 0 else 0.0
        stateful = f"  stateful {self.stateful_examples}" if self.stateful_examples else ""
        return (
            f"[{elapsed:7.1f}s] examples {self.examples}{stateful}  messages {self.messages} "
            f"({rate:.0f}/s)  findings {len(self.findings)}  commands {len(self.commands)}"
            f"  rules {len(self.rules)}"
        )


class Progress:
    """Shows :class:`Stats` at most every ``interval`` seconds."""

    def __init__(
        self, stream: TextIO | None = None, interval: float = 1.0, quiet: bool = False
    ) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.quiet = quiet
        self.start = time.monotonic()
        self._last = 0.0
        self._live: Any = None
        if not quiet and self.stream.isatty():
            # rich is optional: imported by name so that its absence is no error.
            try:
                console = importlib.import_module("rich.console")
                live = importlib.import_module("rich.live")
            except ImportError:
                pass
            else:
                self._live = live.Live(
                    console=console.Console(file=self.stream), auto_refresh=False
                )
                self._live.start()

    @property
    def elapsed(self) -> float:
        """Seconds since the display was made."""
        return time.monotonic() - self.start

    def update(self, stats: Stats, force: bool = False) -> None:
        """Show ``stats``, unless quiet or shown less than ``interval`` seconds
        ago (``force`` shows them anyway, quiet excepted)."""
        now = time.monotonic()
        if self.quiet or (not force and now - self._last < self.interval):
            return
        self._last = now
        text = stats.line(self.elapsed)
        if self._live is not None:
            self._live.update(text, refresh=True)
        else:
            print(text, file=self.stream, flush=True)

    def announce(self, text: str) -> None:
        """Show a one-off line (a new finding, a worker's error) unless quiet."""
        if self._live is not None:
            self._live.console.print(text)
        elif not self.quiet:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """End the live display, if there is one."""
        if self._live is not None:
            self._live.stop()
            self._live = None
