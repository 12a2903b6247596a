"""RPID: Rich Presence Extensions to PIDF (RFC 4480).

These elements appear inside ``dm:person``, ``dm:device`` and PIDF tuples (see
:mod:`sipsimple.payloads.datamodel` and :mod:`sipsimple.payloads.pidf`).
"""

from __future__ import annotations

from typing import Any

from .xmlbinding import (
    URI,
    XMLID,
    Attribute,
    Children,
    DateTime,
    Enum,
    Extensions,
    Flag,
    FlagList,
    Integer,
    LangText,
    String,
    Text,
    Token,
    ValidationError,
    XMLElement,
    qname,
    register_prefix,
)

__all__ = [
    "RPID_NS",
    "LT_NS",
    "ACTIVITIES",
    "MOODS",
    "RPIDNote",
    "Other",
    "Activities",
    "Mood",
    "PlaceType",
    "Privacy",
    "Relationship",
    "ServiceClass",
    "Sphere",
    "StatusIcon",
    "TimeOffset",
    "UserInput",
    "Class",
]

RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
#: RFC 4589 location types, the usual content of ``rpid:place-type``.
LT_NS = "urn:ietf:params:xml:ns:location-type"

register_prefix(RPID_NS, "rpid")
register_prefix(LT_NS, "lt")

ACTIVITIES = (
    "appointment", "away", "breakfast", "busy", "dinner", "holiday", "in-transit",
    "looking-for-work", "meal", "meeting", "on-the-phone", "performance", "permanent-absence",
    "playing", "presentation", "shopping", "sleeping", "spectator", "steering", "travel", "tv",
    "unknown", "vacation", "working", "worship",
)  # fmt: skip

MOODS = (
    "afraid", "amazed", "angry", "annoyed", "anxious", "ashamed", "bored", "brave", "calm",
    "cold", "confused", "contented", "cranky", "curious", "depressed", "disappointed",
    "disgusted", "distracted", "embarrassed", "excited", "flirtatious", "frustrated", "grumpy",
    "guilty", "happy", "hot", "humbled", "humiliated", "hungry", "hurt", "impressed", "in_awe",
    "in_love", "indignant", "interested", "invincible", "jealous", "lonely", "mean", "moody",
    "nervous", "neutral", "offended", "playful", "proud", "relieved", "remorseful", "restless",
    "sad", "sarcastic", "serious", "shocked", "shy", "sick", "sleepy", "stressed", "surprised",
    "thirsty", "worried", "unknown",
)  # fmt: skip


class RPIDNote(LangText, tag=(RPID_NS, "note")):
    """A note attached to an RPID element."""


class Other(LangText, tag=(RPID_NS, "other")):
    """Free-text value used when no enumerated token fits."""


class _Timed(XMLElement):
    """Common ``id``, ``from`` and ``until`` attributes (the fromUntil group)."""

    id = Attribute("id", XMLID())
    from_ = Attribute("from", DateTime())
    until = Attribute("until", DateTime())


class _Enumerated(_Timed):
    """Notes plus one or more enumerated tokens, ``other`` texts or extensions."""

    _names: tuple[str, ...] = ()
    # Draft-era clients send tokens that never made it into RFC 4480; keep them
    # as extensions instead of throwing the whole presence document away.
    _closed_namespace = False

    notes = Children(RPIDNote)
    values = FlagList(RPID_NS)  # replaced with the vocabulary in subclasses
    other = Children(Other)
    extensions = Extensions()

    def __init__(self, *values: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if values:
            self.values = list(values)

    def _validate(self, path: str) -> None:
        if "unknown" in self.values and len(self.values) + len(self.other) > 1:
            raise ValidationError(f"{path}: 'unknown' cannot be combined with other values")

    @property
    def texts(self) -> list[str]:
        """Enumerated tokens followed by the free-text ``other`` values."""
        return list(self.values) + [o.text for o in self.other]


class Activities(_Enumerated, tag=(RPID_NS, "activities")):
    """What the person is doing (``<rpid:activities>``)."""

    values = FlagList(RPID_NS, ACTIVITIES)


class Mood(_Enumerated, tag=(RPID_NS, "mood")):
    """The person's mood (``<rpid:mood>``)."""

    values = FlagList(RPID_NS, MOODS)


class Relationship(_Enumerated, tag=(RPID_NS, "relationship")):
    """Relationship of a service's contact to the presentity."""

    values = FlagList(
        RPID_NS, ("assistant", "associate", "family", "friend", "self", "supervisor", "unknown")
    )


class ServiceClass(_Enumerated, tag=(RPID_NS, "service-class")):
    """Kind of service a tuple describes."""

    values = FlagList(RPID_NS, ("courier", "electronic", "freight", "in-person", "postal", "unknown"))


class PlaceType(_Timed, tag=(RPID_NS, "place-type")):
    """Type of place the person is at; values are RFC 4589 location types."""

    notes = Children(RPIDNote)
    types = FlagList(LT_NS)
    other = Children(Other)
    extensions = Extensions()

    def __init__(self, *types: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if types:
            self.types = list(types)


class Privacy(_Timed, tag=(RPID_NS, "privacy")):
    """Which media types may be observed by others in the person's vicinity."""

    notes = Children(RPIDNote)
    unknown = Flag(qname(RPID_NS, "unknown"))
    audio = Flag(qname(RPID_NS, "audio"))
    text = Flag(qname(RPID_NS, "text"))
    video = Flag(qname(RPID_NS, "video"))
    extensions = Extensions()

    def _validate(self, path: str) -> None:
        if self.unknown and (self.audio or self.text or self.video):
            raise ValidationError(f"{path}: 'unknown' cannot be combined with audio/text/video")


class Sphere(_Timed, tag=(RPID_NS, "sphere")):
    """The current sphere of life: ``work``, ``home``, ``unknown`` or free text."""

    text = Text(Token())
    work = Flag(qname(RPID_NS, "work"))
    home = Flag(qname(RPID_NS, "home"))
    unknown = Flag(qname(RPID_NS, "unknown"))
    extensions = Extensions()

    @property
    def value(self) -> str | None:
        for name in ("work", "home", "unknown"):
            if getattr(self, name):
                return name
        return self.text

    def _validate(self, path: str) -> None:
        if self.work + self.home + self.unknown > 1:
            raise ValidationError(f"{path}: only one of work, home and unknown may be given")


class StatusIcon(_Timed, tag=(RPID_NS, "status-icon")):
    """URI of an icon representing the status."""

    uri = Text(URI(), required=True)


class TimeOffset(_Timed, tag=(RPID_NS, "time-offset")):
    """Offset of the presentity's local time from UTC, in minutes."""

    description = Attribute("description", String())
    minutes = Text(Integer(-24 * 60, 24 * 60), required=True)


class UserInput(XMLElement, tag=(RPID_NS, "user-input")):
    """Whether the user is actively using a device or service."""

    id = Attribute("id", XMLID())
    idle_threshold = Attribute("idle-threshold", Integer(1))
    last_input = Attribute("last-input", DateTime())
    value = Text(Enum("active", "idle"), required=True)


class Class(XMLElement, tag=(RPID_NS, "class")):
    """An opaque classification token used to group tuples, persons and devices."""

    value = Text(Token(), required=True)
