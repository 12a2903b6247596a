"""Invalid, malformed and hostile payloads are refused with clear PayloadError subclasses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sipsimple.payloads import (
    ParserError,
    PayloadError,
    PresenceState,
    UnsupportedContentType,
    ValidationError,
    parse_payload,
    rpid,
)
from sipsimple.payloads.datamodel import Device, Person
from sipsimple.payloads.pidf import Contact, Note, Presence, Status, Tuple
from sipsimple.payloads.watcherinfo import WatcherInfo
from sipsimple.payloads.xmlbinding import parse_xml

PIDF = "urn:ietf:params:xml:ns:pidf"
HEAD = f'<presence xmlns="{PIDF}" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"'


def pidf(body: str, entity: str = ' entity="sip:a@example.com"') -> bytes:
    return f"{HEAD}{entity}>{body}</presence>".encode()


def test_error_hierarchy() -> None:
    assert issubclass(ParserError, PayloadError) and issubclass(ValidationError, PayloadError)
    assert issubclass(UnsupportedContentType, PayloadError)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", ParserError, "empty"),
        (b"   \n", ParserError, "empty"),
        (b"<presence", ParserError, "malformed XML"),
        (b"<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='x'></tuple>", ParserError, "malformed XML"),
        (b"\xff\xfe\x00garbage", ParserError, ""),
        (b'<?xml version="1.0" encoding="bogus-enc"?><a/>', ParserError, ""),
        (
            b'<pidf xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>',
            ValidationError,
            "expected element <presence>",
        ),
        (
            b'<presence xmlns="urn:ietf:params:xml:ns:pidf:wrong" entity="sip:a@b"/>',
            ValidationError,
            "namespace",
        ),
        (b'<presence entity="sip:a@b"/>', ValidationError, "no namespace"),
        (pidf("", entity=""), ValidationError, "missing required attribute 'entity'"),
        (pidf("", entity=' entity="  "'), ValidationError, "attribute 'entity'"),
        (
            pidf("<tuple><status><basic>open</basic></status></tuple>"),
            ValidationError,
            "missing required attribute 'id'",
        ),
        (pidf('<tuple id="t1"/>'), ValidationError, "missing required element <status>"),
        (
            pidf('<tuple id="t1"><status><basic>maybe</basic></status></tuple>'),
            ValidationError,
            "'maybe' is not one of open, closed",
        ),
        (
            pidf('<tuple id="t1"><status><basic>open</basic><basic>open</basic></status></tuple>'),
            ValidationError,
            "only once",
        ),
        (
            pidf('<tuple id="t1"><status/><contact priority="2">sip:x@y</contact></tuple>'),
            ValidationError,
            "between 0 and 1",
        ),
        (
            pidf('<tuple id="t1"><status/><contact priority="abc">sip:x@y</contact></tuple>'),
            ValidationError,
            "priority",
        ),
        (pidf('<tuple id="t1"><status/><contact/></tuple>'), ValidationError, "must not be empty"),
        (
            pidf('<tuple id="t1"><status/><timestamp>yesterday</timestamp></tuple>'),
            ValidationError,
            "xs:dateTime",
        ),
        (
            pidf('<tuple id="t1"><status/><timestamp>2024-02-30T10:00:00Z</timestamp></tuple>'),
            ValidationError,
            "valid date",
        ),
        (pidf('<tuple id="t1"><status/><bogus/></tuple>'), ValidationError, "unexpected element <bogus>"),
        (pidf('<tuple id="t1">text<status/></tuple>'), ValidationError, "unexpected text"),
        (pidf("<dm:person/>"), ValidationError, "missing required attribute 'id'"),
        (pidf('<dm:device id="d"/>'), ValidationError, "deviceID"),
        (
            pidf(
                '<dm:person id="p"><rpid:activities><rpid:unknown/><rpid:away/></rpid:activities></dm:person>'
            ),
            ValidationError,
            "'unknown' cannot be combined",
        ),
        (
            pidf('<dm:person id="p"><rpid:user-input>sleepy</rpid:user-input></dm:person>'),
            ValidationError,
            "active, idle",
        ),
        (
            pidf('<dm:person id="p"><rpid:activities><rpid:away>x</rpid:away></rpid:activities></dm:person>'),
            ValidationError,
            "must be empty",
        ),
        (
            pidf('<dm:person id="p"><rpid:time-offset>99999</rpid:time-offset></dm:person>'),
            ValidationError,
            "larger than",
        ),
        (
            pidf('<dm:person id="p"><rpid:activities from="soon"/></dm:person>'),
            ValidationError,
            "attribute 'from'",
        ),
        (
            pidf('<dm:person id="p"><rpid:sphere><rpid:work/><rpid:home/></rpid:sphere></dm:person>'),
            ValidationError,
            "only one of",
        ),
    ],
)
def test_invalid_pidf(data: bytes, error: type[PayloadError], message: str) -> None:
    with pytest.raises(error) as info:
        Presence.parse(data)
    assert message in str(info.value)


def test_error_messages_name_the_location() -> None:
    with pytest.raises(ValidationError, match=r"^presence/tuple\[2\]: missing required attribute 'id'"):
        Presence.parse(pidf('<tuple id="a"><status/></tuple><tuple><status/></tuple>'))
    with pytest.raises(ValidationError, match=r"^presence/tuple/status/basic: content"):
        Presence.parse(pidf('<tuple id="a"><status><basic>on</basic></status></tuple>'))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" state="full"/>', "'version'"),
        (
            b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="-1" state="full"/>',
            "smaller than 0",
        ),
        (
            b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="some"/>',
            "full, partial",
        ),
        (
            b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">'
            b'<watcher-list package="presence"/></watcherinfo>',
            "'resource'",
        ),
        (
            b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">'
            b'<watcher-list resource="sip:a@b" package="presence">'
            b'<watcher id="1" status="asleep" event="subscribe">sip:c@d</watcher></watcher-list></watcherinfo>',
            "pending, active, waiting, terminated",
        ),
        (
            b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">'
            b'<watcher-list resource="sip:a@b" package="presence">'
            b'<watcher id="1" status="active" event="bored">sip:c@d</watcher></watcher-list></watcherinfo>',
            "subscribe, approved",
        ),
        (
            b'<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">'
            b'<watcher-list resource="sip:a@b" package="presence">'
            b'<watcher id="1" status="active" event="approved"></watcher></watcher-list></watcherinfo>',
            "must not be empty",
        ),
        (pidf(""), "expected element <watcherinfo>"),
    ],
)
def test_invalid_watcherinfo(data: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        WatcherInfo.parse(data)
    assert message in str(info.value)


def test_unsupported_content_type() -> None:
    with pytest.raises(UnsupportedContentType, match="text/html"):
        parse_payload("text/html", b"<html/>")


def test_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>&lol3;</note></presence>'
    )
    with pytest.raises(ParserError, match="DOCTYPE"):
        Presence.parse(bomb)


def test_external_entities_are_not_loaded(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (
        f'<!DOCTYPE presence [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<presence xmlns="{PIDF}" entity="sip:a@b"><note>&x;</note></presence>'
    ).encode()
    with pytest.raises(ParserError) as info:
        Presence.parse(xxe)
    assert "TOP-SECRET" not in str(info.value)


def test_network_dtd_is_not_fetched() -> None:
    data = (
        b'<!DOCTYPE presence SYSTEM "http://127.0.0.1:9/evil.dtd">'
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>'
    )
    with pytest.raises(ParserError, match="DOCTYPE|network"):
        Presence.parse(data)


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(ParserError, match="limit"):
        parse_xml(b"<a>" + b"x" * (2 << 20) + b"</a>")


def test_deep_nesting_is_refused_without_crashing() -> None:
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    with pytest.raises(ParserError):
        parse_xml(deep)


def test_building_invalid_objects_is_refused() -> None:
    with pytest.raises(ValidationError, match="open, closed"):
        Status("maybe")
    with pytest.raises(ValidationError, match="between 0 and 1"):
        Contact("sip:a@b", priority=1.5)
    with pytest.raises(ValidationError, match="expected Status"):
        Tuple(id="t", status="open")
    with pytest.raises(ValidationError, match="not one of"):
        rpid.Activities("partying")
    with pytest.raises(ValidationError, match="expected Note items"):
        Presence("sip:a@b", notes=["plain string"])
    with pytest.raises(TypeError, match="unexpected keyword"):
        Presence("sip:a@b", colour="blue")
    # Missing required parts are detected when building.
    with pytest.raises(ValidationError, match="required attribute 'entity'"):
        Presence().toxml()
    with pytest.raises(ValidationError, match="required attribute 'id'"):
        Presence("sip:a@b", tuples=[Tuple(status=Status("open"))]).toxml()
    with pytest.raises(ValidationError, match="missing required element <status>"):
        Presence("sip:a@b", tuples=[Tuple(id="t")]).toxml()
    with pytest.raises(ValidationError, match="deviceID"):
        Presence("sip:a@b", devices=[Device(id="d")]).toxml()
    with pytest.raises(ValidationError, match="'unknown' cannot be combined"):
        Presence("sip:a@b", persons=[Person(id="p", activities=rpid.Activities("unknown", "away"))]).toxml()
    # Mutating list contents bypasses the setters; building still checks.
    doc = Presence("sip:a@b")
    doc.notes.append("oops")
    with pytest.raises(ValidationError):
        doc.toxml()


def test_presence_state_validation() -> None:
    with pytest.raises(ValidationError, match="'open' or 'closed'"):
        PresenceState("away")
    with pytest.raises(ValidationError, match="activity"):
        PresenceState(activity="  ")
    with pytest.raises(ValidationError):
        PresenceState(note=42)  # type: ignore[arg-type]


def test_lenient_where_deployments_need_it() -> None:
    # Ids that are not strict NCNames and draft-era activity tokens are accepted and kept.
    doc = Presence.parse(
        pidf(
            '<tuple id="0123"><status><basic>open</basic></status></tuple>'
            '<dm:person id="p"><rpid:activities><rpid:available/></rpid:activities></dm:person>'
        )
    )
    assert doc.tuples[0].id == "0123"
    assert doc.persons[0].activities.values == [] and len(doc.persons[0].activities.extensions) == 1
    assert b"<rpid:available/>" in doc.toxml()
    # Comments and processing instructions are ignored.
    doc = Presence.parse(
        b'<?pi x?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><!-- hi --></presence>'
    )
    assert doc == Presence("sip:a@b")


def test_note_whitespace_and_empty_notes_are_kept() -> None:
    doc = Presence.parse(pidf('<note xml:lang="en">  spaced  out </note><note/>'))
    assert [n.text for n in doc.notes] == ["  spaced  out ", ""]
    assert Presence.parse(doc.toxml()) == doc
    assert Note("x") != Note("x", lang="en")


def test_datetime_spellings_round_trip() -> None:
    for text in [
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00.000+00:00",
        "2024-05-01T12:00:00.1234567+02:00",
        "2024-05-01T10:00:00",
    ]:
        doc = Presence.parse(pidf(f'<tuple id="t"><status/><timestamp>{text}</timestamp></tuple>'))
        assert f"<timestamp>{text}</timestamp>".encode() in doc.toxml()
    doc.tuples[0].timestamp = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert b"<timestamp>2024-05-01T10:00:00Z</timestamp>" in doc.toxml()
