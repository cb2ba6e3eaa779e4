"""Capabilities negotiation as a state machine (Q10, Q11, Q12, Q14, Q27, Q28)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from strategies.stateful.target import Broken, TargetMachine, step, wire_broken


class NegotiationMachine(TargetMachine):
    """One connection, starting in negotiation mode.

    Model: ``negotiated`` flips on the first successful ``qmp_capabilities``;
    before that every other command is CommandNotFound (Q10) and a bad
    capability leaves the mode unchanged (Q14); after it a second
    ``qmp_capabilities`` is CommandNotFound (Q12).  ``exec-oob`` is an error
    unless ``oob`` was enabled (Q28), and for ``query-version`` (no
    ``allow-oob``) even then (Q27).  The greeting must offer ``oob``.

    Construction opens the connection with ``connect`` and leaves it in
    negotiation mode.
    """

    requires = ("qmp_capabilities", "query-version", "query-commands")
    offers = ("oob",)
    reply_timeout = 5.0

    def __init__(self) -> None:
        super().__init__()
        self.negotiated = False
        self.oob = False

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        message = {**message, "id": self.session.next_id()}
        self.session.send(message)
        reply = self.session.wait_reply(message["id"], self.reply_timeout)
        broken = wire_broken(reply)
        if broken is not None:
            raise broken
        return reply.obj

    @rule(enable=st.sampled_from([None, [], ["oob"], ["no-such-cap"], ["oob", "oob"]]))
    @step
    def capabilities(self, enable: list[str] | None) -> None:
        """Send ``qmp_capabilities`` (enabling ``enable`` when given) and check the
        reply: an unknown capability is a GenericError (Q14), a repeat
        CommandNotFound (Q12), and the first success leaves negotiation mode.

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        message: dict[str, Any] = {"execute": "qmp_capabilities"}
        if enable is not None:
            message["arguments"] = {"enable": enable}
        reply = self._ask(message)
        error = reply.get("error", {})
        if enable and "no-such-cap" in enable:
            # Arguments are checked before the mode: GenericError either way.
            if error.get("class") != "GenericError":
                raise Broken("Q14", "unknown-capability-accepted", f"enable {enable}: {reply}")
        elif self.negotiated:
            if error.get("class") != "CommandNotFound":
                raise Broken("Q12", "repeat-negotiation-accepted", f"enable {enable}: {reply}")
        elif reply.get("return") != {}:
            raise Broken("Q12", "negotiation-refused", f"enable {enable}: {reply}")
        else:
            self.negotiated = True
            self.oob = enable is not None and "oob" in enable

    @rule(command=st.sampled_from(["query-version", "query-commands", "no-such-command"]))
    @step
    def command(self, command: str) -> None:
        """Run ``command``: CommandNotFound before negotiation (Q10) and for an
        unknown command (Q20), a success otherwise.

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        reply = self._ask({"execute": command})
        refused = reply.get("error", {}).get("class") == "CommandNotFound"
        if not self.negotiated and not refused:
            raise Broken("Q10", "command-before-negotiation", f"{command}: {reply}")
        if command == "no-such-command" and not refused:
            raise Broken("Q20", "unknown-command", f"{command}: {reply}")
        if self.negotiated and command != "no-such-command" and "return" not in reply:
            raise Broken("Q12", "command-refused", f"{command} after negotiation: {reply}")

    @rule()
    @step
    def exec_oob(self) -> None:
        """Send ``query-version`` as ``exec-oob``: a GenericError with OOB (the
        command does not allow it, Q27) and one naming ``exec-oob`` without (Q28).

        Raises :class:`Broken`, or ``ReplyTimeout`` or ``ConnectionClosed``
        when the target does not answer.
        """
        reply = self._ask({"exec-oob": "query-version"})
        error = reply.get("error", {})
        rule_id, slug = (
            ("Q27", "exec-oob-not-allowed") if self.oob else ("Q28", "exec-oob-without-oob")
        )
        # Without oob the member itself is unexpected; with it, query-version
        # does not allow OOB.  Either way: GenericError.
        if error.get("class") != "GenericError" or (
            not self.oob and "exec-oob" not in error.get("desc", "")
        ):
            raise Broken(rule_id, slug, f"exec-oob query-version: {reply}")

    @invariant()
    def no_events_before_negotiation(self) -> None:
        """Invariant: no event has arrived while the connection negotiates (Q11)."""
        if not self.negotiated and self.session.events:
            raise Broken(
                "Q11",
                "event-before-negotiation",
                f"an event reached a connection in negotiation mode: "
                f"{self.session.events[0].brief()}",
            )

    def teardown(self) -> None:
        """Close the connection."""
        self.session.close()
