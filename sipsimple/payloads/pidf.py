"""PIDF presence documents (RFC 3863) with the RFC 4479 data model.

``application/pidf+xml``. A :class:`Presence` holds tuples (services),
presence-level notes, ``dm:person`` and ``dm:device`` elements, and keeps any
other extension element it does not model.
"""

from __future__ import annotations

from typing import Any

from . import rpid
from .caps import ServCaps
from .datamodel import DEVICE_ID, Device, Person
from .xmlbinding import (
    URI,
    XMLID,
    Attribute,
    Child,
    Children,
    ChildText,
    DateTime,
    Enum,
    Extensions,
    LangText,
    Priority,
    Text,
    XMLElement,
    qname,
    register_prefix,
)

__all__ = ["PIDF_NS", "CONTENT_TYPE", "Note", "Contact", "Status", "Tuple", "Presence"]

PIDF_NS = "urn:ietf:params:xml:ns:pidf"
CONTENT_TYPE = "application/pidf+xml"
register_prefix(PIDF_NS, "pidf")


class Note(LangText, tag=(PIDF_NS, "note")):
    """Free text with an optional ``xml:lang``."""


class Contact(XMLElement, tag=(PIDF_NS, "contact")):
    """Contact address of a tuple, with an optional priority between 0 and 1."""

    priority = Attribute("priority", Priority())
    uri = Text(URI(), required=True)

    def __init__(self, uri: str | None = None, priority: Any = None, **kwargs: Any) -> None:
        super().__init__(uri=uri, priority=priority, **kwargs)


class Status(XMLElement, tag=(PIDF_NS, "status")):
    """Tuple status: ``basic`` open/closed plus extended status elements."""

    basic = ChildText(qname(PIDF_NS, "basic"), Enum("open", "closed"))
    extensions = Extensions()

    def __init__(self, basic: str | None = None, **kwargs: Any) -> None:
        super().__init__(basic=basic, **kwargs)


class Tuple(XMLElement, tag=(PIDF_NS, "tuple")):
    """A PIDF tuple, the data model's *service*."""

    id = Attribute("id", XMLID(), required=True)
    status = Child(Status, required=True)
    device_id = ChildText(DEVICE_ID, URI())
    user_input = Child(rpid.UserInput)
    rpid_class = Child(rpid.Class)
    relationship = Child(rpid.Relationship)
    service_class = Child(rpid.ServiceClass)
    status_icon = Child(rpid.StatusIcon)
    servcaps = Child(ServCaps)
    extensions = Extensions()
    contact = Child(Contact)
    notes = Children(Note)
    timestamp = ChildText(qname(PIDF_NS, "timestamp"), DateTime())


class Presence(XMLElement, tag=(PIDF_NS, "presence")):
    """The ``<presence>`` document root."""

    entity = Attribute("entity", URI(), required=True)
    tuples = Children(Tuple)
    notes = Children(Note)
    persons = Children(Person)
    devices = Children(Device)
    extensions = Extensions()

    def __init__(self, entity: str | None = None, **kwargs: Any) -> None:
        super().__init__(entity=entity, **kwargs)

    def tuple(self, tuple_id: str) -> Tuple | None:
        """The tuple with *tuple_id*, if any."""
        return next((t for t in self.tuples if t.id == tuple_id), None)

    def person(self, person_id: str) -> Person | None:
        """The person with *person_id*, if any."""
        return next((p for p in self.persons if p.id == person_id), None)
