"""Is-composing indications (RFC 3994): ``application/im-iscomposing+xml``.

:meth:`IsComposingDocument.parse` validates against the RFC's schema rules (root element
and namespace, element order, ``state`` present, ``lastactive`` a dateTime, ``refresh`` a
positive integer, extensions only from other namespaces) and refuses documents with a DTD,
raising :class:`~sipsimple.msrp.errors.IsComposingError` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from .cpim import format_datetime, parse_datetime
from .errors import CPIMError, IsComposingError

__all__ = ["IsComposingDocument", "ISCOMPOSING_CONTENT_TYPE", "ISCOMPOSING_NS"]

ISCOMPOSING_CONTENT_TYPE = "application/im-iscomposing+xml"
ISCOMPOSING_NS = "urn:ietf:params:xml:ns:im-iscomposing"
_STATES = ("active", "idle")
_ORDER = ("state", "lastactive", "contenttype", "refresh")
_MAX_SIZE = 64 * 1024


@dataclass(frozen=True)
class IsComposingDocument:
    """One is-composing indication."""

    state: str
    last_active: datetime | None = None
    content_type: str | None = None
    refresh: int | None = None

    def __post_init__(self) -> None:
        if self.state not in _STATES:
            raise IsComposingError(f"state must be 'active' or 'idle', not {self.state!r}")
        if self.refresh is not None and (not isinstance(self.refresh, int) or self.refresh <= 0):
            raise IsComposingError(f"refresh must be a positive integer, not {self.refresh!r}")

    def to_xml(self) -> bytes:
        root = etree.Element(f"{{{ISCOMPOSING_NS}}}isComposing", nsmap={None: ISCOMPOSING_NS})
        etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}state").text = self.state
        if self.last_active is not None:
            etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}lastactive").text = format_datetime(self.last_active)
        if self.content_type is not None:
            etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}contenttype").text = self.content_type
        if self.refresh is not None:
            etree.SubElement(root, f"{{{ISCOMPOSING_NS}}}refresh").text = str(self.refresh)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    @classmethod
    def parse(cls, data: bytes | str) -> IsComposingDocument:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > _MAX_SIZE:
            raise IsComposingError("is-composing document too large")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            raise IsComposingError(f"not well-formed XML: {exc}") from None
        if root.getroottree().docinfo.doctype:
            raise IsComposingError("DTDs are not allowed")
        if root.tag != f"{{{ISCOMPOSING_NS}}}isComposing":
            raise IsComposingError(f"root element is {root.tag}, expected isComposing in {ISCOMPOSING_NS}")
        values: dict[str, str] = {}
        position = 0
        for child in root:
            if not isinstance(child.tag, str):
                continue  # comments, processing instructions
            namespace, _, local = (
                child.tag[1:].partition("}") if child.tag.startswith("{") else ("", "", child.tag)
            )
            if namespace != ISCOMPOSING_NS:
                if not namespace:
                    raise IsComposingError(f"unqualified element {child.tag!r}")
                position = len(_ORDER)  # extensions come last
                continue
            if local not in _ORDER:
                raise IsComposingError(f"unknown element {local!r}")
            index = _ORDER.index(local)
            if index < position or local in values:
                raise IsComposingError(f"element {local!r} out of order or repeated")
            position = index + 1
            if len(child):
                raise IsComposingError(f"element {local!r} must contain text only")
            values[local] = (child.text or "").strip()
        if "state" not in values:
            raise IsComposingError("missing state element")
        last_active = None
        if "lastactive" in values:
            try:
                last_active = parse_datetime(values["lastactive"])
            except CPIMError:
                raise IsComposingError(f"bad lastactive {values['lastactive']!r}") from None
        refresh = None
        if "refresh" in values:
            text = values["refresh"]
            if not text.isdigit() or not text.isascii():
                raise IsComposingError(f"bad refresh {text!r}")
            refresh = int(text)
        content_type = values.get("contenttype") or None
        return cls(values["state"], last_active, content_type, refresh)
