"""Target factories for campaigns: each call gives a fresh, ready target.

The bundled reference server is started as a child process here (not in a
thread of the fuzzing process, as :func:`conformance.transport.open_target`
does): it then has a core of its own, and a crash defect is a real process
exit that the campaign must survive by starting a new one.
"""

from __future__ import annotations

from collections.abc import Callable

from conformance.transport import Target, TargetError, open_target, parse_target


def target_factory(spec: str) -> Callable[[], Target]:
    """A callable that starts (or connects to) the target named by ``spec``."""
    parse_target(spec)  # raises TargetError early on a malformed string

    def make() -> Target:
        target = parse_target(spec)
        if target.kind != "reference":
            return open_target(spec)
        try:
            from reference_server import launch
        except ImportError as exc:
            raise TargetError(f"the reference server cannot be launched: {exc}") from exc
        unknown = set(target.options) - {"dialect", "defect"}
        if unknown:
            raise TargetError(f"unknown reference option(s): {', '.join(sorted(unknown))}")
        dialect = target.options.get("dialect", ["qemu"])[-1]
        try:
            # The target's exit stack is where transport keeps what it started,
            # so Target.close() stops our child process too.
            target.address = target._stack.enter_context(launch(
                dialect=dialect, defects=target.options.get("defect", []), subprocess=True))
        except (ValueError, KeyError, OSError, RuntimeError) as exc:
            target.close()
            raise TargetError(f"cannot start the reference server: {exc}") from exc
        return target

    return make


def dialect_of(spec: str) -> str:
    """The dialect a target string implies (reference targets can say; others are QEMU)."""
    target = parse_target(spec)
    return target.options.get("dialect", ["qemu"])[-1] if target.kind == "reference" else "qemu"
