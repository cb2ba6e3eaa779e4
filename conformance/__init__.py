"""qmp-conformance: a conformance suite and fuzzer for QMP.

The pipeline, one package each: ``conformance.qapi`` loads a schema into one
model, ``conformance.specs`` exports JSON Schema from it, ``conformance.protocol``
is the I/O-free wire core shared by the client session and the reference
server, ``conformance.checks`` judges a target.
"""

__version__ = "0.1.0"
