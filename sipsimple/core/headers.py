"""Name-address headers: From, To and Contact, with display names and parameters."""

from __future__ import annotations

from sipsimple.core.uri import SIPURI

__all__ = ["NameAddressHeader", "FromHeader", "ToHeader", "ContactHeader", "split_header_list"]


def _unquote_display(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        out, escaped = [], False
        for ch in text[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return text


def _quote_display(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header value, keeping commas inside quotes and <>."""
    items, start, quoted, angle, escaped = [], 0, False, False, False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch == "," and not quoted and not angle:
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [item for item in items if item]


def _parse_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in split_params(text):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not name:
            continue
        value = value.strip()
        if sep and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        params[name] = value if sep else None
    return params


def split_params(text: str) -> list[str]:
    out, start, quoted = [], 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [item for item in out if item.strip()]


class NameAddressHeader:
    """``"Display Name" <uri>;param=value``: the shape of From, To and Contact."""

    name = "Header"
    __slots__ = ("uri", "display_name", "parameters")

    def __init__(self, uri: SIPURI, display_name: str | None = None,
                 parameters: dict[str, str | None] | None = None) -> None:
        if not isinstance(uri, SIPURI):
            raise TypeError(f"{type(self).__name__} needs a SIPURI, not {type(uri).__name__}")
        if display_name is not None and any(ch in display_name for ch in "\r\n\0"):
            raise ValueError("a display name cannot hold CR, LF or NUL")
        self.uri = uri
        self.display_name = display_name
        self.parameters = dict(parameters or {})

    @classmethod
    def parse(cls, text: str | bytes):
        """Parse a header value (without the header name)."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        text = text.strip()
        display: str | None = None
        if "<" in text:
            lt = _find_unquoted(text, "<")
            gt = text.find(">", lt)
            if lt < 0 or gt < 0:
                raise ValueError(f"invalid {cls.name} header: {text!r}")
            display = _unquote_display(text[:lt]) or None
            uri = SIPURI.parse(text[lt + 1:gt])
            rest = text[gt + 1:].strip()
        else:
            uri_text, _, rest = text.partition(";")
            uri = SIPURI.parse(uri_text)
            rest = ";" + rest if rest else ""
        if rest and not rest.startswith(";"):
            raise ValueError(f"invalid {cls.name} header: {text!r}")
        return cls(uri, display, _parse_params(rest[1:]) if rest else None)

    def __str__(self) -> str:
        out = f"{_quote_display(self.display_name)} <{self.uri}>" if self.display_name else f"<{self.uri}>"
        for name, value in self.parameters.items():
            out += f";{name}" if value is None else f";{name}={value}"
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.uri, self.display_name, self.parameters) == (other.uri, other.display_name, other.parameters)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]


def _find_unquoted(text: str, char: str) -> int:
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            return i
    return -1


class _TaggedHeader(NameAddressHeader):
    __slots__ = ()

    @property
    def tag(self) -> str | None:
        return self.parameters.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.parameters.pop("tag", None)
        else:
            self.parameters["tag"] = value


class FromHeader(_TaggedHeader):
    """The From header of a request: who sends it."""

    name = "From"
    __slots__ = ()


class ToHeader(_TaggedHeader):
    """The To header of a request: who it is for."""

    name = "To"
    __slots__ = ()


class ContactHeader(NameAddressHeader):
    """A Contact header: where a party can be reached, with expires and q."""

    name = "Contact"
    __slots__ = ()

    @property
    def expires(self) -> int | None:
        value = self.parameters.get("expires")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def q(self) -> float | None:
        value = self.parameters.get("q")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None
