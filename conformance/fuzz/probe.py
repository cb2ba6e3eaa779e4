"""What a campaign learns about its target once, before the first example.

:func:`probe` connects, reads the schema (``query-qmp-schema``, or the
schema the target should have when it cannot describe itself) and finds out
how many clients it greets at once; the result is an immutable
:class:`TargetProfile` that generation, execution and judging are built
from.  Replays use the same schema path.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.qapi import QAPIError, load
from conformance.qapi.model import Schema
from conformance.session import Session, read_schema
from conformance.transport import CONNECT_TIMEOUT, ConnectionClosed, Target, TargetError


@dataclass(frozen=True)
class TargetProfile:
    """A target as probed: its schema, capabilities and concurrency."""

    schema: Schema
    #: Capabilities the greeting offers.
    capabilities: tuple[str, ...]
    #: Whether the schema came from the target itself (else from a fallback).
    introspected: bool
    #: Connections it greets at once: 1 (QEMU's socket monitor) or 3.
    connections: int
    #: Whether every connection starts a process of its own (``spawn:``).
    restarts: bool


def probe(target: Target, schema_path: str | None = None) -> TargetProfile:
    """Probe ``target`` once (see the module docstring).

    Raises :class:`TargetError` when the target cannot be reached or gives
    no schema and no fallback exists, and :class:`QAPIError` when the schema
    it gives (or the fallback) is not a valid one.
    """
    schema, caps, introspected = prepare_schema(target, schema_path)
    return TargetProfile(
        schema, tuple(caps), introspected, detect_concurrency(target), bool(target.restarts)
    )


def detect_concurrency(target: Target) -> int:
    """How many connections the target greets at once (1 or 3): QEMU's socket
    monitor serves one client and leaves the next in the listen backlog."""
    if target.restarts:
        return 1
    sessions = []
    try:
        for _ in range(2):
            session = Session(target.connect(CONNECT_TIMEOUT))
            sessions.append(session)
            if session.read_greeting(1.5) is None:
                return 1
        return 3
    except Exception:
        return 1
    finally:
        for s in sessions:
            s.close()


def introspect(target: Target) -> tuple[Schema, list[str]]:
    """The target's schema (``query-qmp-schema``) and offered capabilities.

    Unlike :func:`conformance.session.fetch_schema` it goes on without a
    greeting: a server that sends none is a finding (Q7), not a reason not
    to fuzz it.

    Raises :class:`TargetError` when the target cannot be reached or its
    schema cannot be read, and :class:`QAPIError` when what it sends is not a
    valid schema.
    """
    with Session(target.connect(CONNECT_TIMEOUT)) as session:
        try:
            session.read_greeting()
            # Retried: a faulty server may lose or hold back a reply.
            entries = read_schema(session, timeout=2.5, attempts=3)
        except (TargetError, ConnectionClosed) as exc:
            raise TargetError(f"{target.spec}: {exc}") from exc
        return load(entries), session.capabilities


def fallback_schema(spec: str, schema_path: str | None) -> str | None:
    """Where to read the schema from when introspection fails: the user's
    ``--schema``, else the bundled reference server's own."""
    if schema_path:
        return schema_path
    if spec.split(":", 1)[0] == "reference":
        try:
            from reference_server import DEFAULT_SCHEMA
        except ImportError:
            return None
        return str(DEFAULT_SCHEMA)
    return None


def prepare_schema(
    target: Target, schema_path: str | None = None
) -> tuple[Schema, list[str], bool]:
    """(schema, capabilities, whether introspection worked).  When the server
    cannot describe itself (its replies are broken), fuzz it from the schema
    it should have, and let the oracles say what is wrong.

    Raises :class:`TargetError` (no usable answer) or :class:`QAPIError` (a
    schema that does not load) when introspection fails and there is no
    fallback, and :class:`QAPIError` when the fallback is not a valid schema.
    """
    try:
        schema, caps = introspect(target)
        return schema, caps, True
    except (TargetError, QAPIError):
        path = fallback_schema(target.spec, schema_path)
        if path is None:
            raise
        return load(path), greeting_capabilities(target), False


def greeting_capabilities(target: Target) -> list[str]:
    """The capabilities a fresh connection's greeting offers ([] if none).

    Raises :class:`TargetError` when the target cannot be reached.
    """
    with Session(target.connect(CONNECT_TIMEOUT)) as session:
        try:
            session.read_greeting()
        except ConnectionClosed:
            return []
        return session.capabilities
