"""Which check catches which seeded defect of the reference server.

Each defect names the rule it breaks; the check listed for it enforces that
rule, and tests/harness/test_power.py asserts the check fails against a
reference server with (only) that defect switched on.
"""

CATCHES: dict[str, str] = {
    "no-greeting": "greeting.shape",
    "greeting-version-mismatch": "greeting.version",
    "greeting-without-capabilities": "greeting.shape",
    "commands-before-negotiation": "negotiation.commands-refused",
    "events-before-negotiation": "negotiation.no-events-before",
    "renegotiation-accepted": "negotiation.repeat-refused",
    "unknown-capability-accepted": "negotiation.unknown-capability",
    "event-after-greeting": "passive.unasked",
    "events-unthrottled": "events.throttled",
    "greeting-downstream-member": "passive.downstream",
    "downstream-name-malformed": "passive.downstream",
    "reply-drops-id": "ids.echo",
    "reply-id-invented": "passive.unasked",
    "id-stringified": "ids.echo",
    "float-id-rounded": "ids.spellings",
    "qemu-numbers": "ids.spellings",
    "quote-escape-kept": "grammar.single-quotes",
    "sync-without-0xff": "framing.qga-sync",
    "lost-reply": "ids.one-reply",
    "duplicate-reply": "ids.one-reply",
    "empty-return-null": "negotiation.enable-offered",
    "error-without-desc": "errors.shape",
    "wrong-error-class": "negotiation.commands-refused",
    "in-band-reordered": "ordering.pipelined",
    "oob-no-overtake": "oob.overtake",
    "exec-oob-any-command": "oob.not-allowed",
    "oob-without-negotiation": "oob.unnegotiated",
    "bad-event-timestamp": "events.timestamp",
    "event-inside-reply": "framing.json-objects",
    "no-parser-recovery": "robustness.malformed",
    "dies-on-garbage": "robustness.malformed",
    "accepts-invalid-arguments": "arguments.unexpected",
    "side-effect-before-error": "arguments.no-side-effect",
    "non-ascii-output": "framing.ascii",
    "lf-only-line-ending": "framing.crlf",
    "invalid-json-output": "framing.json-objects",
    # The job defects (J rules); stateful campaigns find them too
    # (tests/fuzz/test_stateful.py).
    "job-illegal-transition": "jobs.mirror-complete",
    "job-completed-with-error": "jobs.stream",
    "job-vanishes": "jobs.manual",
    "snapshot-never-concludes": "jobs.snapshot",
    "job-listing-disagrees": "jobs.pause-resume",
}

#: Defects that only show in one dialect, and that dialect.
DIALECT: dict[str, str] = {"sync-without-0xff": "qga"}
