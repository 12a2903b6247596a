"""Message summary bodies (RFC 3842): build and parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipsimple.payloads import MessageCount, MessageSummary, ParserError, ValidationError, parse_payload

DATA = Path(__file__).parent / "data" / "payloads"


@pytest.mark.parametrize("name", ["message_summary.txt", "message_summary_asterisk.txt"])
def test_samples_round_trip_byte_exactly(name: str) -> None:
    data = (DATA / name).read_bytes()
    summary = parse_payload("application/simple-message-summary", data)
    assert summary.encode() == data
    assert MessageSummary.parse(summary.encode()) == summary


def test_sample_content() -> None:
    summary = MessageSummary.parse((DATA / "message_summary.txt").read_bytes())
    assert summary.messages_waiting is True
    assert summary.account == "sip:alice@vmail.example.com"
    assert summary.voice == MessageCount(2, 8, 0, 2)
    assert summary.summaries["Fax-Message"] == MessageCount(1, 0)
    assert summary.message_headers.splitlines()[2] == "Subject: Lunch"
    asterisk = MessageSummary.parse((DATA / "message_summary_asterisk.txt").read_bytes())
    assert asterisk.messages_waiting is False and asterisk.voice == MessageCount(0, 0, 0, 0)


def test_build() -> None:
    summary = MessageSummary(
        True,
        "sip:bob@example.com",
        {"Voice-Message": MessageCount(2, 8, 0, 2), "text-message": MessageCount(1, 3)},
    )
    assert summary.encode() == (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:bob@example.com\r\n"
        b"Voice-Message: 2/8 (0/2)\r\nText-Message: 1/3\r\n"
    )
    assert MessageSummary(False).encode() == b"Messages-Waiting: no\r\n"


def test_lenient_spelling() -> None:
    summary = MessageSummary.parse(
        b"messages-waiting:YES\nmessage-account:  sip:a@b  \nvoice-message:3/4(1/0)\nX-Custom: 42\n"
    )
    assert summary.messages_waiting and summary.account == "sip:a@b"
    assert summary.voice == MessageCount(3, 4, 1, 0)
    assert summary.extra_headers == [("X-Custom", "42")]
    assert MessageSummary.parse(summary.encode()) == summary


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"", ParserError, "empty"),
        (b"\xff\xfe", ParserError, "UTF-8"),
        (b"Voice-Message: 1/2\r\n", ValidationError, "start with a Messages-Waiting"),
        (b"Messages-Waiting: maybe\r\n", ValidationError, "yes or no"),
        (b"Messages-Waiting: yes\r\nMessages-Waiting: no\r\n", ValidationError, "more than once"),
        (b"Messages-Waiting: yes\r\nVoice-Message: lots\r\n", ValidationError, "counts must look like"),
        (b"Messages-Waiting: yes\r\nVoice-Message: 1/2 (3)\r\n", ValidationError, "counts must look like"),
        (b"Messages-Waiting: yes\r\nthis is not a header\r\n", ParserError, "line 2"),
        (b"Messages-Waiting: yes\r\nMessage-Account: sip:a b\r\n", ValidationError, "not a URI"),
    ],
)
def test_invalid(body: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        MessageSummary.parse(body)


def test_invalid_values_are_refused_when_building() -> None:
    with pytest.raises(ValidationError):
        MessageCount(-1, 0)
    with pytest.raises(ValidationError, match="together"):
        MessageCount(1, 0, new_urgent=1)
    with pytest.raises(ValidationError, match="message context class"):
        MessageSummary(True, summaries={"Smoke-Signal": MessageCount()}).encode()
    with pytest.raises(ValidationError, match="extra header"):
        MessageSummary(True, extra_headers=[("X", "a\r\nInjected: 1")]).encode()
