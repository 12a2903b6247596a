"""Exception hierarchy of the MSRP package.

Everything raised on purpose by :mod:`sipsimple.msrp` derives from :class:`MSRPError`, so
callers can catch the whole family with one clause.
"""

from __future__ import annotations

__all__ = [
    "MSRPError",
    "MSRPProtocolError",
    "MSRPURIError",
    "MSRPConnectError",
    "MSRPTransactionError",
    "MSRPTimeoutError",
    "MSRPAuthError",
    "MSRPSessionError",
    "MSRPAbortedError",
    "MSRPReportError",
    "CPIMError",
    "IsComposingError",
    "FileTransferError",
]


class MSRPError(Exception):
    """Base class of every error raised by the MSRP package."""


class MSRPProtocolError(MSRPError):
    """Malformed MSRP data on the wire (framing, start line, headers)."""


class MSRPURIError(MSRPProtocolError, ValueError):
    """An ``msrp:`` / ``msrps:`` URI that does not follow RFC 4975 section 9."""


class MSRPConnectError(MSRPError):
    """A connection could not be established or was lost."""


class MSRPTransactionError(MSRPError):
    """A transaction ended with a non-2xx response (or a local equivalent).

    ``code`` is the MSRP status code (408 for a local timeout, 481 for a path mismatch, ...)
    and ``comment`` its reason phrase.
    """

    def __init__(self, code: int, comment: str = "") -> None:
        super().__init__(f"{code} {comment}".strip())
        self.code = code
        self.comment = comment


class MSRPTimeoutError(MSRPTransactionError):
    """No response (or report) arrived in time; ``code`` is 408."""

    def __init__(self, comment: str = "Request Timeout") -> None:
        super().__init__(408, comment)


class MSRPAuthError(MSRPTransactionError):
    """AUTH against a relay (RFC 4976) was refused."""


class MSRPSessionError(MSRPError):
    """Misuse of a session (not started, already closed, ...)."""


class MSRPAbortedError(MSRPTransactionError):
    """A message was aborted by the sender (``#`` flag) or by a local call."""

    def __init__(self, comment: str = "Aborted") -> None:
        super().__init__(499, comment)


class MSRPReportError(MSRPTransactionError):
    """A failure REPORT arrived for a message we sent."""


class CPIMError(MSRPError, ValueError):
    """A message/cpim document that cannot be parsed or built."""


class IsComposingError(MSRPError, ValueError):
    """An is-composing (RFC 3994) document that is not valid."""


class FileTransferError(MSRPError):
    """A file transfer failed (I/O error, size or hash mismatch)."""
