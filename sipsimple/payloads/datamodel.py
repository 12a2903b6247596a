"""The presence data model (RFC 4479): persons, devices and their notes.

Services are PIDF tuples (:class:`sipsimple.payloads.pidf.Tuple`); this module
holds the ``dm:`` elements that sit next to them in a ``<presence>`` document,
with typed access to the RPID (RFC 4480) and capability (RFC 5196) elements
that commonly appear inside them.
"""

from __future__ import annotations

from . import rpid
from .caps import DevCaps
from .xmlbinding import (
    URI,
    XMLID,
    Attribute,
    Child,
    Children,
    ChildText,
    DateTime,
    Extensions,
    LangText,
    XMLElement,
    qname,
    register_prefix,
)

__all__ = ["DM_NS", "DMNote", "Person", "Device", "DEVICE_ID", "TIMESTAMP"]

DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"
register_prefix(DM_NS, "dm")

#: Clark names of the text-only data model elements, also used inside tuples.
DEVICE_ID = qname(DM_NS, "deviceID")
TIMESTAMP = qname(DM_NS, "timestamp")


class DMNote(LangText, tag=(DM_NS, "note")):
    """A ``<dm:note>`` with optional ``xml:lang``."""


class Person(XMLElement, tag=(DM_NS, "person")):
    """The human (or other principal) behind the presentity."""

    id = Attribute("id", XMLID(), required=True)
    activities = Child(rpid.Activities)
    rpid_class = Child(rpid.Class)
    mood = Child(rpid.Mood)
    place_type = Child(rpid.PlaceType)
    privacy = Child(rpid.Privacy)
    sphere = Child(rpid.Sphere)
    status_icon = Child(rpid.StatusIcon)
    time_offset = Child(rpid.TimeOffset)
    user_input = Child(rpid.UserInput)
    extensions = Extensions()
    notes = Children(DMNote)
    timestamp = ChildText(TIMESTAMP, DateTime())


class Device(XMLElement, tag=(DM_NS, "device")):
    """A physical device the person uses; services run on devices."""

    id = Attribute("id", XMLID(), required=True)
    user_input = Child(rpid.UserInput)
    rpid_class = Child(rpid.Class)
    devcaps = Child(DevCaps)
    extensions = Extensions()
    device_id = ChildText(DEVICE_ID, URI(), required=True)
    notes = Children(DMNote)
    timestamp = ChildText(TIMESTAMP, DateTime())
