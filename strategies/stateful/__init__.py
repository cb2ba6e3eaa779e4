"""Stateful machines (Hypothesis ``RuleBasedStateMachine``) that drive a QMP
target through the harness's :class:`conformance.session.Session`.

Each machine class has a ``connect`` class attribute: a callable returning a
fresh, greeted :class:`Session` (negotiated or not, as the machine says).
Tests bind it with :func:`bind`.
"""

from strategies.stateful.jobs import BlockJobMachine, JobFrameworkMachine
from strategies.stateful.negotiation import NegotiationMachine
from strategies.stateful.snapshots import SnapshotJobMachine
from strategies.stateful.target import Connect, bind

__all__ = [
    "BlockJobMachine",
    "Connect",
    "JobFrameworkMachine",
    "NegotiationMachine",
    "SnapshotJobMachine",
    "bind",
]
