"""The one error hierarchy of the core."""

__all__ = [
    "SIPCoreError",
    "SIPCoreInvalidStateError",
    "SIPCoreEngineError",
    "SIPCoreTimeoutError",
]


class SIPCoreError(Exception):
    """Base class of every error the core raises (besides ValueError/TypeError for bad arguments)."""


class SIPCoreInvalidStateError(SIPCoreError):
    """A method was called in a state that does not allow it; nothing was changed."""


class SIPCoreEngineError(SIPCoreError):
    """The Engine is not running, or failed to start or stop."""


class SIPCoreTimeoutError(SIPCoreError):
    """An operation did not finish in the time given."""
