"""MSRP (RFC 4975), MSRP relays (RFC 4976), CPIM (RFC 3862), is-composing (RFC 3994) and
file transfer building blocks (RFC 5547) on asyncio.

Layers, each only using those before it:

* :mod:`.errors`, :mod:`.uri`, :mod:`.message`, :mod:`.parser` -- wire format
* :mod:`.transport` -- connections, listener, connection pool
* :mod:`.relay` -- AUTH at a relay
* :mod:`.messages`, :mod:`.session` -- sessions, chunking, reassembly, reports
* :mod:`.filetransfer`, :mod:`.filesink`, :mod:`.cpim`, :mod:`.iscomposing` -- payload helpers
"""

from .errors import (
    CPIMError,
    FileTransferError,
    IsComposingError,
    MSRPAbortedError,
    MSRPAuthError,
    MSRPConnectError,
    MSRPError,
    MSRPProtocolError,
    MSRPReportError,
    MSRPSessionError,
    MSRPTimeoutError,
    MSRPTransactionError,
    MSRPURIError,
)
from .message import ByteRange, MSRPData, Status
from .messages import DeliveryResult, IncomingMessage, MemorySink, MessageSink, OutgoingMessage
from .parser import MSRPParser, parse_frame
from .relay import RelaySettings
from .session import MSRPSession
from .transport import MSRPConnection, MSRPTransport
from .uri import MSRPURI, format_path, parse_path

__all__ = [
    "ByteRange",
    "CPIMError",
    "DeliveryResult",
    "FileTransferError",
    "IncomingMessage",
    "IsComposingError",
    "MSRPAbortedError",
    "MSRPAuthError",
    "MSRPConnectError",
    "MSRPConnection",
    "MSRPData",
    "MSRPError",
    "MSRPParser",
    "MSRPProtocolError",
    "MSRPReportError",
    "MSRPSession",
    "MSRPSessionError",
    "MSRPTimeoutError",
    "MSRPTransactionError",
    "MSRPTransport",
    "MSRPURI",
    "MSRPURIError",
    "MemorySink",
    "MessageSink",
    "OutgoingMessage",
    "RelaySettings",
    "Status",
    "format_path",
    "parse_frame",
    "parse_path",
]
