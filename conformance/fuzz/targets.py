"""Target factories for campaigns: each call gives a fresh, ready target.

The bundled reference server is started as a child process here (not in a
thread of the fuzzing process, as :func:`conformance.transport.open_target`
does): it then has a core of its own, and a crash defect is a real process
exit that the campaign must survive by starting a new one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from conformance.protocol.dialects import DEFAULT, Dialect
from conformance.transport import Target, open_target, parse_target


def target_factory(spec: str) -> Callable[[], Target]:
    """A callable that starts (or connects to) the target named by ``spec``.

    Raises :class:`TargetError` at once when ``spec`` is malformed; the callable
    raises it when the target cannot be started.
    """
    parse_target(spec)  # raises TargetError early on a malformed string
    return functools.partial(open_target, spec, own_process=True)


def dialect_of(spec: str) -> Dialect:
    """The dialect a target string implies (reference targets can say; others are QEMU).

    Raises :class:`TargetError` when ``spec`` is malformed or names no known dialect.
    """
    return parse_target(spec).dialect or DEFAULT
