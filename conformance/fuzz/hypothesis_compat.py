"""The Hypothesis internals a campaign needs, behind one small interface.

Campaigns use three things no public Hypothesis API offers: the choice
sequence of the example being run (an overlapped example is judged after
Hypothesis has moved on, and its choices are what a late finding is shrunk
from), the byte form the example database stores them in, and a fixed
database key (so every worker and machine files examples in one place,
whatever the test function's digest).  They are used nowhere else, so a
Hypothesis release that moves them breaks this module only.

Supported: Hypothesis :data:`MINIMUM` (the first release with both
``ConjectureData.choices`` and ``hypothesis.database.choices_to_bytes``)
up to, not including, 7.  ``tests/fuzz/test_hypothesis_range.py`` runs a
campaign on :data:`MINIMUM` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument

#: The oldest Hypothesis release campaigns run on (pyproject.toml says the same).
MINIMUM = (6, 125, 0)

if tuple(hypothesis.__version_info__) < MINIMUM:  # pragma: no cover
    raise ImportError(
        f"qmp-conform fuzz needs Hypothesis >= {'.'.join(map(str, MINIMUM))}, "
        f"not {hypothesis.__version__}"
    )

from hypothesis.database import choices_to_bytes  # noqa: E402 (after the version check)


def in_example() -> bool:
    """Whether the caller runs inside a Hypothesis example (where ``event``
    and ``target`` may be called)."""
    try:
        current_build_context()
    except InvalidArgument:
        return False
    return True


def current_choices() -> bytes:
    """The choices of the example being run, as the example database stores them.

    Raises :class:`~hypothesis.errors.InvalidArgument` outside an example (see
    :func:`in_example`).
    """
    return choices_to_bytes(current_build_context().data.choices)


def pin_database_key(test: Callable[..., Any], key: bytes) -> None:
    """File every example of ``test`` under ``key`` in the example database."""
    test._hypothesis_internal_database_key = key  # type: ignore[attr-defined]
