"""Round-trip and content tests for the presence payloads over shipped sample documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from sipsimple.payloads import PresenceState, parse_payload, rpid, supported_content_types
from sipsimple.payloads.caps import ServCaps
from sipsimple.payloads.datamodel import Device, DMNote, Person
from sipsimple.payloads.pidf import Contact, Note, Presence, Status, Tuple
from sipsimple.payloads.watcherinfo import Watcher, WatcherInfo, WatcherList

DATA = Path(__file__).parent / "data" / "payloads"
PIDF_SAMPLES = sorted(p.name for p in DATA.glob("pidf_*.xml"))
WINFO_SAMPLES = sorted(p.name for p in DATA.glob("watcherinfo_*.xml"))
XML_SAMPLES = [(name, "application/pidf+xml") for name in PIDF_SAMPLES] + [
    (name, "application/watcherinfo+xml") for name in WINFO_SAMPLES
]


def c14n(data: bytes) -> bytes:
    """Canonical XML, ignoring indentation-only text between elements."""
    root = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    return etree.tostring(root, method="c14n", with_comments=False)


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_samples_present() -> None:
    assert len(PIDF_SAMPLES) >= 5 and len(WINFO_SAMPLES) == 2
    assert sorted(supported_content_types()) == [
        "application/pidf+xml",
        "application/simple-message-summary",
        "application/watcherinfo+xml",
    ]


@pytest.mark.parametrize(("name", "content_type"), XML_SAMPLES)
def test_xml_round_trip_is_canonically_identical(name: str, content_type: str) -> None:
    data = load(name)
    doc = parse_payload(content_type, data)
    out = doc.toxml()
    assert c14n(out) == c14n(data)
    again = type(doc).parse(out)
    assert again == doc
    assert c14n(again.toxml()) == c14n(data)


@pytest.mark.parametrize(("name", "content_type"), XML_SAMPLES)
def test_pretty_printed_output_parses_equal(name: str, content_type: str) -> None:
    doc = parse_payload(content_type, load(name))
    assert type(doc).parse(doc.toxml(pretty_print=True)) == doc


def test_content_type_parameters_and_case_are_ignored() -> None:
    doc = parse_payload("Application/PIDF+XML; charset=UTF-8", load("pidf_kamailio_basic.xml"))
    assert isinstance(doc, Presence)


def test_kamailio_basic() -> None:
    doc = Presence.parse(load("pidf_kamailio_basic.xml"))
    assert doc.entity == "sip:alice@example.com"
    (service,) = doc.tuples
    assert service.id == "0x7f3a2c1b9e40"
    assert service.status.basic == "open"
    assert service.contact.uri == "sip:alice@192.0.2.10:5060;transport=udp"
    assert service.contact.priority == Decimal("0.8")
    assert [n.text for n in service.notes] == ["Online"]
    assert doc.tuple("0x7f3a2c1b9e40") is service and doc.tuple("nope") is None


def test_rpid_person() -> None:
    doc = Presence.parse(load("pidf_rpid_person.xml"))
    service = doc.tuples[0]
    assert service.user_input.value == "active"
    assert service.user_input.idle_threshold == 600
    assert service.user_input.last_input == datetime(2005, 5, 30, 22, 0, 29, tzinfo=UTC)
    assert [(n.lang, n.text) for n in service.notes][1] == ("fr", "Ne dérangez pas, s'il vous plaît")
    assert service.timestamp == datetime(2005, 5, 30, 20, 2, 44, tzinfo=UTC)
    person = doc.person("p1")
    acts = person.activities
    assert acts.values == ["away", "meeting"]
    assert [n.text for n in acts.notes] == ["Far away"]
    assert acts.from_ == datetime(2005, 5, 30, 12, 0, tzinfo=timezone(timedelta(hours=5)))
    assert acts.until.hour == 17
    assert person.rpid_class.value == "personal"
    assert person.mood.values == ["happy"] and person.mood.other[0].text == "ecstatic"
    assert person.mood.texts == ["happy", "ecstatic"]
    assert person.place_type.types == ["office"]
    assert (person.privacy.audio, person.privacy.text, person.privacy.video) == (False, True, True)
    assert person.sphere.value == "work"
    assert person.status_icon.uri == "http://example.com/mail.png"
    assert person.time_offset.minutes == -240 and person.time_offset.description == "Eastern Time"
    # The CIPID element is not modelled: it must survive as an extension.
    (homepage,) = person.find_extensions("{urn:ietf:params:xml:ns:pidf:cipid}homepage")
    assert homepage.text == "http://example.com/~someone"
    assert person.notes[0].text == "In a meeting until five"
    assert person.timestamp.microsecond == 125000


def test_datamodel_with_caps() -> None:
    doc = Presence.parse(load("pidf_datamodel.xml"))
    softphone, pstn = doc.tuples
    assert softphone.device_id == doc.devices[0].device_id
    caps = softphone.servcaps
    assert (caps.audio, caps.video, caps.message, caps.text) == (True, False, True, None)
    assert caps.methods.supported.names == ["INVITE", "MESSAGE", "OPTIONS"]
    assert len(caps.extensions) == 1  # <caps:duplex> is kept, not refused
    assert softphone.contact.priority == Decimal("1.0")
    assert pstn.status.basic == "closed" and pstn.contact.uri == "tel:+15551234567"
    assert pstn.relationship.values == ["self"] and pstn.service_class.values == ["electronic"]
    person = doc.persons[0]
    assert person.activities.values == ["on-the-phone"] and person.user_input.value == "idle"
    device = doc.devices[0]
    assert device.devcaps.mobility.supported.names == ["mobile"]
    assert device.notes[0].text == "Laptop"


def test_multi_tuple_with_prefixed_pidf_and_status_extensions() -> None:
    doc = Presence.parse(load("pidf_multi_tuple.xml"))
    assert [t.id for t in doc.tuples] == ["sg89ae", "cg231jcr", "r1230d"]
    assert [t.status.basic for t in doc.tuples] == ["open", "open", "closed"]
    im = doc.tuples[0].status.find_extensions("{urn:ietf:params:xml:ns:pidf:im}im")
    assert im[0].text == "busy"
    assert len(doc.tuples[0].extensions) == 1
    assert [(n.lang, n.text) for n in doc.notes][0] == ("en", "Don't Disturb Please!")
    # The original prefixes are kept on output.
    assert doc.toxml().count(b"<impp:tuple") == 3


def test_softphone_out_of_schema_order_is_preserved() -> None:
    data = load("pidf_softphone.xml")
    doc = Presence.parse(data)
    person = doc.persons[0]
    assert person.activities.texts == ["Working from the garden"]
    assert len(person.extensions) == 1
    out = doc.toxml()
    assert out.index(b"<dm:note>") < out.index(b"<c:display-name>")
    assert c14n(out) == c14n(data)


def test_edit_after_parse_keeps_layout_and_places_new_content_by_schema() -> None:
    doc = Presence.parse(load("pidf_kamailio_basic.xml"))
    service = doc.tuples[0]
    service.notes.append(Note("Second", lang="de"))
    service.timestamp = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    service.status.basic = "closed"
    doc.persons.append(Person(id="p9", activities=rpid.Activities("busy")))
    root = etree.fromstring(doc.toxml())
    pidf = "{urn:ietf:params:xml:ns:pidf}"
    assert [c.tag for c in root[0]] == [
        pidf + "status",
        pidf + "contact",
        pidf + "note",
        pidf + "note",
        pidf + "timestamp",
    ]
    assert root[0][4].text == "2024-01-02T03:04:05Z"
    assert root[1].tag == "{urn:ietf:params:xml:ns:pidf:data-model}person"
    again = Presence.parse(doc.toxml())
    assert again == doc and again.tuples[0].status.basic == "closed"


def test_build_from_scratch() -> None:
    doc = Presence(
        "sip:dave@example.com",
        tuples=[
            Tuple(
                id="t1",
                status=Status("open"),
                user_input=rpid.UserInput(value="idle", last_input=datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
                servcaps=ServCaps(audio=True, video=False),
                contact=Contact("sip:dave@192.0.2.5", priority=0.5),
                notes=[Note("Hi", lang="en")],
            )
        ],
        persons=[
            Person(
                id="p1",
                activities=rpid.Activities("meal", "away"),
                mood=rpid.Mood("hungry"),
                sphere=rpid.Sphere(text="bowling league"),
                place_type=rpid.PlaceType("restaurant"),
                notes=[DMNote("Lunch")],
            )
        ],
        devices=[Device(id="d1", device_id="urn:uuid:00000000-0000-0000-0000-000000000001")],
    )
    xml = doc.toxml()
    root = etree.fromstring(xml)
    assert root.nsmap == {
        None: "urn:ietf:params:xml:ns:pidf",
        "caps": "urn:ietf:params:xml:ns:pidf:caps",
        "dm": "urn:ietf:params:xml:ns:pidf:data-model",
        "lt": "urn:ietf:params:xml:ns:location-type",
        "rpid": "urn:ietf:params:xml:ns:pidf:rpid",
    }
    assert b'last-input="2024-05-01T10:00:00Z"' in xml and b'priority="0.5"' in xml
    assert b"<caps:audio>true</caps:audio>" in xml
    assert Presence.parse(xml) == doc
    assert xml == doc.toxml()  # deterministic


def test_watcherinfo_content() -> None:
    doc = WatcherInfo.parse(load("watcherinfo_full.xml"))
    assert (doc.version, doc.state) == (0, "full")
    wl = doc.watcher_list("sip:professor@example.net", "presence")
    assert [(w.id, w.status, w.event) for w in wl.watchers] == [
        ("8ajksjda7s", "active", "approved"),
        ("hh8juja87s997-ass7", "pending", "subscribe"),
        ("q7bq2s", "terminated", "timeout"),
    ]
    assert wl.watchers[0].duration_subscribed == 509 and wl.watchers[0].uri == "sip:userA@example.net"
    assert wl.watcher("hh8juja87s997-ass7").display_name == "Mr. Subscriber"
    assert [w.uri for _, w in doc.watchers("pending")] == ["sip:userB@example.org"]


def test_watcherinfo_build() -> None:
    doc = WatcherInfo(
        version=3,
        state="full",
        watcher_lists=[
            WatcherList(
                resource="sip:me@example.com",
                package="presence",
                watchers=[Watcher("sip:you@example.com", id="w1", status="pending", event="subscribe")],
            )
        ],
    )
    xml = doc.toxml()
    assert xml.startswith(b"<?xml") and b'xmlns="urn:ietf:params:xml:ns:watcherinfo"' in xml
    assert WatcherInfo.parse(xml) == doc


def test_presence_state_round_trip() -> None:
    for state in [
        PresenceState(),
        PresenceState("closed"),
        PresenceState("open", note="At lunch", activity="meal"),
        PresenceState("open", note="Über-busy ✓", activity="on-the-phone"),
        PresenceState("closed", activity="gaming with friends"),
    ]:
        doc = state.to_pidf("sip:alice@example.com", contact="sip:alice@192.0.2.1")
        assert PresenceState.from_pidf(doc.toxml()) == state
        assert PresenceState.from_pidf(doc) == state


def test_presence_state_ids_are_stable_and_overridable() -> None:
    a = PresenceState().to_pidf("sip:alice@example.com")
    b = PresenceState("closed").to_pidf("sip:alice@example.com")
    assert a.tuples[0].id == b.tuples[0].id
    c = PresenceState(activity="away").to_pidf("sip:x@example.com", tuple_id="tx", person_id="px")
    assert (c.tuples[0].id, c.persons[0].id) == ("tx", "px")


def test_presence_state_from_real_documents() -> None:
    assert PresenceState.from_pidf(load("pidf_kamailio_basic.xml")) == PresenceState("open", "Online")
    assert PresenceState.from_pidf(load("pidf_rpid_person.xml")) == PresenceState(
        "open", "In a meeting until five", "away"
    )
    assert PresenceState.from_pidf(load("pidf_datamodel.xml")) == PresenceState(
        "open", "On a call, back soon", "on-the-phone"
    )
    assert PresenceState.from_pidf(load("pidf_multi_tuple.xml")) == PresenceState("open", "Vacation!")
    assert PresenceState.from_pidf(load("pidf_softphone.xml")) == PresenceState(
        "open", "Available", "Working from the garden"
    )
    assert PresenceState.from_pidf(b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>') == (
        PresenceState("closed")
    )
