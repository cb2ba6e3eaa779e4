"""Baselines: failures a CI gate expects, and the built-in known deviations.

A baseline is a JSON file of entries, each naming a check, the server
releases it applies to and, optionally, a symptom that must appear in the
failure's message or transcript::

    {"qmp-conformance-baseline": 1,
     "entries": [{"key": "KD-1", "check": "robustness.error-flood",
                  "releases": ">=5.2,<=10.0.2", "symptom": "QMP_REQ_QUEUE_LEN_MAX",
                  "reason": "...", "seen_on": ["QEMU 7.2.22 (Debian ...)"],
                  "flaky": true}]}

A failure an entry matches is reported as ``xfail`` with the entry's reason;
a check that passes where a non-flaky entry applies is ``xpass``: the entry is
stale (pytest's strict xfail, in strict mode).  The known deviations of real
QEMU releases that the project found (``docs/known-deviations.md``) are the
built-in baseline, used when the user names none.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from conformance.errors import ConformanceError

#: The value of the format marker this module reads and writes.
FORMAT = 1
FORMAT_KEY = "qmp-conformance-baseline"

#: Names that stand, on the command line, for the built-in known deviations
#: and for no expectation at all.
BUILTIN = "builtin"
NONE = "none"


class BaselineError(ConformanceError, ValueError):
    """A baseline file that cannot be read or does not have the documented shape."""


@dataclass(frozen=True)
class Entry:
    """One expected failure."""

    key: str
    check: str
    #: A version specifier (``>=5.2,<6``) on the greeting's ``major.minor.micro``;
    #: ``*`` matches every server, with a greeting or without (the guest agent).
    releases: str = "*"
    #: A regular expression searched in the failure's message and transcript.
    symptom: str = ""
    reason: str = ""
    #: Where the failure was seen, as the greeting names the server.
    seen_on: tuple[str, ...] = ()
    #: A regular expression the server program's name must match in full
    #: (``qemu-storage-daemon``), for a failure only one program of a release
    #: shows; a target whose program the run does not know (a socket) is not
    #: told apart.
    program: str = ""
    #: Intermittent: a pass is not reported as stale.
    flaky: bool = False
    #: The file the entry came from, for messages.
    source: str = field(default="", compare=False)

    def applies_to(self, check_id: str, version: str, program: str = "") -> bool:
        """Whether the entry speaks of this check on this server release."""
        if self.check != check_id:
            return False
        if self.program and program and re.fullmatch(self.program, program) is None:
            return False
        if self.releases.strip() == "*":
            return True
        try:
            return bool(version) and Version(version) in SpecifierSet(self.releases)
        except InvalidVersion:
            return False

    def matches(self, check_id: str, version: str, program: str, evidence: str) -> bool:
        """Whether a failure with ``evidence`` is the one this entry expects."""
        return self.applies_to(check_id, version, program) and (
            not self.symptom or re.search(self.symptom, evidence) is not None
        )

    def to_json(self) -> dict[str, Any]:
        """The entry as a baseline file holds it: members left at their defaults and the source
        file are left out."""
        data = asdict(self)
        data.pop("source")
        data["seen_on"] = list(self.seen_on)
        return {k: v for k, v in data.items() if v not in ("", (), [], False)}


@dataclass(frozen=True)
class Baseline:
    """Entries from one or more files, consulted in order."""

    entries: tuple[Entry, ...] = ()

    def expected(self, check_id: str, version: str, program: str, evidence: str) -> Entry | None:
        """The entry that expects this failure, if any."""
        return next(
            (e for e in self.entries if e.matches(check_id, version, program, evidence)), None
        )

    def stale(self, check_id: str, version: str, program: str) -> Entry | None:
        """The non-flaky entry that expected this check, now passing, to fail
        (an entry for one program is stale only where the program is known)."""
        return next(
            (
                e
                for e in self.entries
                if not e.flaky
                and (program or not e.program)
                and e.applies_to(check_id, version, program)
            ),
            None,
        )

    def __add__(self, other: Baseline) -> Baseline:
        return Baseline(self.entries + other.entries)


def server_release(greeting: dict[str, Any] | None) -> dict[str, int] | None:
    """The ``{major, minor, micro}`` a QMP greeting names; None without one."""
    try:
        v = greeting["QMP"]["version"]["qemu"]  # type: ignore[index]
        return {k: int(v[k]) for k in ("major", "minor", "micro")}
    except (KeyError, TypeError, ValueError):
        return None


def parse_release(text: str) -> dict[str, int]:
    """``MAJOR.MINOR[.MICRO]`` as the ``{major, minor, micro}`` a greeting carries.

    Raises ValueError when ``text`` is not two or three dot-separated numbers.
    """
    parts = text.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a release (MAJOR.MINOR[.MICRO]): {text!r}")
    major, minor, micro = [*map(int, parts), 0][:3]
    return {"major": major, "minor": minor, "micro": micro}


def server_version(greeting: dict[str, Any] | None) -> str:
    """``major.minor.micro`` from a QMP greeting; "" without one."""
    v = server_release(greeting)
    return f"{v['major']}.{v['minor']}.{v['micro']}" if v else ""


def server_name(greeting: dict[str, Any] | None) -> str:
    """How the greeting names the server: ``QEMU 7.2.22 (Debian 1:7.2+dfsg-7)``."""
    version = server_version(greeting)
    if not version:
        return ""
    package = ""
    with contextlib.suppress(KeyError, TypeError):
        package = str(greeting["QMP"]["version"]["package"]).strip()  # type: ignore[index]
    return f"QEMU {version}" + (f" ({package})" if package else "")


def _entry(data: Any, where: str, source: str) -> Entry:
    if not isinstance(data, dict):
        raise BaselineError(f"{where}: an entry is an object")
    unknown = set(data) - {f for f in Entry.__dataclass_fields__ if f != "source"}
    if unknown:
        raise BaselineError(f"{where}: unknown member(s) {', '.join(sorted(unknown))}")
    for name in ("key", "check"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise BaselineError(f"{where}: '{name}' must be a non-empty string")
    for name in ("releases", "symptom", "reason", "program"):
        if not isinstance(data.get(name, ""), str):
            raise BaselineError(f"{where}: '{name}' must be a string")
    seen = data.get("seen_on", [])
    if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
        raise BaselineError(f"{where}: 'seen_on' must be a list of strings")
    if not isinstance(data.get("flaky", False), bool):
        raise BaselineError(f"{where}: 'flaky' must be true or false")
    releases = data.get("releases", "*")
    if releases.strip() != "*":
        try:
            SpecifierSet(releases)
        except InvalidSpecifier as exc:
            raise BaselineError(
                f"{where}: 'releases' {releases!r} is not a version "
                "specifier such as '>=5.2,<6' (or '*')"
            ) from exc
    for name in ("symptom", "program"):
        try:
            re.compile(data.get(name, ""))
        except re.error as exc:
            raise BaselineError(f"{where}: '{name}' is not a regular expression: {exc}") from exc
    return Entry(
        data["key"],
        data["check"],
        releases,
        data.get("symptom", ""),
        data.get("reason", ""),
        tuple(seen),
        data.get("program", ""),
        data.get("flaky", False),
        source,
    )


def parse(doc: Any, source: str = "") -> Baseline:
    """A baseline from its JSON document; raises :class:`BaselineError`."""
    name = source or "baseline"
    if not isinstance(doc, dict) or doc.get(FORMAT_KEY) != FORMAT:
        raise BaselineError(
            f'{name}: not a baseline (an object with "{FORMAT_KEY}": {FORMAT} and "entries")'
        )
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise BaselineError(f"{name}: 'entries' must be a list")
    return Baseline(
        tuple(_entry(e, f"{name}: entry {i + 1}", source) for i, e in enumerate(entries))
    )


def builtin() -> Baseline:
    """The known deviations of real QEMU releases (docs/known-deviations.md)."""
    text = resources.files("conformance.data").joinpath("known-deviations.json").read_text()
    return parse(json.loads(text), "known deviations")


def load(path: str) -> Baseline:
    """A baseline file, the built-in one for :data:`BUILTIN`, an empty one for
    :data:`NONE`; raises BaselineError."""
    if path == BUILTIN:
        return builtin()
    if path == NONE:
        return Baseline()
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc}") from exc
    return parse(doc, path)


def load_all(paths: Sequence[str] | None) -> Baseline:
    """The baselines named (in order), or the built-in one when none is.  Raises
    :class:`BaselineError` when a named file cannot be read or is not a baseline."""
    if not paths:
        return builtin()
    combined = Baseline()
    for path in paths:
        combined = combined + load(path)
    return combined


def record(results: Iterable[Any], version: str, program: str, name: str) -> dict[str, Any]:
    """A baseline document expecting every failure of a run.

    ``results`` are the run's :class:`~conformance.runner.CheckResult` objects;
    a failure already expected keeps the entry that expected it, a new one
    gets an entry for this release (and program, where known) and any symptom.
    """
    name = name or "a server that does not name itself"
    today = datetime.date.today().isoformat()
    entries: list[Entry] = []
    for r in results:
        if r.status == "xfail" and r.expected is not None:
            entries.append(r.expected)
        elif r.status in ("fail", "error"):
            first = (r.message.splitlines() or [""])[0]
            entries.append(
                Entry(
                    f"{r.id}@{version or 'any'}",
                    r.id,
                    f"=={version}" if version else "*",
                    "",
                    f"recorded on {today}: {first}",
                    (name,),
                    re.escape(program),
                )
            )
    unique = list(dict.fromkeys(entries))
    return {FORMAT_KEY: FORMAT, "entries": [e.to_json() for e in unique]}
