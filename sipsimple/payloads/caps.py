"""User agent capabilities in presence (RFC 5196), the commonly used subset.

``<caps:servcaps>`` lives in PIDF tuples and ``<caps:devcaps>`` in
``dm:device``. Capability elements not modelled here are preserved as
extensions, so documents still round-trip.
"""

from __future__ import annotations

from .xmlbinding import (
    Boolean,
    Child,
    ChildText,
    Extensions,
    FlagList,
    XMLElement,
    qname,
    register_prefix,
)

__all__ = [
    "CAPS_NS",
    "Supported",
    "NotSupported",
    "Methods",
    "EventPackages",
    "ServCaps",
    "DevCaps",
    "Mobility",
]

CAPS_NS = "urn:ietf:params:xml:ns:pidf:caps"
register_prefix(CAPS_NS, "caps")


def _flag(name: str) -> ChildText:
    return ChildText(qname(CAPS_NS, name), Boolean())


class Supported(XMLElement, tag=(CAPS_NS, "supported")):
    """Names (methods, event packages, ...) that are supported."""

    names = FlagList(CAPS_NS)


class NotSupported(XMLElement, tag=(CAPS_NS, "notsupported")):
    """Names that are explicitly not supported."""

    names = FlagList(CAPS_NS)


class _SupportLists(XMLElement):
    """What is ``supported`` and what is ``notsupported``: the content of several capability elements."""

    supported = Child(Supported)
    notsupported = Child(NotSupported)


class Methods(_SupportLists, tag=(CAPS_NS, "methods")):
    """SIP methods (``<caps:INVITE/>``, ...)."""


class EventPackages(_SupportLists, tag=(CAPS_NS, "event-packages")):
    """SIP event packages (``<caps:presence/>``, ...)."""


class ServCaps(XMLElement, tag=(CAPS_NS, "servcaps")):
    """Service capabilities of a tuple."""

    # The RFC 5196 vocabulary is large; unmodelled parts are kept, not refused.
    _closed_namespace = False

    application = _flag("application")
    audio = _flag("audio")
    automata = _flag("automata")
    control = _flag("control")
    data = _flag("data")
    is_focus = _flag("isfocus")
    message = _flag("message")
    text = _flag("text")
    video = _flag("video")
    methods = Child(Methods)
    event_packages = Child(EventPackages)
    extensions = Extensions()


class Mobility(_SupportLists, tag=(CAPS_NS, "mobility")):
    """Whether a device is ``fixed`` and/or ``mobile``."""


class DevCaps(XMLElement, tag=(CAPS_NS, "devcaps")):
    """Device capabilities."""

    _closed_namespace = False

    mobility = Child(Mobility)
    extensions = Extensions()
