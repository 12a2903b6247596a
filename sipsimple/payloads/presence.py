"""A deliberately small view of presence for the account layer.

:class:`PresenceState` is what a user sets ("available, note 'at lunch',
activity 'meal'") and what a watcher needs to show. It converts to a PIDF
document for PUBLISH/NOTIFY and is read back from any received PIDF.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from .datamodel import Person
from .errors import ValidationError
from .pidf import Contact, Note, Presence, Status, Tuple
from .rpid import ACTIVITIES, Activities, Other

__all__ = ["PresenceState"]


def _stable_id(prefix: str, entity: str) -> str:
    # Same ids on every PUBLISH so watchers see an update, not a new service.
    return prefix + hashlib.sha1(entity.encode("utf-8")).hexdigest()[:10]


@dataclass(frozen=True)
class PresenceState:
    """Basic status plus an optional note and RPID activity."""

    status: str = "open"
    note: str | None = None
    activity: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("open", "closed"):
            raise ValidationError(f"status must be 'open' or 'closed', not {self.status!r}")
        for name in ("note", "activity"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValidationError(f"{name} must be a string or None, not {type(value).__name__}")
        if self.activity is not None and not self.activity.strip():
            raise ValidationError("activity must not be empty")

    def to_pidf(
        self,
        entity: str,
        *,
        contact: str | None = None,
        tuple_id: str | None = None,
        person_id: str | None = None,
        timestamp: datetime | None = None,
        lang: str | None = None,
    ) -> Presence:
        """Build the PIDF document publishing this state for *entity*.

        The note goes into the tuple (understood by plain PIDF readers); the
        activity goes into an RPID ``dm:person``, as ``<rpid:other>`` when it is
        not one of the RFC 4480 tokens.
        """
        service = Tuple(
            id=tuple_id or _stable_id("t", entity),
            status=Status(self.status),
            contact=Contact(contact) if contact else None,
            notes=[Note(self.note, lang=lang)] if self.note else [],
            timestamp=timestamp,
        )
        document = Presence(entity, tuples=[service])
        if self.activity:
            if self.activity in ACTIVITIES:
                activities = Activities(self.activity)
            else:
                activities = Activities(other=[Other(self.activity, lang=lang)])
            document.persons.append(Person(id=person_id or _stable_id("p", entity), activities=activities))
        return document

    def toxml(self, entity: str, **kwargs: object) -> bytes:
        """Shortcut for ``to_pidf(entity, ...).toxml()``."""
        return self.to_pidf(entity, **kwargs).toxml()  # type: ignore[arg-type]

    @classmethod
    def from_pidf(cls, document: Presence | bytes | str) -> PresenceState:
        """Summarize any PIDF document.

        Open if any tuple is open. The note is taken from the first person, then
        from tuples (open ones first), then from the presence level. The activity
        is the first RPID activity of the first person that has one.
        """
        if not isinstance(document, Presence):
            document = Presence.parse(document)
        tuples = sorted(document.tuples, key=lambda t: t.status.basic != "open")
        status = "open" if tuples and tuples[0].status.basic == "open" else "closed"
        notes = [n.text for p in document.persons for n in p.notes]
        notes += [n.text for t in tuples for n in t.notes]
        notes += [n.text for n in document.notes]
        note = next((text for text in notes if text.strip()), None)
        activity = None
        for person in document.persons:
            if person.activities is not None and person.activities.texts:
                activity = next((a for a in person.activities.texts if a.strip()), None)
                if activity:
                    break
        return cls(status=status, note=note, activity=activity)
