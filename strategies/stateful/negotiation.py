"""Capabilities negotiation as a state machine (Q10, Q12, Q14, Q28)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conformance.session import Session
from strategies.stateful.target import Connect


class NegotiationMachine(RuleBasedStateMachine):
    """One connection, starting in negotiation mode.

    Model: ``negotiated`` flips on the first successful ``qmp_capabilities``;
    before that every other command is CommandNotFound (Q10) and a bad
    capability leaves the mode unchanged (Q14); after it a second
    ``qmp_capabilities`` is CommandNotFound (Q12).  ``exec-oob`` is an error
    unless ``oob`` was enabled (Q28).

    Construction opens the connection with ``connect`` and leaves it in
    negotiation mode.
    """

    connect: Connect

    def __init__(self) -> None:
        super().__init__()
        self.session: Session = type(self).connect()
        self.negotiated = False
        self.oob = False

    def _ask(self, message: dict[str, Any]) -> Any:
        message = {**message, "id": self.session.next_id()}
        self.session.send(message)
        reply = self.session.wait_reply(message["id"], 5.0)
        assert reply.ok, reply.brief()
        return reply.obj

    @rule(enable=st.sampled_from([None, [], ["oob"], ["no-such-cap"], ["oob", "oob"]]))
    def capabilities(self, enable: list[str] | None) -> None:
        """Send ``qmp_capabilities`` (enabling ``enable`` when given) and check the
        reply: an unknown capability is a GenericError, a repeat CommandNotFound,
        and the first success leaves negotiation mode.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        message: dict[str, Any] = {"execute": "qmp_capabilities"}
        if enable is not None:
            message["arguments"] = {"enable": enable}
        reply = self._ask(message)
        if enable and "no-such-cap" in enable:
            # Arguments are checked before the mode: GenericError either way.
            assert reply.get("error", {}).get("class") == "GenericError", reply
        elif self.negotiated:
            assert reply.get("error", {}).get("class") == "CommandNotFound", reply
        else:
            assert reply.get("return") == {}, reply
            self.negotiated = True
            self.oob = enable is not None and "oob" in enable

    @rule(command=st.sampled_from(["query-version", "query-commands", "no-such-command"]))
    def command(self, command: str) -> None:
        """Run ``command``: CommandNotFound before negotiation and for an unknown
        command, a success otherwise.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        reply = self._ask({"execute": command})
        if not self.negotiated or command == "no-such-command":
            assert reply.get("error", {}).get("class") == "CommandNotFound", reply
        else:
            assert "return" in reply, reply

    @rule()
    def exec_oob(self) -> None:
        """Send ``query-version`` as ``exec-oob``: a GenericError with or without
        OOB (the command does not allow it), one naming ``exec-oob`` without.

        Raises :class:`ReplyTimeout` or :class:`ConnectionClosed` when the
        target does not answer.
        """
        reply = self._ask({"exec-oob": "query-version"})
        error = reply.get("error", {})
        # Without oob the member itself is unexpected; with it, query-version
        # does not allow OOB.  Either way: GenericError.
        assert error.get("class") == "GenericError", reply
        if not self.oob:
            assert "exec-oob" in error.get("desc", ""), reply

    @invariant()
    def no_events_before_negotiation(self) -> None:
        """Invariant: no event has arrived while the connection negotiates (Q11)."""
        if not self.negotiated:
            assert not self.session.events, self.session.events[0].brief()

    def teardown(self) -> None:
        """Close the connection."""
        self.session.close()
