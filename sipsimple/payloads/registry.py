"""Content-type registry: ``parse_payload(content_type, body)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import messagesummary, pidf, watcherinfo
from .errors import UnsupportedContentType

__all__ = ["parse_payload", "register_payload", "supported_content_types", "normalize_content_type"]

_PARSERS: dict[str, Callable[[bytes], Any]] = {}


def normalize_content_type(content_type: str) -> str:
    """``"Application/PIDF+XML; charset=utf-8"`` -> ``"application/pidf+xml"``."""
    return content_type.split(";", 1)[0].strip().lower()


def register_payload(content_type: str, parser: Callable[[bytes], Any]) -> None:
    """Register (or replace) the parser used for *content_type*."""
    _PARSERS[normalize_content_type(content_type)] = parser


def supported_content_types() -> list[str]:
    """Content types :func:`parse_payload` understands."""
    return sorted(_PARSERS)


def parse_payload(content_type: str, body: bytes | str) -> Any:
    """Parse *body* according to *content_type* (parameters are ignored).

    Raises :class:`UnsupportedContentType` for unknown types and other
    :class:`PayloadError` subclasses for bodies that are not valid.
    """
    parser = _PARSERS.get(normalize_content_type(content_type))
    if parser is None:
        raise UnsupportedContentType(f"no payload parser for content type {content_type!r}")
    return parser(body)


register_payload(pidf.CONTENT_TYPE, pidf.Presence.parse)
register_payload(watcherinfo.CONTENT_TYPE, watcherinfo.WatcherInfo.parse)
register_payload(messagesummary.CONTENT_TYPE, messagesummary.MessageSummary.parse)
