"""Fuzzing: hostile input only ever raises PayloadError subclasses, and whatever parses round-trips."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from sipsimple.payloads import PayloadError, parse_payload

DATA = Path(__file__).parent / "data" / "payloads"
SAMPLES = []
for path in sorted(DATA.iterdir()):
    if path.suffix == ".txt":
        ctype = "application/simple-message-summary"
    elif path.name.startswith("watcherinfo"):
        ctype = "application/watcherinfo+xml"
    else:
        ctype = "application/pidf+xml"
    SAMPLES.append((ctype, path.read_bytes()))
XML_SAMPLES = [s for s in SAMPLES if s[0] != "application/simple-message-summary"]
ALL_TYPES = sorted({c for c, _ in SAMPLES})

# PAYLOAD_FUZZ_EXAMPLES=20000 for a longer run; the default keeps the suite fast.
FUZZ = settings(
    max_examples=int(os.environ.get("PAYLOAD_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text that lxml accepts in element content and attribute values.
xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n "),
    max_size=20,
)
interesting = st.sampled_from(
    [
        "", " ", "open", "closed", "active", "idle", "full", "partial", "pending", "approved", "0", "-1",
        "1.0", "0.5", "2", "1e3", "NaN", "99999999999999999999999", "2024-01-01T00:00:00Z",
        "2024-13-40T99:99:99Z", "sip:a@b", "a b", "unknown", "away", "yes", "no", "3/4 (1/2)",
    ]
)  # fmt: skip
value = interesting | xml_text


def check(content_type: str, body: bytes) -> None:
    """Parsing may fail only with PayloadError; a parsed document must round-trip."""
    try:
        doc = parse_payload(content_type, body)
    except PayloadError:
        return
    if content_type == "application/simple-message-summary":
        out = doc.encode()
    else:
        out = doc.toxml()
    again = parse_payload(content_type, out)
    assert again == doc
    rebuilt = again.encode() if content_type == "application/simple-message-summary" else again.toxml()
    assert rebuilt == out


@FUZZ
@given(st.sampled_from(ALL_TYPES), st.binary(max_size=400))
def test_random_bytes(content_type: str, body: bytes) -> None:
    check(content_type, body)


@FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_byte_mutations(sample: tuple[str, bytes], data: st.DataObject) -> None:
    content_type, body = sample
    buf = bytearray(body)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
        pos = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = data.draw(
                st.sampled_from([b"<", b">", b"/", b'"', b"&", b"&amp;", b"<x/>", b"\x00", b"\xc3"])
            )
        elif op == "delete":
            del buf[pos : pos + data.draw(st.integers(1, 30))]
        else:
            start = data.draw(st.integers(0, max(len(body) - 1, 0)))
            buf[pos:pos] = body[start : start + data.draw(st.integers(1, 60))]
    check(content_type, bytes(buf))


@FUZZ
@given(st.sampled_from(XML_SAMPLES), st.data())
def test_structural_mutations(sample: tuple[str, bytes], data: st.DataObject) -> None:
    content_type, body = sample
    root = etree.fromstring(body)
    for _ in range(data.draw(st.integers(1, 3))):
        elements = list(root.iter())
        el = data.draw(st.sampled_from(elements))
        op = data.draw(
            st.sampled_from(["text", "attr", "drop-attr", "delete", "duplicate", "rename", "move", "child"])
        )
        if op == "text":
            el.text = data.draw(value)
        elif op == "attr":
            name = data.draw(st.sampled_from(["id", "entity", "priority", "version", "state", "status", "event",
                                               "from", "until", "last-input", "idle-threshold", "expiration",
                                               "{http://www.w3.org/XML/1998/namespace}lang", "bogus"]))  # fmt: skip
            el.set(name, data.draw(value))
        elif op == "drop-attr" and el.attrib:
            del el.attrib[data.draw(st.sampled_from(sorted(el.attrib)))]
        elif op == "delete" and el.getparent() is not None:
            el.getparent().remove(el)
        elif op == "duplicate" and el.getparent() is not None:
            el.addnext(etree.fromstring(etree.tostring(el)))
        elif op == "rename":
            ns = data.draw(st.sampled_from([
                "urn:ietf:params:xml:ns:pidf", "urn:ietf:params:xml:ns:pidf:rpid",
                "urn:ietf:params:xml:ns:pidf:data-model", "urn:ietf:params:xml:ns:watcherinfo", "urn:other",
            ]))  # fmt: skip
            local = data.draw(st.sampled_from(["tuple", "status", "basic", "note", "person", "device", "deviceID",
                                                "activities", "away", "other", "sphere", "watcher", "contact",
                                                "timestamp", "user-input", "x"]))  # fmt: skip
            el.tag = f"{{{ns}}}{local}"
        elif op == "move" and el.getparent() is not None:
            target = data.draw(st.sampled_from(elements))
            if el not in list(target.iterancestors()) and target is not el:
                target.append(el)
        elif op == "child":
            etree.SubElement(
                el, data.draw(st.sampled_from(["{urn:ietf:params:xml:ns:pidf}note", "{urn:x}y", "plain"]))
            )
    check(content_type, etree.tostring(root))
