"""The QAPI schema language: read any vintage, build one model.

``load(source)`` is the entry point; :mod:`conformance.qapi.model` is what it
returns.  Reading goes source -> expressions (``source``, ``legacy``) ->
checked model (``build``); introspection is read straight into the model
(``introspection``) and written back out of it (``introspect``).
"""

from conformance.qapi.errors import QAPIError
from conformance.qapi.loader import load
from conformance.qapi.model import Command, Event, ObjectType, Schema

__all__ = ["Command", "Event", "ObjectType", "QAPIError", "Schema", "load"]
