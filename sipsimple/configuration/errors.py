"""Errors of the configuration framework."""

from __future__ import annotations

__all__ = ["ConfigurationError", "ObjectNotFoundError"]


class ConfigurationError(Exception):
    """The configuration cannot be read or written, or the manager is not started."""


class ObjectNotFoundError(ConfigurationError, KeyError):
    """No stored settings object has the given id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
