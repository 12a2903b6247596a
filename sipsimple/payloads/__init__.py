"""Presence-related SIP payloads: PIDF/RPID/data model, watcherinfo, message summary.

The XML formats are bound with :mod:`sipsimple.payloads.xmlbinding`; every
error is a :class:`PayloadError` (:class:`ParserError` for bodies that cannot be
parsed, :class:`ValidationError` for ones that break the schema).
"""

from .errors import ParserError, PayloadError, UnsupportedContentType, ValidationError
from .messagesummary import MessageCount, MessageSummary
from .pidf import Presence
from .presence import PresenceState
from .registry import parse_payload, register_payload, supported_content_types
from .watcherinfo import WatcherInfo, WatcherInfoTracker, apply_watcherinfo

__all__ = [
    "PayloadError",
    "ParserError",
    "ValidationError",
    "UnsupportedContentType",
    "Presence",
    "PresenceState",
    "WatcherInfo",
    "WatcherInfoTracker",
    "apply_watcherinfo",
    "MessageCount",
    "MessageSummary",
    "parse_payload",
    "register_payload",
    "supported_content_types",
]
