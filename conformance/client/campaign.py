"""Fuzzing a client: Hypothesis draws combinations of liberties, a write size
and a byte to cut the connection at; a profile the client does not survive
is shrunk to the smallest, stored, and replays.

A profile is data (:class:`Profile`): the liberties' names, the chunk size,
the cut.  A finding file holds the profile, the client's command line, the
verdict and its transcript; ``qmp-conform check-client --replay FILE`` runs
the client under the stored profile again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from conformance.client import liberties
from conformance.client.liberties import Liberty
from conformance.client.runner import ClientError, ClientRun, liberty_verdict, run_once
from conformance.runner import CheckResult

#: The liberties a profile draws from (the cut is drawn as a byte instead of
#: the fixed ``disconnect``, and pacing as a chunk size instead of ``slow-writes``).
DRAWN = tuple(
    lib.name for lib in liberties.CATALOGUE if lib.name not in ("disconnect", "slow-writes")
)
#: Where in the output a cut may fall: the greeting and the first replies.
CUT_RANGE = 2048
FINDING_FORMAT = "qmp-conformance-client-finding"


@dataclass(frozen=True)
class Profile:
    """What the server does to a client in one example."""

    names: tuple[str, ...]
    chunk: int | None = None
    cut_at_byte: int | None = None

    def liberty(self) -> Liberty:
        """The combined liberty.  Raises :class:`ClientError` for an unknown name."""
        unknown = [n for n in self.names if n not in liberties.BY_NAME]
        if unknown:
            raise ClientError(f"unknown liberty {unknown[0]!r}")
        return liberties.combine(
            [liberties.BY_NAME[n] for n in self.names],
            chunk=self.chunk,
            cut_at_byte=self.cut_at_byte,
        )


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    """Profiles: one to three liberties; sometimes small writes; sometimes a cut."""
    names = draw(st.lists(st.sampled_from(DRAWN), min_size=1, max_size=3, unique=True))
    chunk = draw(st.none() | st.integers(1, 64))
    cut = draw(st.none() | st.integers(0, CUT_RANGE))
    return Profile(tuple(names), chunk, cut)


@dataclass
class Finding:
    """A profile the client did not survive, and the evidence."""

    profile: Profile
    verdict: CheckResult
    path: Path | None = None


def _working(argv: Sequence[str], timeout: float, schema: str | None) -> ClientRun:
    """The client's run without liberties, which every other run is held to.
    Raises :class:`ClientError` when it does not succeed."""
    plain = run_once(argv, None, timeout, schema)
    if plain.status != 0 or plain.crashed:
        raise ClientError(f"without liberties the client {plain.ending()}")
    return plain


def campaign(
    argv: Sequence[str],
    examples: int,
    out: Path,
    *,
    seed_value: int | None = None,
    timeout: float = 60.0,
    schema: str | None = None,
) -> tuple[ClientRun, Finding | None, int]:
    """Run the client under ``examples`` drawn profiles; the run without
    liberties, the shrunk finding (stored under ``out``) if any, and how
    many examples ran.  Raises :class:`ClientError` when the client does not
    work without liberties or cannot be started."""
    plain = _working(argv, timeout, schema)
    failures: list[Finding] = []
    ran = 0

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(profiles())
    def example(profile: Profile) -> None:
        nonlocal ran
        ran += 1
        liberty = profile.liberty()
        verdict = liberty_verdict(liberty, run_once(argv, liberty, timeout, schema), plain)
        if verdict.status == "fail":
            failures.append(Finding(profile, verdict))
            raise AssertionError(verdict.message)

    test = seed(seed_value)(example) if seed_value is not None else example
    with contextlib.suppress(AssertionError):  # each failure is in ``failures``
        test()
    if not failures:
        return plain, None, ran
    # Hypothesis runs the shrunk example last.
    finding = failures[-1]
    finding.path = store(finding, argv, out)
    return plain, finding, ran


def store(finding: Finding, argv: Sequence[str], out: Path) -> Path:
    """Write ``finding`` under ``out``; its path."""
    out.mkdir(parents=True, exist_ok=True)
    name = "+".join(finding.profile.names)
    digest = hashlib.sha256(json.dumps(asdict(finding.profile)).encode()).hexdigest()[:8]
    path = out / f"client-{name}-{digest}.json"
    doc: dict[str, Any] = {
        "format": FINDING_FORMAT,
        "client": list(argv),
        "profile": asdict(finding.profile),
        "verdict": finding.verdict.to_json(),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load(path: Path) -> tuple[list[str], Profile]:
    """A stored finding's client command and profile.  Raises :class:`ClientError`
    when the file is not a client finding."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FINDING_FORMAT:
            raise ValueError("not a client finding")
        p = doc["profile"]
        profile = Profile(tuple(p["names"]), p.get("chunk"), p.get("cut_at_byte"))
        return [str(a) for a in doc["client"]], profile
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"{path}: {exc}") from exc


def replay(
    argv: Sequence[str], profile: Profile, timeout: float = 60.0, schema: str | None = None
) -> CheckResult:
    """The verdict of one run of the client under ``profile`` (held to a fresh run
    without liberties).  Raises :class:`ClientError` as :func:`campaign` does."""
    plain = _working(argv, timeout, schema)
    liberty = profile.liberty()
    return liberty_verdict(liberty, run_once(argv, liberty, timeout, schema), plain)
