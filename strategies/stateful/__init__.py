"""Stateful machines (Hypothesis ``RuleBasedStateMachine``) that drive a QMP
target through the harness's :class:`conformance.session.Session`.

Each machine class has a ``connect`` class attribute: a callable returning a
fresh, greeted :class:`Session` (negotiated or not, as the machine says).
Tests bind it with :func:`bind`; campaigns (``qmp-conform fuzz --stateful``,
``conformance.fuzz.stateful``) bind it to their target.  A rule the target
breaks is raised as :class:`Broken`, naming the rule (J1-J8 or a Q-number).
"""

from strategies.stateful.jobs import BlockJobMachine, JobFrameworkMachine, JobTracker
from strategies.stateful.negotiation import NegotiationMachine
from strategies.stateful.snapshots import SnapshotJobMachine
from strategies.stateful.target import Broken, Connect, Refused, TargetMachine, bind, step

__all__ = [
    "BlockJobMachine",
    "Broken",
    "Connect",
    "JobFrameworkMachine",
    "JobTracker",
    "NegotiationMachine",
    "Refused",
    "SnapshotJobMachine",
    "TargetMachine",
    "bind",
    "step",
]
