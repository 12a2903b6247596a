"""A small declarative XML binding built on lxml.

Element classes declare their XML shape with typed field descriptors::

    class Contact(XMLElement, tag=(PIDF_NS, "contact")):
        priority = Attribute("priority", Priority())
        uri = Text(URI(), required=True)

and get ``parse(bytes)``, ``from_element()``, ``to_element()``, ``toxml()``,
structural equality and a readable ``repr`` for free.

Round-tripping is a design goal: elements remember the namespace declarations
and the child order they were parsed with, and children the class does not know
(extensions from other namespaces) are kept as detached lxml elements, so that
``parse(x).toxml()`` is canonically identical to ``x`` for schema-valid input.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Self

from lxml import etree

from .errors import ParserError, PayloadError, ValidationError
from .xmltypes import (
    URI,
    XMLID,
    Boolean,
    Converter,
    DateTime,
    Enum,
    Integer,
    Priority,
    String,
    Token,
    XMLDateTime,
)

__all__ = [
    "XML_NS",
    "XML_LANG",
    "PayloadError",
    "ParserError",
    "ValidationError",
    "parse_xml",
    "register_prefix",
    "qname",
    "Converter",
    "String",
    "Token",
    "Enum",
    "Integer",
    "Boolean",
    "Priority",
    "DateTime",
    "XMLDateTime",
    "URI",
    "XMLID",
    "Field",
    "Attribute",
    "Text",
    "Child",
    "Children",
    "ChildText",
    "Flag",
    "FlagList",
    "Extensions",
    "XMLElement",
    "LangText",
]

XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_LANG = f"{{{XML_NS}}}lang"

#: Refuse bodies larger than this; presence documents are a few KiB at most.
MAX_PAYLOAD_SIZE = 1 << 20


def qname(namespace: str | None, name: str) -> str:
    """Return the Clark notation ``{namespace}name`` used by lxml."""
    return f"{{{namespace}}}{name}" if namespace else name


def _split(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def describe(tag: str) -> str:
    """Human readable form of a Clark-notation tag, for error messages."""
    ns, local = _split(tag)
    return f"<{local}> (namespace {ns!r})" if ns else f"<{local}> (no namespace)"


# -- safe parsing -------------------------------------------------------------------------------

_parsers = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parser objects must not be shared between threads, hence one per thread.
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
            dtd_validation=False,
            remove_comments=True,
            remove_pis=True,
            collect_ids=False,
        )
        _parsers.parser = parser
    return parser


def parse_xml(data: bytes | bytearray | memoryview | str, max_size: int = MAX_PAYLOAD_SIZE) -> etree._Element:
    """Parse *data* safely and return its root element.

    No network access, no entity expansion, no huge-tree mode; documents with a
    DOCTYPE are refused outright because no presence format uses one and it is
    the vehicle for entity attacks.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, bytearray | memoryview):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(f"XML payload must be bytes or str, not {type(data).__name__}")
    if len(data) > max_size:
        raise ParserError(f"payload is {len(data)} bytes, larger than the {max_size} bytes limit")
    if not data.strip():
        raise ParserError("payload is empty")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise ParserError(f"malformed XML: {exc}") from exc
    except (etree.LxmlError, ValueError) as exc:
        raise ParserError(f"cannot parse XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ParserError("DOCTYPE declarations are not allowed in payloads")
    return root


# -- preferred prefixes for newly built documents -----------------------------------------------

_PREFIXES: dict[str, str] = {}


def register_prefix(namespace: str, prefix: str) -> None:
    """Declare the prefix used for *namespace* when building documents from scratch."""
    _PREFIXES[namespace] = prefix


def _new_nsmap(namespace: str | None, parent: etree._Element | None) -> dict[str | None, str] | None:
    if namespace is None:
        return None
    if parent is None:
        return {None: namespace}
    in_scope = parent.nsmap
    if namespace in in_scope.values():
        return None
    prefix = _PREFIXES.get(namespace)
    if prefix and prefix not in in_scope:
        return {prefix: namespace}
    return None  # let lxml invent a prefix rather than shadow one in use


def _make(parent: etree._Element | None, tag: str, nsmap: dict | None) -> etree._Element:
    if parent is None:
        return etree.Element(tag, nsmap=nsmap or None)
    return etree.SubElement(parent, tag, nsmap=nsmap or None)


def _hoist_namespaces(root: etree._Element) -> None:
    """Move declarations of known namespaces used anywhere in a fresh tree up to its root."""
    bound = root.nsmap
    used: set[str] = set()
    for el in root.iter():
        if isinstance(el.tag, str):
            ns, _ = _split(el.tag)
            if ns:
                used.add(ns)
            for key in el.attrib:
                ans, _ = _split(key)
                if ans and ans != XML_NS:
                    used.add(ans)
    top = {}
    for ns in sorted(used):  # sorted: byte-identical output across runs
        prefix = _PREFIXES.get(ns)
        if prefix and ns not in bound.values() and prefix not in bound and prefix not in top:
            top[prefix] = ns
    etree.cleanup_namespaces(root, top_nsmap=top or None)


def _local_nsdecl(el: etree._Element) -> dict[str | None, str]:
    parent = el.getparent()
    inherited = parent.nsmap if parent is not None else {}
    return {p: u for p, u in el.nsmap.items() if inherited.get(p) != u}


def _same_tree(a: etree._Element, b: etree._Element, top: bool = True) -> bool:
    """Structural equality of two subtrees, independent of namespace prefixes."""
    return (
        a.tag == b.tag
        and dict(a.attrib) == dict(b.attrib)
        and (a.text or "") == (b.text or "")
        and (top or (a.tail or "") == (b.tail or ""))
        and len(a) == len(b)
        and all(_same_tree(x, y, False) for x, y in zip(a, b, strict=True))
    )


# -- fields -------------------------------------------------------------------------------------

_rank = itertools.count()


class Field:
    """Base descriptor. Values live in the instance ``__dict__`` under the field name."""

    is_child = True

    def __init__(self) -> None:
        self.rank = next(_rank)
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        try:
            obj.__dict__[self.name] = self.coerce(value)
        except ValueError as exc:
            raise ValidationError(f"{type(obj).__name__}.{self.name}: {exc}") from None

    def default(self) -> Any:
        return None

    def coerce(self, value: Any) -> Any:
        return value

    def equal(self, a: Any, b: Any) -> bool:
        return bool(a == b)

    def is_default(self, value: Any) -> bool:
        return value == self.default()

    # child fields
    def claims(self, tag: str) -> bool:
        return False

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        raise NotImplementedError

    def indices(self, obj: XMLElement) -> Iterable[int]:
        return ()

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        raise NotImplementedError

    def check_complete(self, obj: XMLElement, path: str) -> None:
        """Raise if a required value is missing."""


def _wrap(path: str, what: str, exc: ValueError) -> ValidationError:
    return ValidationError(f"{path}: {what}: {exc}")


class _Converted(Field):
    """A value that *converter* reads from XML text, writes back and checks; ``None`` means absent."""

    def __init__(self, converter: Converter, required: bool = False) -> None:
        super().__init__()
        self.converter = converter
        self.required = required

    def coerce(self, value: Any) -> Any:
        return None if value is None else self.converter.coerce(value)

    def _parse_into(self, obj: XMLElement, raw: str, path: str, what: str) -> None:
        try:
            obj.__dict__[self.name] = self.converter.parse(raw)
        except ValueError as exc:
            raise _wrap(path, what, exc) from None

    def _formatted(self, obj: XMLElement, missing: str) -> str | None:
        """The value as XML text; None when unset, which is the ValidationError *missing* if it is required."""
        value = obj.__dict__[self.name]
        if value is None:
            if self.required:
                raise ValidationError(missing)
            return None
        return self.converter.format(value)


class Attribute(_Converted):
    """An XML attribute converted with *converter*; ``None`` means absent."""

    is_child = False

    def __init__(self, xml_name: str, converter: Converter, required: bool = False) -> None:
        super().__init__(converter, required)
        self.xml_name = xml_name

    def parse_attr(self, obj: XMLElement, el: etree._Element, path: str) -> None:
        raw = el.get(self.xml_name)
        if raw is None:
            if self.required:
                raise ValidationError(f"{path}: missing required attribute {self.xml_name!r}")
            obj.__dict__[self.name] = None
            return
        self._parse_into(obj, raw, path, f"attribute {self.xml_name!r}")

    def build_attr(self, obj: XMLElement, el: etree._Element, path: str) -> None:
        text = self._formatted(obj, f"{path}: required attribute {self.xml_name!r} is not set")
        if text is not None:
            el.set(self.xml_name, text)


class Text(_Converted):
    """The element's own character content."""

    is_child = False

    def __init__(self, converter: Converter, required: bool = False, default: Any = None) -> None:
        super().__init__(converter, required)
        self._default = default

    def default(self) -> Any:
        return self._default

    def coerce(self, value: Any) -> Any:
        return self._default if value is None else self.converter.coerce(value)

    def parse_text(self, obj: XMLElement, el: etree._Element, path: str) -> None:
        raw = el.text
        if raw is None or (not raw.strip() and not isinstance(self.converter, String)):
            if self.required:
                raise ValidationError(f"{path}: element must not be empty")
            obj.__dict__[self.name] = self._default
            return
        self._parse_into(obj, raw, path, "content")

    def build_text(self, obj: XMLElement, el: etree._Element, path: str) -> None:
        text = self._formatted(obj, f"{path}: required content is not set")
        if text:
            el.text = text


class _SingleChild(Field):
    """At most one child element, ``tag``: the shared part of Child, ChildText and Flag."""

    tag: str
    required = False

    def present(self, value: Any) -> bool:
        """Whether *value* stands for an element (None is its absence)."""
        return value is not None

    def claims(self, tag: str) -> bool:
        return tag == self.tag

    def indices(self, obj: XMLElement) -> Iterable[int]:
        return (0,) if self.present(obj.__dict__[self.name]) else ()

    def check_complete(self, obj: XMLElement, path: str) -> None:
        if self.required and not self.present(obj.__dict__[self.name]):
            raise ValidationError(f"{path}: missing required element {describe(self.tag)}")

    def _check_first(self, obj: XMLElement, el: etree._Element, path: str) -> None:
        if self.present(obj.__dict__[self.name]):
            raise ValidationError(f"{path}: element {describe(el.tag)} may appear only once")

    def _new_element(self, parent: etree._Element) -> etree._Element:
        return _make(parent, self.tag, _new_nsmap(_split(self.tag)[0], parent))


class Child(_SingleChild):
    """At most one child element bound to class *cls*."""

    def __init__(self, cls: type[XMLElement], required: bool = False) -> None:
        super().__init__()
        self.cls = cls
        self.required = required

    @property  # type: ignore[override]
    def tag(self) -> str:
        return self.cls._tag

    def coerce(self, value: Any) -> Any:
        if value is not None and not isinstance(value, self.cls):
            raise ValueError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        return value

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        self._check_first(obj, el, path)
        obj.__dict__[self.name] = self.cls.from_element(el, path)
        return 0

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        obj.__dict__[self.name]._build(parent, path)


class _ListField(Field):
    def default(self) -> list:
        return []

    def coerce(self, value: Any) -> list:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        items = list(value)
        for item in items:
            self.check_item(item)
        return items

    def check_item(self, item: Any) -> None:
        pass

    def indices(self, obj: XMLElement) -> Iterable[int]:
        return range(len(obj.__dict__[self.name]))

    def _append(self, obj: XMLElement, item: Any) -> int:
        items = obj.__dict__[self.name]
        items.append(item)
        return len(items) - 1

    def _checked(self, obj: XMLElement, index: int, path: str) -> Any:
        """Item *index*, checked again: the list may have been changed in place since it was set."""
        item = obj.__dict__[self.name][index]
        try:
            self.check_item(item)
        except ValueError as exc:
            raise _wrap(path, self.name, exc) from None
        return item


class Children(_ListField):
    """Any number of child elements bound to class *cls*, kept in a list."""

    def __init__(self, cls: type[XMLElement]) -> None:
        super().__init__()
        self.cls = cls

    def check_item(self, item: Any) -> None:
        if not isinstance(item, self.cls):
            raise ValueError(f"expected {self.cls.__name__} items, got {type(item).__name__}")

    def claims(self, tag: str) -> bool:
        return tag == self.cls._tag

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        number = len(obj.__dict__[self.name]) + 1
        return self._append(obj, self.cls.from_element(el, path, index=number))

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        self._checked(obj, index, path)._build(parent, path)


class ChildText(_SingleChild, _Converted):
    """A child element holding only text, exposed as its converted value."""

    def __init__(self, tag: str, converter: Converter, required: bool = False) -> None:
        super().__init__(converter, required)
        self.tag = tag

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        where = f"{path}/{_split(el.tag)[1]}"
        self._check_first(obj, el, path)
        if len(el):
            raise ValidationError(f"{where}: element must contain only text")
        self._parse_into(obj, el.text or "", where, "content")
        return 0

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        self._new_element(parent).text = self.converter.format(obj.__dict__[self.name])


class Flag(_SingleChild):
    """An empty marker element whose presence means ``True``."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def present(self, value: Any) -> bool:
        return bool(value)

    def default(self) -> bool:
        return False

    def coerce(self, value: Any) -> bool:
        return bool(value)

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        self._check_first(obj, el, path)
        _require_empty(el, path)
        obj.__dict__[self.name] = True
        return 0

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        self._new_element(parent)


def _require_empty(el: etree._Element, path: str) -> None:
    if len(el) or (el.text and el.text.strip()):
        raise ValidationError(f"{path}/{_split(el.tag)[1]}: element must be empty")


class FlagList(_ListField):
    """A list of empty marker elements from *namespace*, stored as their local names.

    With *names* only those local names are accepted; without, any element of the
    namespace is (used for open vocabularies such as RFC 4589 place types).
    """

    def __init__(self, namespace: str, names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.namespace = namespace
        self.names = frozenset(names) if names is not None else None

    def check_item(self, item: Any) -> None:
        if not isinstance(item, str):
            raise ValueError(f"expected str items, got {type(item).__name__}")
        if self.names is not None and item not in self.names:
            raise ValueError(f"{item!r} is not one of {', '.join(sorted(self.names))}")
        if not re.fullmatch(r"[A-Za-z_][\w.-]*", item):
            raise ValueError(f"{item!r} is not a valid element name")

    def claims(self, tag: str) -> bool:
        ns, local = _split(tag)
        return ns == self.namespace and (self.names is None or local in self.names)

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        _require_empty(el, path)
        return self._append(obj, _split(el.tag)[1])

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        name = self._checked(obj, index, path)
        _make(parent, qname(self.namespace, name), _new_nsmap(self.namespace, parent))


class Extensions(_ListField):
    """Unknown child elements, kept as detached lxml elements so nothing is lost."""

    def check_item(self, item: Any) -> None:
        if not isinstance(item, etree._Element) or not isinstance(item.tag, str):
            raise ValueError(f"expected lxml elements, got {type(item).__name__}")

    def parse_child(self, obj: XMLElement, el: etree._Element, path: str) -> int:
        kept = copy.deepcopy(el)
        kept.tail = None  # indentation belongs to the parent's layout, not to the extension
        return self._append(obj, kept)

    def build_child(self, obj: XMLElement, parent: etree._Element, index: int, path: str) -> None:
        parent.append(copy.deepcopy(self._checked(obj, index, path)))

    def equal(self, a: list, b: list) -> bool:
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))


# -- element base class -------------------------------------------------------------------------


class XMLElement:
    """Base class of bound elements; subclass with ``tag=(namespace, localname)``."""

    _tag: ClassVar[str]
    _fields: ClassVar[tuple[Field, ...]] = ()
    _attribute_fields: ClassVar[tuple[Attribute, ...]] = ()
    _text_field: ClassVar[Text | None] = None
    _child_fields: ClassVar[tuple[Field, ...]] = ()
    _extension_field: ClassVar[Extensions | None] = None
    #: Whether unknown children from the element's own namespace are schema errors.
    _closed_namespace: ClassVar[bool] = True

    extra_attributes: dict[str, str]

    def __init_subclass__(cls, tag: tuple[str | None, str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if tag is not None:
            cls._tag = qname(*tag)
        found: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if name.startswith("_"):
                    continue  # the class-level bookkeeping (_text_field, ...) also holds fields
                if isinstance(value, Field):
                    if name in found and found[name] is not value:
                        # A subclass refining a field keeps the parent's place in schema order.
                        value.rank = min(value.rank, found[name].rank)
                    found[name] = value
                elif name in found:
                    del found[name]  # overridden by a plain attribute in a subclass
        fields = tuple(sorted(found.values(), key=lambda f: f.rank))
        cls._fields = fields
        cls._attribute_fields = tuple(f for f in fields if isinstance(f, Attribute))
        texts = [f for f in fields if isinstance(f, Text)]
        if len(texts) > 1:
            raise TypeError(f"{cls.__name__} declares more than one Text field")
        cls._text_field = texts[0] if texts else None
        cls._child_fields = tuple(f for f in fields if f.is_child)
        exts = [f for f in fields if isinstance(f, Extensions)]
        if len(exts) > 1:
            raise TypeError(f"{cls.__name__} declares more than one Extensions field")
        cls._extension_field = exts[0] if exts else None

    def __init__(self, **kwargs: Any) -> None:
        for field in self._fields:
            self.__dict__[field.name] = field.default()
        self.extra_attributes = {}
        self._nsdecl: dict[str | None, str] | None = None
        self._order: list[tuple[str, int]] | None = None
        names = {f.name for f in self._fields} | {"extra_attributes"}
        for key, value in kwargs.items():
            if key not in names:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {key!r}")
            if key == "extra_attributes":
                self.extra_attributes = dict(value)
            else:
                setattr(self, key, value)

    # -- parsing --------------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes | str) -> Self:
        """Parse a complete document whose root element is this class."""
        return cls.from_element(parse_xml(data))

    @classmethod
    def from_element(cls, el: etree._Element, path: str = "", index: int = 1) -> Self:
        """Bind an lxml element (validating it) to a new instance.

        *path* and *index* only serve error messages ("presence/tuple[2]: ...").
        """
        local = _split(el.tag)[1] if isinstance(el.tag, str) else "?"
        path = f"{path}/{local}" if path else local
        if index > 1:
            path += f"[{index}]"
        if el.tag != cls._tag:
            raise ValidationError(f"{path}: expected element {describe(cls._tag)}, found {describe(el.tag)}")
        obj = cls.__new__(cls)
        for field in cls._fields:
            obj.__dict__[field.name] = field.default()
        obj._nsdecl = _local_nsdecl(el)
        known = {f.xml_name for f in cls._attribute_fields}
        for field in cls._attribute_fields:
            field.parse_attr(obj, el, path)
        obj.extra_attributes = {k: v for k, v in el.attrib.items() if k not in known}
        mixed = cls._text_field is not None
        if mixed:
            cls._text_field.parse_text(obj, el, path)
        elif el.text and el.text.strip():
            raise ValidationError(f"{path}: unexpected text {el.text.strip()[:40]!r}")
        own_ns = _split(cls._tag)[0]
        order: list[tuple[str, int]] = []
        for child in el:
            if not isinstance(child.tag, str):
                continue  # entity references and the like carry no data we bind
            if not mixed and child.tail and child.tail.strip():
                raise ValidationError(f"{path}: unexpected text {child.tail.strip()[:40]!r}")
            field = cls._field_for(child.tag)
            if field is None:
                ext = cls._extension_field
                if ext is None or (cls._closed_namespace and _split(child.tag)[0] == own_ns):
                    raise ValidationError(f"{path}: unexpected element {describe(child.tag)}")
                field = ext
            order.append((field.name, field.parse_child(obj, child, path)))
        for field in cls._child_fields:
            field.check_complete(obj, path)
        obj._order = order
        obj._validate(path)
        return obj

    @classmethod
    def _field_for(cls, tag: str) -> Field | None:
        for field in cls._child_fields:
            if field.claims(tag):
                return field
        return None

    def _validate(self, path: str) -> None:
        """Hook for cross-field checks; raise ValidationError."""

    # -- building -------------------------------------------------------------------------------

    def to_element(self) -> etree._Element:
        """Build a fresh lxml tree for this element (validating it)."""
        root = self._build(None, "")
        if self._nsdecl is None:
            _hoist_namespaces(root)
        return root

    def toxml(self, pretty_print: bool = False, xml_declaration: bool = True) -> bytes:
        """Serialize as a UTF-8 document."""
        return etree.tostring(
            self.to_element(), encoding="UTF-8", xml_declaration=xml_declaration, pretty_print=pretty_print
        )

    def _build(self, parent: etree._Element | None, path: str) -> etree._Element:
        ns, local = _split(self._tag)
        path = f"{path}/{local}" if path else local
        nsmap = self._nsdecl if self._nsdecl is not None else _new_nsmap(ns, parent)
        el = _make(parent, self._tag, nsmap)
        for field in self._attribute_fields:
            field.build_attr(self, el, path)
        for key, value in self.extra_attributes.items():
            el.set(key, value)
        text_field = type(self)._text_field  # via the class: fields are descriptors
        if text_field is not None:
            text_field.build_text(self, el, path)
        for field in self._child_fields:
            field.check_complete(self, path)
        self._validate(path)
        for field, index in self._child_keys():
            field.build_child(self, el, index, path)
        return el

    def _child_keys(self) -> list[tuple[Field, int]]:
        """Children in output order: parsed order where known, schema order otherwise."""
        declared = [(f, i) for f in self._child_fields for i in f.indices(self)]
        if not self._order:
            return declared
        rank = {(f.name, i): n for n, (f, i) in enumerate(declared)}
        by_key = {(f.name, i): (f, i) for f, i in declared}
        out = [k for k in dict.fromkeys(self._order) if k in by_key]
        placed = set(out)
        for key in rank:
            if key in placed:
                continue
            # New content goes right after the last kept item that precedes it in schema order.
            pos = 0
            for n, existing in enumerate(out):
                if rank[existing] <= rank[key]:
                    pos = n + 1
            out.insert(pos, key)
        return [by_key[k] for k in out]

    # -- conveniences ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.extra_attributes == other.extra_attributes and all(
            f.equal(self.__dict__[f.name], other.__dict__[f.name]) for f in self._fields
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        parts = []
        for f in self._fields:
            value = self.__dict__[f.name]
            if not f.is_default(value):
                parts.append(f"{f.name}={value!r}")
        if self.extra_attributes:
            parts.append(f"extra_attributes={self.extra_attributes!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def find_extensions(self, tag: str) -> list[etree._Element]:
        """Kept extension elements with Clark-notation *tag*."""
        ext = type(self)._extension_field
        return [] if ext is None else [el for el in self.__dict__[ext.name] if el.tag == tag]


class LangText(XMLElement):
    """Base class of the free-text elements (notes and the like): text with an optional ``xml:lang``.

    Subclass with a tag: ``class Note(LangText, tag=(PIDF_NS, "note"))``.
    """

    lang = Attribute(XML_LANG, Token())
    text = Text(String(), default="")

    def __init__(self, text: str = "", lang: str | None = None, **kwargs: Any) -> None:
        super().__init__(text=text, lang=lang, **kwargs)
