"""SDP pieces of MSRP media (RFC 4975 section 8, RFC 6135, RFC 5547) as plain values.

The SDP model itself lives elsewhere; these helpers produce and parse the *values* of the
MSRP-specific attributes (what follows ``a=name:``) and the m-line fields:

* ``path`` -- :func:`format_path_attr` / :func:`parse_path_attr`
* ``accept-types`` / ``accept-wrapped-types`` -- :func:`format_types` / :func:`parse_types`
* ``setup`` (RFC 6135) -- :class:`Setup`, :func:`answer_setup`, :func:`is_active`
* ``file-selector``, ``file-transfer-id``, ``file-disposition``, ``file-range``,
  ``file-date`` (RFC 5547) -- :class:`FileSelector`, :class:`FileRange`, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sipsimple.msrp.errors import MSRPURIError
from sipsimple.msrp.filetransfer import format_sha1, parse_hash
from sipsimple.msrp.uri import MSRPURI, format_path, parse_path

__all__ = [
    "format_path_attr",
    "parse_path_attr",
    "format_types",
    "parse_types",
    "media_line",
    "Setup",
    "answer_setup",
    "is_active",
    "FileSelector",
    "FileRange",
    "FileDate",
    "parse_file_transfer_id",
    "parse_file_disposition",
    "SDPValueError",
]


class SDPValueError(ValueError):
    """An MSRP-related SDP attribute value that cannot be parsed."""


# ---------------------------------------------------------------------- path, types, m-line
def format_path_attr(path: list[MSRPURI]) -> str:
    """Value of ``a=path``."""
    return format_path(path)


def parse_path_attr(value: str) -> list[MSRPURI]:
    """Value of ``a=path`` to URIs (raises SDPValueError)."""
    try:
        return parse_path(value)
    except MSRPURIError as exc:
        raise SDPValueError(str(exc)) from None


_TYPE_RE = re.compile(r"^(\*|[A-Za-z0-9!#$&\-^_.+]+/(\*|[A-Za-z0-9!#$&\-^_.+]+))$")


def format_types(types: list[str]) -> str:
    """Value of ``a=accept-types`` / ``a=accept-wrapped-types``."""
    for item in types:
        if not _TYPE_RE.match(item):
            raise SDPValueError(f"bad media type {item!r}")
    return " ".join(types)


def parse_types(value: str) -> list[str]:
    """Space separated media types (``*`` and ``type/*`` allowed)."""
    items = value.split()
    if not items:
        raise SDPValueError("empty type list")
    for item in items:
        if not _TYPE_RE.match(item):
            raise SDPValueError(f"bad media type {item!r}")
    return items


def media_line(local_uri: MSRPURI) -> tuple[str, int, str, str]:
    """m-line fields: ``("message", port, "TCP/MSRP" or "TCP/TLS/MSRP", "*")``."""
    return ("message", local_uri.effective_port, "TCP/TLS/MSRP" if local_uri.use_tls else "TCP/MSRP", "*")


# ---------------------------------------------------------------------- a=setup (RFC 6135)
class Setup(StrEnum):
    """``a=setup`` values (RFC 4145 vocabulary, used by RFC 6135 for MSRP)."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"

    @classmethod
    def parse(cls, value: str) -> Setup:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise SDPValueError(f"bad setup value {value!r}") from None


def answer_setup(offer: Setup | str | None, prefer: Setup = Setup.PASSIVE) -> Setup:
    """The answer's ``a=setup`` for an offer's value.

    Without the attribute (plain RFC 4975) the offerer connects, so the answer is passive.
    For ``actpass`` the answerer may pick; ``prefer`` decides (passive by default, which
    keeps the RFC 4975 direction).  ``active`` -> passive, ``passive`` -> active.
    """
    if isinstance(offer, str):
        offer = Setup.parse(offer)
    if offer is None or offer is Setup.ACTIVE:
        return Setup.PASSIVE
    if offer is Setup.PASSIVE:
        return Setup.ACTIVE
    if offer is Setup.HOLDCONN:
        return Setup.HOLDCONN
    if prefer not in (Setup.ACTIVE, Setup.PASSIVE):
        raise ValueError("prefer must be active or passive")
    return prefer


def is_active(local: Setup | None, *, offerer: bool) -> bool:
    """Whether we connect, given our own negotiated value (None: no attribute on either side)."""
    if local is None:
        return offerer
    if local is Setup.ACTPASS:
        raise ValueError("actpass is not a negotiated value")
    return local is Setup.ACTIVE


# ---------------------------------------------------------------------- RFC 5547
def _quote_name(name: str) -> str:
    out = []
    for ch in name:
        if ch in '%"\r\n\x00':
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _unquote_name(text: str) -> str:
    raw = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


@dataclass(frozen=True)
class FileSelector:
    """``a=file-selector``: name, type, size, hash (each optional)."""

    name: str | None = None
    type: str | None = None
    size: int | None = None
    hash: str | None = None
    """``sha-1:AB:CD:...`` (without the ``hash:`` selector prefix)."""

    def __str__(self) -> str:
        parts = []
        if self.name is not None:
            parts.append("name:" + _quote_name(self.name))
        if self.type is not None:
            parts.append("type:" + self.type)
        if self.size is not None:
            parts.append(f"size:{self.size}")
        if self.hash is not None:
            parts.append("hash:" + self.hash)
        if not parts:
            raise SDPValueError("empty file-selector")
        return " ".join(parts)

    @classmethod
    def parse(cls, value: str) -> FileSelector:
        fields: dict[str, object] = {}
        text = value.strip()
        while text:
            match = re.match(r'name:"([^"]*)"\s*|type:(\S+)\s*|size:(\d+)\s*|hash:(\S+)\s*', text)
            if match is None:
                raise SDPValueError(f"bad file-selector {value!r}")
            name, type_, size, hash_ = match.groups()
            key = "name" if name is not None else "type" if type_ else "size" if size else "hash"
            if key in fields:
                raise SDPValueError(f"repeated {key} in file-selector {value!r}")
            if name is not None:
                fields["name"] = _unquote_name(name)
            elif type_:
                fields["type"] = type_
            elif size:
                fields["size"] = int(size)
            else:
                try:
                    _, digest = parse_hash(hash_)
                except ValueError as exc:
                    raise SDPValueError(str(exc)) from None
                fields["hash"] = format_sha1(digest)
            text = text[match.end() :]
        if not fields:
            raise SDPValueError("empty file-selector")
        return cls(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FileRange:
    """``a=file-range:start-stop``: 1-based, inclusive; ``stop`` None for ``*``."""

    start: int = 1
    stop: int | None = None

    def __str__(self) -> str:
        return f"{self.start}-{'*' if self.stop is None else self.stop}"

    @classmethod
    def parse(cls, value: str) -> FileRange:
        match = re.match(r"^\s*(\d+)-(\d+|\*)\s*$", value)
        if match is None:
            raise SDPValueError(f"bad file-range {value!r}")
        start = int(match.group(1))
        stop = None if match.group(2) == "*" else int(match.group(2))
        if start < 1 or (stop is not None and stop < start - 1):
            raise SDPValueError(f"bad file-range {value!r}")
        return cls(start, stop)

    @property
    def offset(self) -> int:
        """0-based offset of the first byte to transfer (what send_file's ``start`` takes)."""
        return self.start - 1


@dataclass(frozen=True)
class FileDate:
    """``a=file-date``: ``creation``/``modification``/``read`` -> RFC 5322 date text."""

    dates: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return " ".join(f'{kind}:"{text}"' for kind, text in self.dates)

    @classmethod
    def parse(cls, value: str) -> FileDate:
        items = re.findall(r'(creation|modification|read):"([^"]*)"', value)
        if not items:
            raise SDPValueError(f"bad file-date {value!r}")
        return cls(tuple(items))


_TOKEN_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+$")
_ID_RE = re.compile(r"^[\x21-\x7e]+$")


def parse_file_transfer_id(value: str) -> str:
    """``a=file-transfer-id`` (a non-empty string without spaces)."""
    value = value.strip()
    if not _ID_RE.match(value):
        raise SDPValueError(f"bad file-transfer-id {value!r}")
    return value


def parse_file_disposition(value: str) -> str:
    """``a=file-disposition`` (a token, e.g. ``render`` or ``attachment``)."""
    value = value.strip()
    if not _TOKEN_RE.match(value):
        raise SDPValueError(f"bad file-disposition {value!r}")
    return value.lower()
