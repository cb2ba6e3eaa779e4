"""``qmp-conform check-client``: judge a QMP client against a legal-but-hostile server.

Exit status: 0 when the client kept every rule and survived every liberty,
1 when it did not, 2 for usage errors (no client, no ``{socket}``, an
unknown liberty) or a client that cannot be started.
"""

from __future__ import annotations

import argparse
from typing import Any

from conformance.cli import EXIT_FINDINGS, EXIT_OK, UsageError
from conformance.cli.check import add_report_options, report
from conformance.verdicts import MEANING, STATUSES


def register(subparsers: Any) -> None:
    """Add the ``check-client`` subcommand and its options to ``subparsers``."""
    p = subparsers.add_parser(
        "check-client",
        help="judge a QMP client against a server that takes every liberty the spec allows",
        description="Run a QMP client once against the reference server and once under "
        "each liberty the specification leaves a server (members in any order, unknown "
        "members, events and capabilities, stray replies, reworded errors, slow writes, "
        "a disconnect, ...), through a proxy that records both directions; judge the "
        "client's own bytes (Q13, Q24, Q26, one JSON object per request, nothing before "
        "the greeting) and whether it still gets its result.",
        epilog="verdicts: " + "; ".join(f"{s}: {MEANING[s]}" for s in STATUSES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--client",
        metavar="COMMAND",
        help="the client's command line; {socket} stands for the socket path it must use "
        '(e.g. "python my_client.py {socket}"); what it prints is its result',
    )
    who.add_argument(
        "--client-function",
        metavar="MODULE:FUNCTION",
        help="a Python function taking the socket path, run in a child process",
    )
    p.add_argument(
        "--echoes",
        action="store_true",
        help="the client prints what it receives (a shell such as qmp-shell): hold it only "
        "to ending cleanly, not to printing the same under every liberty",
    )
    p.add_argument(
        "--liberty",
        action="append",
        metavar="NAME",
        help="take only this liberty (repeatable; default: all, see --list)",
    )
    p.add_argument(
        "--schema",
        metavar="PATH",
        help="the schema the reference server serves (default: its bundled one)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="how long one run of the client may take (default 60 s)",
    )
    add_report_options(p)
    p.add_argument("--list", action="store_true", help="list the liberties and exit")
    p.add_argument(
        "--campaign",
        type=int,
        metavar="N",
        help="fuzz instead: N profiles drawn by Hypothesis (one to three liberties at "
        "once, small writes, a cut at some byte); the smallest the client does not "
        "survive is stored under --out",
    )
    p.add_argument("--seed", type=int, help="the campaign's Hypothesis seed")
    p.add_argument(
        "--out",
        default="client-findings",
        metavar="DIR",
        help="where a campaign stores its finding (default ./client-findings)",
    )
    p.add_argument(
        "--replay",
        metavar="FILE",
        help="run the client under a stored finding's profile again (the finding's "
        "client unless --client or --client-function says otherwise); exit 1 if it "
        "still fails",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``check-client``: 0 when the client passed everything, 1 otherwise.

    Raises :class:`UsageError` without a client, and ClientError for a
    malformed client command, an unknown liberty or a client that cannot
    start; :func:`conformance.cli.main` makes them exit status 2.
    """
    from conformance.client import liberties
    from conformance.client.runner import check_client, client_command

    if args.list:
        for liberty in liberties.CATALOGUE:
            kind = "same result" if liberty.same_result else "ends cleanly"
            print(f"{liberty.name:20} {liberty.rule:9} {kind:13} {liberty.summary}")
        return EXIT_OK
    if args.replay:
        return _replay(args)
    if not (args.client or args.client_function):
        raise UsageError("say which client: --client COMMAND or --client-function MODULE:FUNCTION")
    argv = client_command(args.client, args.client_function)
    if args.campaign is not None:
        return _campaign(args, argv)
    result = check_client(argv, args.liberty, args.timeout, args.schema, echoes=args.echoes)
    report(result, args)
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _campaign(args: argparse.Namespace, argv: list[str]) -> int:
    from pathlib import Path

    from conformance.client.campaign import campaign

    if args.campaign < 1:
        raise UsageError("--campaign takes a number of examples, at least 1")
    _, finding, ran = campaign(
        argv,
        args.campaign,
        Path(args.out),
        seed_value=args.seed,
        timeout=args.timeout,
        schema=args.schema,
    )
    if finding is None:
        print(f"{ran} profiles: the client survived every one")
        return EXIT_OK
    print(f"{ran} profiles; the smallest the client does not survive: {finding.verdict.id}")
    print(f"  {finding.verdict.message}")
    print(f"  stored: {finding.path}")
    return EXIT_FINDINGS


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from conformance.client.campaign import load, replay
    from conformance.client.runner import client_command

    stored, profile = load(Path(args.replay))
    given = args.client or args.client_function
    argv = client_command(args.client, args.client_function) if given else stored
    verdict = replay(argv, profile, args.timeout, args.schema)
    print(f"{verdict.status.upper()}: {verdict.id}: {verdict.message}")
    return EXIT_FINDINGS if verdict.status == "fail" else EXIT_OK
