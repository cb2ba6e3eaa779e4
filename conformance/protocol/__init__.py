"""I/O-free QMP protocol core, shared by the reference server and the client harness.

Pure logic in the style of h11: bytes in, events and bytes out, no sockets.

* :mod:`.stream`   QEMU's JSON input pipeline (lexer, streamer, parser) as a push parser
* :mod:`.request`  dispatcher-level validation of a parsed request
* :mod:`.monitor`  per-connection monitor state machine (negotiation, queue, OOB)
* :mod:`.encoding` QEMU's exact output format
* :mod:`.decoding` robust client-side decoding and semantic JSON equality
* :mod:`.messages` builders and classifiers for greeting/return/error/event
* :mod:`.dialects` qemu, oob-draft, qmp-1.0 and qga profiles as data
"""

from .decoding import DecodedLine, DecodeError, LineReader, decode, decode_buffer, json_equal
from .dialects import DIALECTS, OOB_DRAFT, QEMU, QGA, QMP_1_0, Dialect, get_dialect
from .encoding import encode, encode_string, format_number
from .messages import (
    MISSING,
    classify,
    error_response,
    event,
    greeting,
    return_response,
    shape_problems,
    version_info,
)
from .monitor import (
    NEED_DATA,
    NO_REPLY,
    PAUSED,
    CommandError,
    Dispatch,
    Monitor,
    MonitorState,
    Send,
)
from .request import Request, RequestError, is_oob_request, validate_request
from .stream import JSONStream, Parsed, ParseError, parse_all
from .values import JSON

__all__ = [
    "DIALECTS",
    "JSON",
    "MISSING",
    "NEED_DATA",
    "NO_REPLY",
    "OOB_DRAFT",
    "PAUSED",
    "QEMU",
    "QGA",
    "QMP_1_0",
    "CommandError",
    "DecodeError",
    "DecodedLine",
    "Dialect",
    "Dispatch",
    "JSONStream",
    "LineReader",
    "Monitor",
    "MonitorState",
    "ParseError",
    "Parsed",
    "Request",
    "RequestError",
    "Send",
    "classify",
    "decode",
    "decode_buffer",
    "encode",
    "encode_string",
    "error_response",
    "event",
    "format_number",
    "get_dialect",
    "greeting",
    "is_oob_request",
    "json_equal",
    "parse_all",
    "return_response",
    "shape_problems",
    "validate_request",
    "version_info",
]
