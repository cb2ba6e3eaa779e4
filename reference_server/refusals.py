"""QEMU's refusals for the commands the server does not model.

The reference server stands for QEMU started as ``-machine none -nodefaults``.
Such a QEMU refuses most commands that name a device, a node, a file
descriptor or a feature, because there is none: ``balloon`` is
DeviceNotActive, ``qom-get`` of an unknown path DeviceNotFound, a bitmap on
a missing node GenericError.  A double that synthesized a return there would
tell a client library that its request worked.

Each rule was read off QEMU 7.2 answering the strategies' valid arguments
for every command of its schema (docs/reference-server.md, "Every command,
serving QEMU's own schema").  A rule refuses only when what it names is
absent: block nodes are the machine's, and what the creation commands make
(``object-add``, ``netdev_add``, ``chardev-add``, ``block-dirty-bitmap-add``)
is remembered in the machine's :class:`Registry`, so that a later lookup
finds it, as on QEMU.  Kinds the server never holds (devices, file
descriptors, trace events, CPU models, device types, command-line options)
are never found, coherent with the empty lists their ``query-*`` commands
answer.  A few commands also get QEMU's checks of their values
(``migrate-set-parameters``'s ranges, ``calc-dirty-rate``'s period).
Messages are QEMU 7.2's, with the arguments filled in; where 10.0 answers
differently (a check it added, a command it added), the rule says since
when, and a release between the two follows 7.2 unless a rule says
otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reference_server.errors import ErrorClass, QMPError

if TYPE_CHECKING:
    from reference_server.machine import Machine


@dataclass
class Registry:
    """Names of the things the creation commands made, by kind."""

    made: dict[str, set[str]] = field(default_factory=dict)

    def has(self, kind: str, name: Any) -> bool:
        """Whether a thing of ``kind`` called ``name`` exists."""
        return isinstance(name, str) and name in self.made.get(kind, ())


@dataclass(frozen=True)
class Lookup:
    """What a rule may look up: the machine and the release the server stands for."""

    machine: Machine
    #: (major, minor) of the served schema's release.
    release: tuple[int, int]

    @property
    def made(self) -> Registry:
        """What the creation commands made."""
        return self.machine.made

    def node(self, name: Any) -> bool:
        """Whether a block node called ``name`` exists."""
        return isinstance(name, str) and self.machine.node(name) is not None

    def job(self, name: Any) -> bool:
        """Whether a job with id ``name`` exists."""
        return isinstance(name, str) and name in self.machine.jobs.jobs


Test = Callable[[Lookup, dict[str, Any]], bool]


@dataclass(frozen=True)
class Refusal:
    """QEMU's answer when ``test`` holds: ``desc`` is a template over the arguments."""

    test: Test
    desc: str
    error_class: ErrorClass = "GenericError"
    #: The first release that answers so, and the first that no longer does
    #: (None: every release the rules know).
    since: tuple[int, int] | None = None
    before: tuple[int, int] | None = None


class _Blank(dict[str, Any]):
    """Template arguments where an absent member reads as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""


def _always(desc: str, error_class: ErrorClass = "GenericError") -> Refusal:
    return Refusal(lambda look, args: True, desc, error_class)


def _no_node(member: str, desc: str | None = None) -> Refusal:
    desc = desc or f"Cannot find device='{{{member}}}' nor node-name='{{{member}}}'"
    return Refusal(lambda look, args: not look.node(args.get(member, "")), desc)


def _no_such(
    kind: str, member: str, desc: str, error_class: ErrorClass = "GenericError"
) -> Refusal:
    return Refusal(
        lambda look, args: not look.made.has(kind, args.get(member, "")), desc, error_class
    )


def _given(member: str, desc: str, error_class: ErrorClass = "GenericError") -> Refusal:
    return Refusal(lambda look, args: member in args, desc, error_class)


def _exactly_one(a: str, b: str) -> Refusal:
    return Refusal(
        lambda look, args: (a in args) == (b in args), f"Need exactly one of '{a}' and '{b}'"
    )


def _qdev(member: str, what: str = "a hotpluggable device") -> tuple[Refusal, ...]:
    """QEMU's find_device_state(): a bare machine has no device with that id (an
    id starting with '/' is a QOM path, and a bare machine's are containers)."""
    return (
        Refusal(
            lambda look, args: args.get(member) == "" or args.get(member) in QOM_PATHS,
            f"{{{member}}} is not {what}",
        ),
        Refusal(
            lambda look, args: member in args, f"Device '{{{member}}}' not found", "DeviceNotFound"
        ),
    )


def _blk(device: str = "device", qdev: str = "id") -> tuple[Refusal, ...]:
    """QEMU's qmp_get_blk(): one of a backend name or a device id; a bare machine has neither."""
    return (
        _exactly_one(device, qdev),
        _given(device, f"Device '{{{device}}}' not found", "DeviceNotFound"),
        *_qdev(qdev),
    )


#: QEMU's id_wellformed(): a letter, then letters, digits, '-', '.' or '_'.
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9._-]*\Z")


def _not_identifier(member: str, desc: str) -> Refusal:
    return Refusal(lambda look, args: not IDENTIFIER.match(str(args.get(member, ""))), desc)


def _bitmap(args: dict[str, Any], member: str = "name") -> str:
    """A bitmap's registry name: it lives on its node."""
    return f"{args.get('node', '')}/{args.get(member, '')}"


def _missing_nodes(look: Lookup, args: dict[str, Any]) -> list[str]:
    """The node names of ``blockdev-reopen``'s options that no node has."""
    options = args.get("options")
    names = (
        [o.get("node-name", "") for o in options if isinstance(o, dict)]
        if isinstance(options, list)
        else []
    )
    return [n for n in names if not look.node(n)]


def _milliseconds(args: dict[str, Any]) -> int:
    """calc-dirty-rate's period in milliseconds (10.0 added the unit)."""
    time = int(args.get("calc-time", 0))
    return time if args.get("calc-time-unit") == "millisecond" else time * 1000


def _is_pattern(name: Any) -> bool:
    return isinstance(name, str) and ("*" in name or "?" in name)


#: QOM paths a bare machine has (``/objects`` appears with the first object).
QOM_PATHS = frozenset(
    {
        "/",
        "/machine",
        "/machine/unattached",
        "/machine/peripheral",
        "/machine/peripheral-anon",
        "/chardevs",
    }
)


def _qom_path(look: Lookup, path: Any) -> bool:
    return path in QOM_PATHS or (path == "/objects" and bool(look.made.made.get("object")))


_NO_QOM_PATH = Refusal(
    lambda look, args: not _qom_path(look, args.get("path")),
    "Device '{path}' not found",
    "DeviceNotFound",
)
_NO_PROPERTY = _always("Property '{property}' not found")
_NO_SPICE = Refusal(
    lambda look, args: args.get("protocol") == "spice", "SPICE is not in use", "DeviceNotActive"
)
_NO_CXL_PATH = _always("Unable to resolve path")
_NO_CXL_DEVICE = _always("Unable to resolve CXL type 3 device")
#: What QEMU 10.0's expire_password takes as a time (7.2 took any text).
_EXPIRE_TIME = re.compile(r"(now|never|\+?[0-9]+)\Z")
_NO_FD = _always("No file descriptor supplied via SCM_RIGHTS")
_NOT_VIRTIO = _always("Path {path} is not a VirtIODevice")
_NO_ROCKER = _always("rocker {name} not found")
_NO_BALLOON = _always("No balloon device has been activated", "DeviceNotActive")


def _bitmap_on_node() -> tuple[Refusal, ...]:
    return (
        _no_node("node", "Node '{node}' not found"),
        Refusal(
            lambda look, args: not look.made.has("bitmap", _bitmap(args)),
            "Dirty bitmap '{name}' not found",
        ),
    )


#: migrate_params_check()'s ranges in QEMU 7.2, in its order, with its words.
_MIGRATION_RANGES: list[tuple[str, int, int, str]] = [
    ("compress-level", 0, 9, "a value between 0 and 9"),
    ("compress-threads", 1, 255, "a value between 1 and 255"),
    ("decompress-threads", 1, 255, "a value between 1 and 255"),
    ("throttle-trigger-threshold", 1, 100, "an integer in the range of 1 to 100"),
    ("cpu-throttle-initial", 1, 99, "an integer in the range of 1 to 99"),
    ("cpu-throttle-increment", 1, 99, "an integer in the range of 1 to 99"),
    ("downtime-limit", 0, 2000 * 1000, "an integer in the range of 0 to (2000 * 1000) ms"),
    ("multifd-channels", 1, 255, "a value between 1 and 255"),
    ("max-cpu-throttle", 20, 99, "an integer in the range of cpu_throttle_initial to 99"),
    ("announce-initial", 0, 100000, "a value between 0 and 100000"),
    ("announce-max", 0, 100000, "a value between 0 and 100000"),
    ("announce-rounds", 0, 1000, "a value between 0 and 1000"),
    ("announce-step", 1, 10000, "a value between 0 and 10000"),
]


def _page_power_of_two(size: int) -> bool:
    # x86's target page is 4 KiB.
    return size >= 4096 and size & (size - 1) == 0


def _out_of_range(member: str, lo: int, hi: int, expects: str) -> Refusal:
    # QEMU names the parameter in C spelling here (its message predates QAPI's).
    return Refusal(
        lambda look, args: member in args and not lo <= args[member] <= hi,
        f"Parameter '{member.replace('-', '_')}' expects {expects}",
    )


#: Per command, the refusals QEMU 7.2 ``-machine none`` gives, in the order it checks.
RULES: dict[str, tuple[Refusal, ...]] = {
    # File descriptors: the server takes none over its socket.
    "add-fd": (_NO_FD,),
    "getfd": (_NO_FD,),
    "add_client": (_always("File descriptor named '{fdname}' has not been found"),),
    "closefd": (_always("File descriptor named '{fdname}' not found"),),
    "remove-fd": (
        _given("fd", "File descriptor named 'fdset-id:{fdset-id}, fd:{fd}' not found"),
        _always("File descriptor named 'fdset-id:{fdset-id}' not found"),
    ),
    # Devices and features a bare machine lacks.
    "balloon": (_NO_BALLOON,),
    "query-balloon": (_NO_BALLOON,),
    "change-vnc-password": (_always("Could not set password"),),
    "set_password": (_NO_SPICE, _always("Could not set password")),
    "expire_password": (
        Refusal(
            lambda look, args: not _EXPIRE_TIME.match(str(args.get("time", ""))),
            "Parameter 'time' doesn't take value '{time}'",
            since=(10, 0),
        ),
        _NO_SPICE,
        _always("Could not set password expire time"),
    ),
    "client_migrate_info": (
        Refusal(
            lambda look, args: args.get("protocol") != "spice",
            "Parameter 'protocol' expects 'spice'",
        ),
        _NO_SPICE,
    ),
    "display-update": (_always("Can not find vnc display"),),
    "display-reload": (
        Refusal(lambda look, args: bool(args.get("tls-certs")), "Can not find vnc display"),
    ),
    "dumpdtb": (_always("This machine doesn't have a FDT"),),
    "inject-nmi": (_always("this feature or command is not currently supported"),),
    "input-send-event": (
        _given("device", "Device '{device}' not found", "DeviceNotFound"),
        Refusal(
            lambda look, args: bool(args.get("events")),
            "Input handler not found for event type {first-event-type}",
        ),
    ),
    "query-acpi-ospm-status": (_always("command is not supported, missing ACPI device"),),
    "query-hotpluggable-cpus": (_always("The feature 'query-hotpluggable-cpus' is not enabled"),),
    "query-sev-attestation-report": (_always("SEV is not enabled"),),
    "query-sev-capabilities": (_always("KVM not enabled"),),
    "query-sev-launch-measure": (_always("SEV launch measurement is not available"),),
    "sev-inject-launch-secret": (_always("SEV not enabled for guest"),),
    "query-sgx": (_always("SGX is only supported on PC machines"),),
    "query-sgx-capabilities": (_always("SGX is not enabled in KVM"),),
    "query-vm-generation-id": (_always("VM Generation ID device not found"),),
    "query-rocker": (_NO_ROCKER,),
    "query-rocker-ports": (_NO_ROCKER,),
    "query-rocker-of-dpa-flows": (_NO_ROCKER,),
    "query-rocker-of-dpa-groups": (_NO_ROCKER,),
    "query-rx-filter": (_given("name", "invalid net client name: {name}"),),
    "replay-break": (_always("setting the breakpoint is allowed only in play mode"),),
    "replay-delete-break": (_always("replay breakpoints are allowed only in play mode"),),
    "replay-seek": (_always("replay must be enabled to seek"),),
    "set-numa-node": (
        _always("The command is permitted only before the machine has been created"),
    ),
    "set-vcpu-dirty-limit": (
        _always(
            "dirty page limit feature requires KVM with accelerator property 'dirty-ring-size' set'"
        ),
    ),
    "system_wakeup": (_always("wake-up from suspend is not supported by this guest"),),
    "x-colo-lost-heartbeat": (_always("The feature 'colo' is not enabled"),),
    "x-exit-preconfig": (_always("The command is permitted only before machine initialization"),),
    "x-query-profile": (_always("Internal profiler not compiled"),),
    "x-query-usb": (_always("USB support not enabled"),),
    "x-query-virtio-status": (_NOT_VIRTIO,),
    "x-query-virtio-queue-status": (_NOT_VIRTIO,),
    "x-query-virtio-vhost-queue-status": (_NOT_VIRTIO,),
    "x-query-virtio-queue-element": (_always("Path {path} is not a VirtIO device"),),
    # Commands newer than 7.2 (and one that changed), as 10.0 answers them.
    "x-query-virtio": (Refusal(lambda look, args: True, "No virtio devices found", since=(10, 0)),),
    "query-hv-balloon-status-report": (_always("no hv-balloon device present"),),
    "xen-event-list": (_always("Xen event channel emulation not enabled"),),
    "xen-event-inject": (_always("Xen event channel emulation not enabled"),),
    "cxl-inject-poison": (_NO_CXL_PATH,),
    "cxl-inject-uncorrectable-errors": (_NO_CXL_PATH,),
    "cxl-inject-correctable-error": (_NO_CXL_PATH,),
    "cxl-inject-general-media-event": (_NO_CXL_PATH,),
    "cxl-inject-dram-event": (_NO_CXL_PATH,),
    "cxl-inject-memory-module-event": (_NO_CXL_PATH,),
    "cxl-add-dynamic-capacity": (
        Refusal(
            lambda look, args: args.get("selection-policy") != "prescriptive",
            "Selection policy not supported",
        ),
        _NO_CXL_DEVICE,
    ),
    "cxl-release-dynamic-capacity": (
        Refusal(
            lambda look, args: args.get("removal-policy") != "prescriptive",
            "Removal policy not supported",
        ),
        _NO_CXL_DEVICE,
    ),
    "device-sync-config": (
        Refusal(lambda look, args: args.get("id") == "", "{id} is not a device"),
        _always("Device '{id}' not found"),
    ),
    "block-job-change": (
        Refusal(
            lambda look, args: not look.job(args.get("id")),
            "Block job '{id}' not found",
            "DeviceNotActive",
        ),
    ),
    "blockdev-set-active": (
        Refusal(
            lambda look, args: "node-name" in args and not look.node(args["node-name"]),
            "Failed to find node with node-name='{node-name}'",
        ),
    ),
    "migrate-start-postcopy": (
        _always("Enable postcopy with migrate_set_capability before the start of migration"),
    ),
    "migrate-continue": (
        Refusal(
            lambda look, args: args.get("state") != "none", "Migration not in expected state: none"
        ),
    ),
    "calc-dirty-rate": (
        Refusal(
            lambda look, args: not 1 <= args.get("calc-time", 0) <= 60,
            "calc-time is out of range[1, 60].",
            before=(10, 0),
        ),
        Refusal(
            lambda look, args: not 50 <= _milliseconds(args) <= 60000,
            "Calculation time is out of range [50ms, 60000ms].",
            since=(10, 0),
        ),
        Refusal(
            lambda look, args: not 128 <= args.get("sample-pages", 512) <= 16384,
            "sample-pages is out of range[128, 16384].",
        ),
    ),
    "nbd-server-start": (
        Refusal(lambda look, args: look.made.has("nbd-server", ""), "NBD server already running"),
        Refusal(
            lambda look, args: (
                "tls-creds" in args and not look.made.has("object", args["tls-creds"])
            ),
            "No TLS credentials with id '{tls-creds}'",
        ),
    ),
    "nbd-server-stop": (_no_such("nbd-server", "", "NBD server not running"),),
    "migrate-set-parameters": (
        *(_out_of_range(*r) for r in _MIGRATION_RANGES[:8]),
        Refusal(
            lambda look, args: (
                "xbzrle-cache-size" in args and not _page_power_of_two(args["xbzrle-cache-size"])
            ),
            "Parameter 'xbzrle_cache_size' expects a power of two no less than the target "
            "page size",
        ),
        *(_out_of_range(*r) for r in _MIGRATION_RANGES[8:]),
    ),
    "xen-set-replication": (
        Refusal(
            lambda look, args: bool(args.get("enable")) and "failover" in args,
            "Parameter 'failover' is only for stopping replication",
        ),
    ),
    # Names of things: devices (never), and what the machine or registry holds.
    "device_del": _qdev("id"),
    "device-list-properties": (_always("Device '{typename}' not found", "DeviceNotFound"),),
    "qom-list-properties": (_always("Class '{typename}' not found", "DeviceNotFound"),),
    "qom-list": (
        Refusal(lambda look, args: args.get("path") == "", "Path '' is ambiguous"),
        _NO_QOM_PATH,
    ),
    "qom-get": (_NO_QOM_PATH, _NO_PROPERTY),
    "qom-set": (_NO_QOM_PATH, _NO_PROPERTY),
    "query-cpu-model-expansion": (_always("CPU model '{model}' not found"),),
    "query-command-line-options": (
        Refusal(lambda look, args: bool(args.get("option")), "invalid option name: {option}"),
    ),
    "trace-event-get-state": (
        _given("vcpu", "invalid vCPU index {vcpu}"),
        Refusal(lambda look, args: not _is_pattern(args.get("name")), 'unknown event "{name}"'),
    ),
    "trace-event-set-state": (
        _given("vcpu", "invalid vCPU index {vcpu}"),
        Refusal(lambda look, args: not _is_pattern(args.get("name")), 'unknown event "{name}"'),
    ),
    "set_link": (_always("Device '{name}' not found", "DeviceNotFound"),),
    "object-add": (
        _not_identifier("id", "Parameter 'id' expects an identifier"),
        Refusal(
            lambda look, args: look.made.has("object", args.get("id")),
            "attempt to add duplicate property '{id}' to object (type 'container')",
        ),
    ),
    "object-del": (_no_such("object", "id", "object '{id}' not found"),),
    "netdev_add": (
        _not_identifier("id", "Parameter 'id' expects an identifier"),
        Refusal(lambda look, args: look.made.has("netdev", args.get("id")), "Duplicate ID '{id}'"),
    ),
    "netdev_del": (_no_such("netdev", "id", "Device '{id}' not found", "DeviceNotFound"),),
    "chardev-remove": (_no_such("chardev", "id", "Chardev '{id}' not found"),),
    "chardev-send-break": (_no_such("chardev", "id", "Chardev '{id}' not found"),),
    "ringbuf-read": (_no_such("chardev", "device", "Device '{device}' not found"),),
    "ringbuf-write": (_no_such("chardev", "device", "Device '{device}' not found"),),
    # Block devices (never: -nodefaults) and nodes (the machine's).
    "block-commit": (_always("Device '{device}' not found", "DeviceNotFound"),),
    "block-latency-histogram-set": _qdev("id"),
    "blockdev-insert-medium": _qdev("id"),
    "blockdev-remove-medium": _qdev("id"),
    "block_set_io_throttle": _blk(),
    "blockdev-change-medium": _blk(),
    "blockdev-open-tray": _blk(),
    "blockdev-close-tray": _blk(),
    "eject": _blk(),
    "block_resize": (
        Refusal(
            lambda look, args: (
                not look.node(args.get("device", "")) and not look.node(args.get("node-name", ""))
            ),
            "Cannot find device='{device}' nor node-name='{node-name}'",
        ),
    ),
    "blockdev-snapshot-sync": (
        Refusal(
            lambda look, args: (
                not look.node(args.get("device", "")) and not look.node(args.get("node-name", ""))
            ),
            "Cannot find device='{device}' nor node-name='{node-name}'",
        ),
    ),
    "block-dirty-bitmap-add": (
        Refusal(lambda look, args: args.get("name") == "", "Bitmap name cannot be empty"),
        _no_node("node"),
        Refusal(
            lambda look, args: look.made.has("bitmap", _bitmap(args)),
            "Bitmap already exists: {name}",
        ),
    ),
    "block-dirty-bitmap-remove": _bitmap_on_node(),
    "block-dirty-bitmap-clear": _bitmap_on_node(),
    "block-dirty-bitmap-enable": _bitmap_on_node(),
    "block-dirty-bitmap-disable": _bitmap_on_node(),
    "block-dirty-bitmap-merge": (
        _no_node("node", "Node '{node}' not found"),
        Refusal(
            lambda look, args: not look.made.has("bitmap", _bitmap(args, "target")),
            "Dirty bitmap '{target}' not found",
        ),
    ),
    "x-debug-block-dirty-bitmap-sha256": _bitmap_on_node(),
    "block-set-write-threshold": (_no_node("node-name", "Device '{node-name}' not found"),),
    "blockdev-backup": (_no_node("device"),),
    "drive-backup": (_no_node("device"),),
    "drive-mirror": (_no_node("device"),),
    "blockdev-snapshot": (_no_node("node"),),
    "blockdev-snapshot-internal-sync": (_no_node("device"),),
    "blockdev-snapshot-delete-internal-sync": (_no_node("device"),),
    "change-backing-file": (_no_node("device"),),
    "nbd-server-add": (_no_node("device"),),
    "x-blockdev-change": (_no_node("parent"),),
    "x-blockdev-amend": (
        _no_node("node-name", "Cannot find device='' nor node-name='{node-name}'"),
    ),
    "x-blockdev-set-iothread": (
        _no_node("node-name", "Failed to find node with node-name='{node-name}'"),
    ),
    "blockdev-reopen": (
        Refusal(
            lambda look, args: bool(_missing_nodes(look, args)),
            "Failed to find node with node-name='{first-missing}'",
        ),
    ),
    "block-export-add": (
        _not_identifier("id", "Invalid block export id"),
        _no_node("node-name", "Cannot find device='' nor node-name='{node-name}'"),
    ),
    "block-export-del": (_always("Export '{id}' is not found"),),
    "nbd-server-remove": (_always("Export '{name}' is not found"),),
}

#: Commands that make a thing a later lookup finds: (kind, how its name is read).
MAKES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "object-add": ("object", lambda args: str(args.get("id", ""))),
    "netdev_add": ("netdev", lambda args: str(args.get("id", ""))),
    "chardev-add": ("chardev", lambda args: str(args.get("id", ""))),
    "block-dirty-bitmap-add": ("bitmap", lambda args: _bitmap(args)),
    "nbd-server-start": ("nbd-server", lambda args: ""),
}
#: Commands that remove what MAKES made.
UNMAKES: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "object-del": ("object", lambda args: str(args.get("id", ""))),
    "netdev_del": ("netdev", lambda args: str(args.get("id", ""))),
    "chardev-remove": ("chardev", lambda args: str(args.get("id", ""))),
    "block-dirty-bitmap-remove": ("bitmap", lambda args: _bitmap(args)),
    "nbd-server-stop": ("nbd-server", lambda args: ""),
}


def _template_args(args: dict[str, Any], look: Lookup) -> _Blank:
    """The arguments as templates read them (nested names flattened where QEMU shows them)."""
    out = _Blank(args)
    model = args.get("model")
    if isinstance(model, dict):
        out["model"] = model.get("name", "")
    out["first-missing"] = next(iter(_missing_nodes(look, args)), "")
    events = args.get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        out["first-event-type"] = events[0].get("type", "")
    return out


def refusal(command: str, args: dict[str, Any], look: Lookup) -> QMPError | None:
    """QEMU's refusal of ``command`` with ``args`` on this machine, or None when it would act."""
    for rule in RULES.get(command, ()):
        if (rule.since is not None and look.release < rule.since) or (
            rule.before is not None and look.release >= rule.before
        ):
            continue
        if rule.test(look, args):
            return QMPError(rule.desc.format_map(_template_args(args, look)), rule.error_class)
    return None


def record(command: str, args: dict[str, Any], made: Registry) -> None:
    """Remember what a command that succeeded made or removed."""
    if command in MAKES:
        kind, name = MAKES[command]
        made.made.setdefault(kind, set()).add(name(args))
    elif command in UNMAKES:
        kind, name = UNMAKES[command]
        made.made.get(kind, set()).discard(name(args))
