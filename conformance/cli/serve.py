"""``qmp-conform serve``: run the bundled reference QMP server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from conformance.cli import UsageError
from conformance.protocol.dialects import DEFAULT, NAMES
from conformance.transport import looks_like_target


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand and its options to ``subparsers``."""
    p = subparsers.add_parser(
        "serve",
        help="run the bundled reference QMP server",
        description="Run the reference QMP server (QEMU 7.2 behaviour) on a UNIX socket, "
        "a TCP port or stdin/stdout, optionally with seeded defects.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--unix", metavar="PATH", help="listen on a UNIX socket (mode 0600)")
    where.add_argument(
        "--tcp", metavar="HOST:PORT", help="listen on TCP (loopback only unless --allow-remote)"
    )
    where.add_argument("--stdio", action="store_true", help="one monitor on stdin/stdout")
    p.add_argument(
        "--allow-remote", action="store_true", help="allow --tcp on a non-loopback address"
    )
    p.add_argument(
        "--dialect",
        default=DEFAULT.name,
        choices=NAMES,
        help=f"the protocol profile to serve (default {DEFAULT.name})",
    )
    p.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="NAME",
        help="switch on a seeded defect (repeatable; see --list-defects)",
    )
    p.add_argument(
        "--list-defects",
        action="store_true",
        help="list the seeded defects with the rule each breaks, then exit",
    )
    p.add_argument(
        "--schema",
        metavar="PATH|TARGET",
        help="schema to serve: a QAPI source file or tree, an introspection file, or a "
        "target whose live query-qmp-schema to serve, whose release the greeting then "
        "reports (default: the bundled schema)",
    )
    p.add_argument(
        "--release",
        metavar="MAJOR.MINOR[.MICRO]",
        help="the QEMU release the greeting and query-version report, and whose "
        "behaviour the server follows where releases differ (default: a target's own "
        "with --schema TARGET, else 7.2.22); give it with an introspection file of "
        "that release",
    )
    p.add_argument(
        "--liberty",
        metavar="NAME",
        help="with --unix: take this liberty the specification leaves a server, a "
        "legal-but-hostile peer for a client's own tests (see qmp-conform check-client "
        "--list)",
    )
    p.add_argument(
        "--paused",
        action="store_true",
        help="start paused as QEMU does with -S (run state prelaunch: stop emits "
        "nothing, cont emits RESUME); default: running, as QEMU without -S",
    )
    p.set_defaults(func=run)


def _live_schema(target: str) -> tuple[list[Any], dict[str, int] | None]:
    """A target's live ``query-qmp-schema`` and the release its greeting
    names.  Raises TargetError when the target gives no schema."""
    from conformance.baseline import server_release
    from conformance.session import fetch_schema

    greetings: list[dict[str, Any]] = []
    entries = fetch_schema(target, on_greeting=greetings.append)
    return entries, server_release(greetings[0] if greetings else None)


def _parse_tcp(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--tcp wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def run(args: argparse.Namespace) -> int:
    """Run ``serve`` until the server quits: 0 after ``quit`` (or ``--list-defects``),
    134 after a seeded crash, 130 on Ctrl-C.

    Raises :class:`UsageError` when there is nowhere to listen, a defect is
    unknown, the schema is missing, ``--tcp`` is malformed or not loopback
    without ``--allow-remote``; TargetError when a ``--schema`` target gives
    no schema, QAPIError when the schema does not load, and OSError when the
    socket cannot be bound; all end in exit status 2.
    """
    from reference_server.defects import BY_NAME, describe
    from reference_server.server import ServerConfig, serve

    if args.list_defects:
        width = max(len(name) for name, _, _ in describe())
        for name, rule, summary in describe():
            print(f"{name:<{width}}  {rule:<4}  {summary}")
        return 0
    if not (args.unix or args.tcp or args.stdio):
        raise UsageError("say where to listen: --unix PATH, --tcp HOST:PORT or --stdio")
    unknown = [d for d in args.defect if d not in BY_NAME]
    if unknown:
        raise UsageError(f"unknown defect {unknown[0]!r} (see --list-defects)")
    schema: str | list[Any] | None = args.schema
    release = None
    if args.schema and looks_like_target(args.schema):
        schema, release = _live_schema(args.schema)
    elif args.schema and not os.path.exists(args.schema):
        raise UsageError(f"no such schema: {args.schema}")
    if args.release:
        from conformance.baseline import parse_release

        try:
            release = parse_release(args.release)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.liberty:
        from conformance.client.liberties import BY_NAME as LIBERTIES

        if args.liberty not in LIBERTIES:
            raise UsageError(f"unknown liberty {args.liberty!r} (see check-client --list)")
        if not args.unix:
            raise UsageError("--liberty serves on --unix PATH only")
    tcp = _parse_tcp(args.tcp) if args.tcp else None
    if tcp is not None and not args.allow_remote:
        from reference_server.server import is_loopback

        if not is_loopback(tcp[0]):
            raise UsageError(f"{tcp[0]} is not a loopback address; add --allow-remote")
    logging.basicConfig(level=logging.WARNING, format="qmp-conform serve: %(message)s")
    config = ServerConfig(
        dialect=args.dialect,
        defects=list(args.defect),
        schema=schema,
        paused=args.paused,
        release=release,
    )
    try:
        if args.liberty:
            return asyncio.run(_serve_with_liberty(config, args.unix, args.liberty))
        return asyncio.run(
            serve(config, unix=args.unix, tcp=tcp, allow_remote=args.allow_remote, stdio=args.stdio)
        )
    except KeyboardInterrupt:
        return 130


async def _serve_with_liberty(config: Any, path: str, name: str) -> int:
    """The reference server on a private socket, and the hostile proxy on ``path``
    in front of it; both end when the server does (``quit``)."""
    import tempfile

    from conformance.client.liberties import BY_NAME as LIBERTIES
    from conformance.client.proxy import HostileProxy
    from reference_server.server import serve

    with tempfile.TemporaryDirectory(prefix="qmp-serve-") as tmp:
        inner = os.path.join(tmp, "server.sock")
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        server = asyncio.ensure_future(serve(config, unix=inner, ready=ready))
        await asyncio.wait({ready, server}, return_when=asyncio.FIRST_COMPLETED)
        if server.done():
            return int(server.result() or 0)
        up, stop = asyncio.Event(), asyncio.Event()
        proxy = asyncio.ensure_future(HostileProxy(inner, path, LIBERTIES[name]).serve(up, stop))
        status = await server
        stop.set()
        await proxy
        return int(status or 0)
