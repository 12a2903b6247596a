"""Value converters between XML text and typed Python values (the XSD simple types we need)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, Self, TypeVar

__all__ = [
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
]

T = TypeVar("T")


class Converter(Generic[T]):
    """Converts between XML text and a typed Python value.

    ``parse`` and ``coerce`` raise ``ValueError`` with a short reason; the field
    wraps it in a ``ValidationError`` that names the offending node.
    """

    description = "value"

    def parse(self, text: str) -> T:
        raise NotImplementedError

    def format(self, value: T) -> str:
        return str(value)

    def coerce(self, value: Any) -> T:
        """Check (and if harmless, convert) a value assigned from Python."""
        if isinstance(value, str):
            return self.parse(value)
        raise ValueError(f"expected {self.description}, got {type(value).__name__}")


class String(Converter[str]):
    """Free text, kept verbatim (whitespace is significant in notes)."""

    description = "a string"

    def parse(self, text: str) -> str:
        return text

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        return value


class Token(Converter[str]):
    """An ``xs:token``: surrounding whitespace dropped, must not be empty."""

    description = "a token"

    def parse(self, text: str) -> str:
        value = " ".join(text.split())
        if not value:
            raise ValueError("must not be empty")
        return value


class Enum(Converter[str]):
    """One of a fixed set of tokens."""

    def __init__(self, *values: str) -> None:
        self.values = tuple(values)
        self.description = "one of " + ", ".join(values)

    def parse(self, text: str) -> str:
        value = text.strip()
        if value not in self.values:
            raise ValueError(f"{value!r} is not {self.description}")
        return value


class Integer(Converter[int]):
    """A bounded integer."""

    description = "an integer"

    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, text: str) -> int:
        text = text.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,20}", text):
            raise ValueError(f"{text!r} is not an integer")
        return self.coerce(int(text))

    def coerce(self, value: Any) -> int:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{value} is smaller than {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{value} is larger than {self.maximum}")
        return value


class Boolean(Converter[bool]):
    """``xs:boolean``."""

    description = "a boolean"

    def parse(self, text: str) -> bool:
        text = text.strip()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise ValueError(f"{text!r} is not a boolean")

    def format(self, value: bool) -> str:
        return "true" if value else "false"

    def coerce(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        return super().coerce(value)


class Priority(Converter[Decimal]):
    """A PIDF contact priority (a qvalue between 0 and 1).

    Decimal keeps the original spelling ("0.80") so documents round-trip.
    """

    description = "a number between 0 and 1"

    def parse(self, text: str) -> Decimal:
        text = text.strip()
        if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{0,6})?|\.[0-9]{1,6}", text):
            raise ValueError(f"{text!r} is not a number between 0 and 1")
        return self.coerce(Decimal(text))

    def coerce(self, value: Any) -> Decimal:
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        try:
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
        if not number.is_finite() or not 0 <= number <= 1:
            raise ValueError(f"{value} is not between 0 and 1")
        return number


class XMLDateTime(datetime):
    """A ``datetime`` that remembers the exact text it was parsed from.

    ``xs:dateTime`` has many spellings of one instant ("Z" vs "+00:00", fraction
    digits); keeping the original lets parsed documents round-trip byte-exactly.
    Arithmetic yields values without the remembered text, which is what we want.
    """

    _xml_text: str | None = None

    # Immutable, so copies may share the instance (and keep the remembered text,
    # which datetime's own pickling protocol would drop).
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict) -> Self:
        return self

    def __reduce_ex__(self, protocol: Any) -> tuple:
        return (_restore_datetime, (self.isoformat(), self._xml_text))


_DATETIME_RE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?P<frac>\.[0-9]+)?(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?"
)


def _restore_datetime(iso: str, text: str | None) -> XMLDateTime:
    parsed = datetime.fromisoformat(iso)
    value = XMLDateTime(
        parsed.year,
        parsed.month,
        parsed.day,
        parsed.hour,
        parsed.minute,
        parsed.second,
        parsed.microsecond,
        parsed.tzinfo,
    )
    value._xml_text = text
    return value


class DateTime(Converter[datetime]):
    """``xs:dateTime`` as a (usually timezone-aware) ``datetime``."""

    description = "a date and time"

    def parse(self, text: str) -> datetime:
        text = text.strip()
        match = _DATETIME_RE.fullmatch(text)
        if not match:
            raise ValueError(f"{text!r} is not an xs:dateTime")
        frac = (match["frac"] or "")[:7]  # Python keeps microseconds only
        tz = match["tz"] or ""
        iso = f"{match['date']}T{match['time']}{frac}{'+00:00' if tz == 'Z' else tz}"
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid date and time") from exc
        return _restore_datetime(parsed.isoformat(), text)

    def format(self, value: datetime) -> str:
        original = getattr(value, "_xml_text", None)
        if original is not None:
            return original
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def coerce(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return value
        return super().coerce(value)


class URI(Converter[str]):
    """An ``xs:anyURI``; we only insist on something non-empty without spaces."""

    description = "a URI"

    def parse(self, text: str) -> str:
        value = text.strip()
        if not value:
            raise ValueError("URI must not be empty")
        if any(ch.isspace() for ch in value):
            raise ValueError(f"{value!r} is not a URI (contains whitespace)")
        return value


class XMLID(URI):
    """An ``xs:ID``.

    Deployed clients send ids such as "0x7f3a..." that are not strict NCNames;
    refusing them would break interop, so only emptiness and spaces are errors.
    """

    description = "an identifier"

    def parse(self, text: str) -> str:
        value = text.strip()
        if not value or any(ch.isspace() for ch in value):
            raise ValueError(f"{text!r} is not a valid identifier")
        return value
