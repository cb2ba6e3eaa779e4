"""Request ids: echoed as JSON values, one reply per command (Q15, Q16, Q18)."""

from __future__ import annotations

import json
from typing import Any

from conformance.checks.base import Fail, check
from conformance.checks.context import Context
from conformance.protocol.messages import MISSING
from conformance.protocol.spellings import SPELLINGS
from conformance.session import Message, ReplyTimeout, json_equal

#: One id of every JSON type, and the numbers QEMU re-serialises (Q15).
IDS: list[Any] = [
    0,
    -1,
    42,
    1.5,
    0.1,
    1e-7,
    9223372036854775807,
    18446744073709551615,
    18446744073709551616,
    -9223372036854775809,
    "cookie#1",
    "",
    "\u00e9\U0001f600",
    None,
    True,
    False,
    [],
    {},
    [1, "a", None, [2.5]],
    {"a": {"b": [1, {"c": None}]}},
]
DEEP = 1000


def _reply_to(ctx: Context, raw: bytes) -> Message:
    session = ctx.shared()
    session.send_raw(raw)
    try:
        return session.next_reply(ctx.reply_timeout)
    except ReplyTimeout as exc:
        raise Fail("no reply to a command (Q16)", expected="one reply", seen=str(exc)) from exc


def _request(ctx: Context, id_text: str, name: str | None = None) -> bytes:
    return (f'{{"execute": "{name or ctx.probe_command}", "id": ' + id_text + "}").encode()


def _show(value: Any) -> str:
    return "(no id member)" if value is MISSING else json.dumps(value)


@check("ids.echo", "Q15", "ids of every JSON type come back equal as JSON values")
def echo(ctx: Context) -> str:
    """Send the probe command once with an id of each JSON type (and numbers QEMU
    re-serialises): each reply must carry its id back equal as a JSON value (Q15).
    Raises :class:`Fail` with the first id that came back changed or missing, or got no
    reply."""
    for value in IDS:
        text = json.dumps(value, ensure_ascii=False)
        reply = _reply_to(ctx, _request(ctx, text))
        if reply.id is MISSING or not json_equal(reply.id, value):
            raise Fail(
                f"the id {text} was not echoed as the same JSON value (Q15)",
                expected=f"id {text}",
                seen=f"id {_show(reply.id)} in {reply.brief()}",
            )
    return f"{len(IDS)} ids of every JSON type echoed"


@check(
    "ids.spellings",
    "Q15,Q37",
    "ids spelled every way the JSON grammar allows come back as the same value, as JSON",
)
def spellings(ctx: Context) -> str:
    """Send the probe command once with an id of each :data:`SPELLINGS` class
    (numbers and strings as the grammar allows them, beyond what a client
    library writes).  The reply must be JSON (Q37) and carry the value back
    (Q15); a spelling RFC 8259 lets a reader refuse (a number past a double,
    a lone surrogate, a noncharacter) may instead be refused with an error.
    Raises :class:`Fail` listing every spelling that was mangled, refused
    although valid, or answered with bytes that are not JSON."""
    problems: list[str] = []
    refused: list[str] = []
    session = ctx.shared()
    for spelling in SPELLINGS:
        sent = spelling.text if len(spelling.text) <= 40 else spelling.text[:37] + "..."
        what = f"{sent} ({spelling.label})"
        # Fenced: text a server cannot read may draw several errors, which
        # must not be taken for the answers to the spellings after it.
        got = [m for m in ctx.fenced(session, _request(ctx, spelling.text), what) if not m.is_event]
        unreadable = [m for m in got if m.error]
        answers = [m for m in got if not m.is_error]
        if unreadable:
            problems.append(f"{what}: not JSON (Q37): {unreadable[0].brief()}")
        elif len(answers) == 1 and (
            answers[0].id is MISSING or not json_equal(answers[0].id, spelling.value)
        ):
            problems.append(f"{what}: echoed as {_show(answers[0].id)} (Q15)")
        elif answers == [] and got and spelling.limit:
            refused.append(spelling.label)
        elif answers == [] and got:
            problems.append(f"{what}: refused (Q15): {got[0].brief()}")
        elif len(got) != 1:
            problems.append(
                f"{what}: {len(got)} replies (Q16): {', '.join(m.brief(60) for m in got)}"
            )
    if problems:
        raise Fail(
            f"{len(problems)} of {len(SPELLINGS)} id spellings were not echoed as the same "
            "value in JSON",
            expected="each id back as the value it spells (or, for a limit RFC 8259 allows, "
            "an error)",
            seen="; ".join(problems),
        )
    note = f"; refused as RFC 8259 section 9 allows: {', '.join(refused)}" if refused else ""
    return f"{len(SPELLINGS) - len(refused)} id spellings echoed{note}"


@check("ids.deep", "Q15", f"an id nested {DEEP} deep is echoed")
def deep(ctx: Context) -> str:
    """Send the probe command with an id nested :data:`DEEP` arrays deep: the reply must be
    valid JSON and carry the same id (Q15, Q37).  Raises :class:`Fail` with the reply when
    it does not, or when none comes."""
    text = "[" * DEEP + "]" * DEEP
    reply = _reply_to(ctx, _request(ctx, text))
    expected: Any = []
    for _ in range(DEEP - 1):
        expected = [expected]
    if reply.error:
        raise Fail(
            "the reply to a deeply nested id is not valid JSON (Q37)",
            expected="valid JSON",
            seen=reply.error,
        )
    if reply.id is MISSING or not json_equal(reply.id, expected):
        raise Fail(
            f"an id nested {DEEP} deep was not echoed (Q15)",
            expected=f"the same {DEEP}-deep array",
            seen=reply.brief(200),
        )
    return f"{DEEP}-deep id echoed"


@check("ids.on-error", "Q16,Q18", "errors carry the id when the request was readable")
def on_error(ctx: Context) -> str:
    """Send readable requests that fail (unknown command, unexpected argument, no or a
    non-string ``execute``), each with an id: every error must carry that id (Q16, Q18).
    Raises :class:`Fail` with the reply when one succeeds or loses its id."""
    cases: list[tuple[str, bytes, Any]] = [
        ("an unknown command", b'{"execute": "qc-no-such-command", "id": 7}', 7),
        (
            "an unexpected argument",
            f'{{"execute": "{ctx.probe_command}", "arguments": {{"qc-bad": 1}}, '
            f'"id": "e2"}}'.encode(),
            "e2",
        ),
        ("a request without execute", b'{"id": "e3"}', "e3"),
        ("execute that is not a string", b'{"execute": 1, "id": "e4"}', "e4"),
    ]
    for what, raw, want in cases:
        reply = _reply_to(ctx, raw)
        if not reply.is_error:
            raise Fail(f"{what} did not fail", expected="an error", seen=reply.brief())
        if reply.id is MISSING or not json_equal(reply.id, want):
            raise Fail(
                f"the error for {what} lost the request's id (Q16, Q18)",
                expected=f"id {json.dumps(want)}",
                seen=reply.brief(),
            )
    return f"{len(cases)} kinds of error carried their id"


@check("ids.absent-unreadable", "Q18", "errors for unreadable input carry no id, not even null")
def absent_unreadable(ctx: Context) -> str:
    """Send inputs that cannot be read as a request (a parse error, JSON values that are not
    objects), each fenced by a probe: their errors must have no id member, not even null
    (Q18).  Raises :class:`Fail` with the first error that has one."""
    session = ctx.shared()
    for raw in (b"{]", b"[1, 2, 3]", b'"query-version"', b"42"):
        stray = [m for m in ctx.fenced(session, raw, "unreadable input") if m.id is not MISSING]
        if stray:
            raise Fail(
                "an error for input without an id carries an id member (Q18)",
                expected="no id member",
                seen=stray[0].brief(),
            )
    return "errors for unreadable input carried no id"


@check("ids.no-invented", "Q16", "a command sent without an id gets a reply without one")
def no_invented(ctx: Context) -> str:
    """Send the probe command without an id: the reply must carry none (Q16).  Raises
    :class:`Fail` with the reply when it does, or when none comes."""
    reply = _reply_to(ctx, f'{{"execute": "{ctx.probe_command}"}}'.encode())
    if reply.id is not MISSING:
        raise Fail(
            "the reply to a command without id carries an id (Q16)",
            expected="no id member",
            seen=reply.brief(),
        )
    return "no id invented"


@check("ids.one-reply", "Q16", "exactly one reply per command, none for ids never sent")
def one_reply(ctx: Context) -> str:
    """Pipeline eight probe commands with distinct ids in one write: each must get exactly
    one reply, and no reply may carry an id that was never sent (Q16).  Raises
    :class:`Fail` with the ids seen when not."""
    session = ctx.shared()
    sent = [f"one-{i}" for i in range(8)]
    session.send_raw(
        b"".join(json.dumps(session.request(ctx.probe_command, id=i)).encode() for i in sent)
    )
    got = session.collect(quiet=0.3, timeout=ctx.reply_timeout, until=len(sent))
    got += session.collect(quiet=0.2, timeout=1.0)  # anything extra must show up now
    replies = [m for m in got if not m.is_event]
    seen = [m.id for m in replies]
    for i in sent:
        count = sum(1 for s in seen if s is not MISSING and json_equal(s, i))
        if count != 1:
            raise Fail(
                f"command {i!r} got {count} replies (Q16)",
                expected="exactly one",
                seen=", ".join(_show(s) for s in seen),
            )
    extra = [m for m in replies if m.id is MISSING or not any(json_equal(m.id, i) for i in sent)]
    if extra:
        raise Fail(
            "a reply carries an id that was never sent (Q16)",
            expected=f"only ids {sent}",
            seen=extra[0].brief(),
        )
    return f"{len(sent)} pipelined commands, one reply each"
