"""The error a command (or the dispatcher) answers with, QEMU's classes only."""

from __future__ import annotations

from typing import Literal, TypeAlias

ErrorClass: TypeAlias = Literal[
    "GenericError",
    "CommandNotFound",
    "DeviceNotActive",
    "DeviceNotFound",
    "KVMMissingCap",
]


class QMPError(Exception):
    """Raised anywhere below dispatch; becomes ``{"error": {"class", "desc"}}``."""

    def __init__(self, desc: str, error_class: ErrorClass = "GenericError") -> None:
        super().__init__(desc)
        self.desc = desc
        self.error_class: ErrorClass = error_class

    def as_json(self) -> dict[str, str]:
        """The ``error`` member of the reply: the class and the description."""
        return {"class": self.error_class, "desc": self.desc}
