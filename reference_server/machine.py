"""The emulated machine behind the monitors: run state, block nodes, jobs.

Everything a command can change lives here, shared by every monitor, so
what one client does is what another observes (as with one QEMU process).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from reference_server.events import EventBus
from reference_server.jobs import JobManager
from reference_server.refusals import Registry

#: What query-version and the greeting report: QEMU 7.2's numbers, our package.
VERSION: dict[str, Any] = {
    "qemu": {"micro": 22, "minor": 2, "major": 7},
    "package": "qmp-conformance reference server",
}


@dataclass
class BlockNode:
    """One block graph node, as far as the reference server models it."""

    name: str
    driver: str
    size: int
    options: dict[str, Any]
    children: dict[str, str] = field(default_factory=dict)
    read_only: bool = False
    snapshots: set[str] = field(default_factory=set)
    inject_errors: list[dict[str, Any]] = field(default_factory=list)
    auto_named: bool = False

    @property
    def backing(self) -> str | None:
        """The name of the node's backing child, or None when it has none."""
        return self.children.get("backing")


@dataclass
class Machine:
    """Process-wide state shared by all monitors."""

    events: EventBus = field(default_factory=EventBus)
    run_state: str = "running"
    nodes: dict[str, BlockNode] = field(default_factory=dict)
    name: str | None = None
    #: The nodes each block job uses: the device it runs on first.
    job_nodes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: What object-add, netdev_add, chardev-add and bitmap commands made.
    made: Registry = field(default_factory=Registry)
    jobs: JobManager = field(init=False)
    #: Set by ``quit``: the server closes every connection and stops.
    quit_requested: asyncio.Event = field(default_factory=asyncio.Event)
    _auto_names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.jobs = JobManager(self.events)

    def auto_node_name(self) -> str:
        """A fresh ``#blockNNN`` name for a child node opened without a ``node-name``."""
        return f"#block{next(self._auto_names) * 100 + 11:03d}"

    def node(self, name: str) -> BlockNode | None:
        """The node called ``name``, or None when there is none."""
        return self.nodes.get(name)

    def parents_of(self, name: str) -> list[str]:
        """The names of the nodes that have ``name`` as a child (backing or otherwise)."""
        return [n.name for n in self.nodes.values() if name in n.children.values()]

    def backing_chain(self, name: str) -> list[BlockNode]:
        """``name`` and its backing nodes, top first."""
        chain: list[BlockNode] = []
        node = self.nodes.get(name)
        while node is not None and node not in chain:
            chain.append(node)
            node = self.nodes.get(node.backing) if node.backing else None
            # Format nodes reach data through "file"; the chain follows backing only.
        return chain
