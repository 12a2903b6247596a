"""Exceptions raised by the payload parsers and builders."""

__all__ = ["PayloadError", "ParserError", "ValidationError", "UnsupportedContentType"]


class PayloadError(Exception):
    """Base class of every error raised while handling a payload."""


class ParserError(PayloadError):
    """The body could not be parsed at all (malformed XML, bad encoding, too big, DTD, ...)."""


class ValidationError(PayloadError):
    """The body is well-formed but does not follow the schema of its content type."""


class UnsupportedContentType(PayloadError):
    """No parser is registered for the given content type."""
