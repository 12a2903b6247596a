"""sipsimple: a SIP SIMPLE client SDK for Python."""

try:
    from sipsimple._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0"

__all__ = ["__version__"]
