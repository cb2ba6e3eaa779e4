"""Finding files: ``DIR/findings/<rule>-<signature>.qmp``, written the moment a
finding is confirmed, atomically (temporary file, fsync, rename, fsync of the
directory), so a campaign killed at any instant leaves either the previous
complete file or the new complete file, never a torn one.

The format is plain text, meant to be read by people and by
:mod:`conformance.fuzz.replay`::

    # qmp-conform finding, format 1
    # replay: qmp-conform replay THIS_FILE --target TARGET
    rule: Q15
    signature: id-not-echoed-1a2b3c4d
    oracle: id-echo
    summary: the reply to {...} does not carry its id intact; ...
    target: reference:defect=...
    found: 2026-11-22T01:50:00+00:00
    steps: 4
    bytes: 161
    == program ==
    {"kind": "connect", "conn": 0}
    {"kind": "command", "conn": 0, "b64": "eyJl...", "text": "{\\"execute\\"...", "meta": {...}}
    ...
    == transcript ==
    [   0.0003s] c0 <- {"QMP": {...}}\\r\\n
    [   0.0011s] c0 -> {"execute":"qmp_capabilities","id":"qc-neg-0"}
    ...
    == end ==

The program section is the replayable part: one JSON object per step with
the exact bytes in ``b64`` (``text`` is an escaped preview for people).  The
transcript is the evidence of what the server sent back when it was found.
Two findings with the same rule and signature are the same file; the
smaller program (fewer steps, then fewer bytes) wins, so the stored one
gets more minimal as a campaign shrinks it.

A stateful finding (``qmp-conform fuzz --stateful``) has the same layout.
Its header names the state machine (``machine: BlockJobMachine``), its
oracle is ``stateful`` and its rule a job rule (J1-J8) or a Q-number; its
program section holds the machine's steps, one JSON object per rule run
(:class:`~conformance.fuzz.program.MachineRun`), which a replay runs again
on a fresh connection::

    machine: BlockJobMachine
    ...
    == program ==
    {"args": {"speed": 0}, "returns": "job0", "step": "start"}
    {"args": {"job": "job0"}, "step": "complete"}
    == transcript ==
    ...
"""

from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from conformance.errors import ConformanceError
from conformance.fuzz.execute import Observation
from conformance.fuzz.oracles import Violation
from conformance.fuzz.program import MachineRun, Program

FORMAT_LINE = "# qmp-conform finding, format 1"
END_LINE = "== end =="


@dataclass
class Finding:
    """A finding file's content: the rule and signature, the program that shows
    the bug (a stateful finding's: the machine's run), the other header lines
    and the transcript of the replies."""

    rule: str
    signature: str
    program: Program | MachineRun
    header: dict[str, str] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)

    @property
    def ident(self) -> str:
        """The finding's name and file stem: ``<rule>-<signature>``."""
        return f"{self.rule}-{self.signature}"

    def weight(self) -> tuple[int, int]:
        """The program's size as (steps, bytes): of two findings the lighter wins."""
        return (len(self.program.steps), self.program.size())

    def render(self) -> str:
        """The text of the finding file (see the module docstring)."""
        lines = [
            FORMAT_LINE,
            "# replay: qmp-conform replay THIS_FILE --target TARGET",
            f"rule: {self.rule}",
            f"signature: {self.signature}",
        ]
        for key, value in self.header.items():
            if key not in ("rule", "signature"):
                lines.append(f"{key}: {' '.join(value.split())}")
        lines += [
            "== program ==",
            *self.program.lines(),
            "== transcript ==",
            *self.transcript,
            END_LINE,
        ]
        return "\n".join(lines) + "\n"


class FindingFileError(ConformanceError, ValueError):
    """A file that is not a complete finding file."""


def parse(text: str) -> Finding:
    """Read a finding file; FindingFileError when it is not one (or is incomplete)."""
    lines = text.splitlines()
    if not lines or lines[0] != FORMAT_LINE:
        raise FindingFileError("not a qmp-conform finding file (bad first line)")
    if lines[-1] != END_LINE:
        raise FindingFileError("finding file is incomplete (no end line)")
    header: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i] != "== program ==":
        if not lines[i].startswith("#"):
            key, sep, value = lines[i].partition(": ")
            if not sep:
                raise FindingFileError(f"bad header line {lines[i]!r}")
            header[key] = value
        i += 1
    try:
        tr = lines.index("== transcript ==")
    except ValueError as exc:
        raise FindingFileError("finding file has no transcript section") from exc
    try:
        program: Program | MachineRun
        if "machine" in header:
            sent = int(header.get("bytes", "0") or 0)
            program = MachineRun.from_lines(header["machine"], lines[i + 1 : tr], sent)
        else:
            program = Program.from_lines(lines[i + 1 : tr])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FindingFileError(f"bad program line: {exc}") from exc
    if "rule" not in header or "signature" not in header:
        raise FindingFileError("finding file names no rule or signature")
    return Finding(header["rule"], header["signature"], program, header, lines[tr + 1 : -1])


def load(path: str | os.PathLike[str]) -> Finding:
    """The finding stored at ``path``.

    Raises :class:`FindingFileError` (naming the file) when it is not a finding
    file, and :class:`OSError` when it cannot be read.
    """
    try:
        return parse(Path(path).read_text(encoding="utf-8"))
    except (FindingFileError, UnicodeDecodeError) as exc:
        raise FindingFileError(f"{path}: {exc}") from exc


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once, at import: os.umask() can only be read by setting it, which
#: would race with other threads creating files.
_UMASK = _read_umask()


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that no reader ever sees a partial file.

    Raises :class:`OSError` when it cannot be written (a temporary file left
    over is removed).
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            # mkstemp makes the file private; a finding is shared like any
            # file the user writes (mode 0666 less the umask).
            os.fchmod(handle.fileno(), 0o666 & ~_UMASK)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FindingStore:
    """The findings folder of one campaign (shared by its workers).

    Construction creates ``OUT/findings``: raises :class:`OSError` when it cannot.
    """

    def __init__(self, out_dir: str | os.PathLike[str], target: str = "") -> None:
        self.dir = Path(out_dir) / "findings"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.target = target
        self._lock = threading.Lock()
        self.weights: dict[str, tuple[int, int]] = {}

    def path(self, ident: str) -> Path:
        """Where the finding ``ident`` is (or would be) stored."""
        return self.dir / f"{ident}.qmp"

    def _stored_weight(self, ident: str) -> tuple[int, int] | None:
        if ident in self.weights:
            return self.weights[ident]
        path = self.path(ident)
        if not path.exists():
            return None
        try:
            found = load(path)
        except (OSError, ValueError):
            return None
        self.weights[ident] = found.weight()
        return self.weights[ident]

    def finding(
        self,
        violation: Violation,
        program: Program | MachineRun,
        transcript: list[str],
    ) -> Finding:
        """The finding ``violation`` makes, shown by ``program`` (a stateful
        finding's header also names its machine)."""
        header = {"machine": program.machine} if isinstance(program, MachineRun) else {}
        header.update(
            {
                "oracle": violation.oracle,
                "summary": violation.summary,
                "target": self.target,
                "found": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "steps": str(len(program.steps)),
                "bytes": str(program.size()),
            }
        )
        return Finding(violation.rule, violation.signature, program, header, transcript)

    def record(self, violation: Violation, obs: Observation) -> tuple[Path, bool]:
        """Write (or improve) the finding for ``violation``; returns (path, first time).

        Raises :class:`OSError` when the finding file cannot be written.
        """
        return self.keep(self.finding(violation, obs.program, obs.transcript()))

    def keep(self, finding: Finding) -> tuple[Path, bool]:
        """Write ``finding`` unless a lighter one with its ident is stored; returns
        (path, first time).

        Raises :class:`OSError` when the finding file cannot be written.
        """
        ident = finding.ident
        with self._lock:
            old = self._stored_weight(ident)
            if old is not None and old <= finding.weight():
                return self.path(ident), False
            write_atomic(self.path(ident), finding.render())
            self.weights[ident] = finding.weight()
            return self.path(ident), old is None

    def files(self) -> list[Path]:
        """Every finding file in the folder, sorted by name."""
        return sorted(self.dir.glob("*.qmp"))
