"""Subscription, Publication and IncomingSubscription against Kamailio's presence server and raw peers."""

from __future__ import annotations

import inspect
import itertools
import re
import socket
import uuid

import pytest

from sipsimple.core import SIPURI, Credentials, Engine, FromHeader, Route, ToHeader
from sipsimple.core.incoming_subscription import IncomingSubscription
from sipsimple.core.publication import Publication
from sipsimple.core.subscription import Subscription, parse_subscription_state
from sipsimple.payloads import PresenceState, parse_payload

PIDF = "application/pidf+xml"


def _route(kamailio, transport: str) -> Route:
    return Route(kamailio.host, kamailio.tls_port if transport == "tls" else kamailio.port, transport)


def _state(notification) -> PresenceState | None:
    data = notification.data
    if data.content_type != PIDF or not data.body:
        return None
    return PresenceState.from_pidf(parse_payload(data.content_type, data.body))


def _has(note: str | None = None, status: str | None = None):
    def check(notification) -> bool:
        state = _state(notification)
        return state is not None and (note is None or state.note == note) and \
            (status is None or state.status == status)
    return check


@pytest.fixture
def tls_engine(kamailio):
    """An Engine that checks Kamailio's certificate against its CA."""
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp", "tcp", "tls"), tls_ca_file=str(kamailio.ca_file))
    try:
        yield engine
    finally:
        engine.stop()


def test_parse_subscription_state():
    assert parse_subscription_state("active;expires=20") == ("active", None, 20)
    assert parse_subscription_state("Terminated; reason=NoResource") == ("terminated", "noresource", None)
    assert parse_subscription_state("pending;expires=5;retry-after=3") == ("pending", None, 5)
    assert parse_subscription_state(None) == (None, None, None)


def test_arguments_are_checked():
    uri = SIPURI("example.com", user="bob")
    with pytest.raises(ValueError):
        Subscription(uri, uri, event="presence\r\nX: y")
    with pytest.raises(ValueError):
        Subscription(uri, uri, accept=("text",))
    with pytest.raises(ValueError):
        Subscription(uri, uri, duration=0)
    with pytest.raises(ValueError):
        Subscription(uri, uri, extra_headers={"X-A": "b\r\nInjected: 1"})
    with pytest.raises(ValueError):
        Publication(uri, content_type="pidf")
    with pytest.raises(TypeError):
        Publication(uri, credentials=("bob", "pw"))


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_publish_change_remove_seen_by_subscriber(kamailio, tls_engine, recorder, transport, request):
    if transport == "tls" and '"server_address"' in (kamailio.run_dir / "kamailio.cfg").read_text():
        # presence's server_address puts Kamailio's UDP port into the Contact of a TLS dialog, so the
        # in-dialog unSUBSCRIBE goes to a port without TLS (fixed by leaving server_address out)
        request.applymarker(pytest.mark.xfail(reason="Kamailio test config: presence server_address", strict=True))
    route = _route(kamailio, transport)
    alice_uri = SIPURI(kamailio.domain, user="alice")
    tag = uuid.uuid4().hex[:8]
    subscription = Subscription(FromHeader(SIPURI(kamailio.domain, user="bob"), "Bob"), ToHeader(alice_uri),
                                credentials=Credentials("bob", "bobpw"), route=route, duration=300)
    subscription.subscribe()
    ok = recorder.wait("SCSubscriptionDidSucceed", sender=subscription)
    assert ok.data.code == 200 and ok.data.expires == 300 and ok.data.refreshed is False
    first = recorder.wait("SCSubscriptionGotNotify", sender=subscription)
    assert first.data.subscription_state == "active" and first.data.event == "presence"
    assert subscription.state == "active"

    publication = Publication(alice_uri, credentials=Credentials("alice", "alicepw"), route=route, duration=300)
    publication.publish(PresenceState("open", note=f"online {tag}").toxml(str(alice_uri)))
    published = recorder.wait("SCPublicationDidSucceed", sender=publication)
    assert published.data.code == 200 and published.data.expires == 300 and published.data.etag
    seen = recorder.wait("SCSubscriptionGotNotify", sender=subscription, predicate=_has(f"online {tag}", "open"))
    assert seen.data.content_type == PIDF and seen.data.message.header("event") == "presence"

    # a modification goes with SIP-If-Match: the compositor hands out a new entity tag
    publication.publish(PresenceState("open", note=f"at lunch {tag}", activity="meal").toxml(str(alice_uri)))
    modified = recorder.wait("SCPublicationDidSucceed", sender=publication, count=2)
    assert modified.data.etag != published.data.etag and modified.data.refreshed is False
    changed = recorder.wait("SCSubscriptionGotNotify", sender=subscription, predicate=_has(f"at lunch {tag}"))
    assert _state(changed).activity == "meal"

    publication.end()
    recorder.wait("SCPublicationWillEnd", sender=publication)
    assert recorder.wait("SCPublicationDidEnd", sender=publication).data.code == 200
    assert publication.state == "idle"
    gone = recorder.wait("SCSubscriptionGotNotify", sender=subscription, predicate=lambda n: n.data.body and (
        _state(n) is None or _state(n).status == "closed"))
    assert f"lunch {tag}" not in gone.data.body.decode()

    subscription.end()
    recorder.wait("SCSubscriptionWillEnd", sender=subscription)
    ended = recorder.wait("SCSubscriptionDidEnd", sender=subscription)
    assert ended.data.originator == "local" and ended.data.code == 200
    assert subscription.state == "terminated"
    final = recorder.of("SCSubscriptionGotNotify", sender=subscription)[-1]
    assert final.data.subscription_state == "terminated"


@pytest.mark.parametrize("who", ["subscription", "publication"])
def test_wrong_credentials_fail_with_the_code(kamailio, engine, recorder, who):
    route = _route(kamailio, "udp")
    bob = SIPURI(kamailio.domain, user="bob")
    if who == "subscription":
        primitive = Subscription(bob, SIPURI(kamailio.domain, user="alice"), credentials=Credentials("bob", "nope"),
                                 route=route)
        primitive.subscribe()
        failed = recorder.wait("SCSubscriptionDidFail", sender=primitive)
        assert primitive.state == "terminated"
    else:
        primitive = Publication(bob, credentials=Credentials("bob", "nope"), route=route)
        primitive.publish(PresenceState("open").toxml(str(bob)))
        failed = recorder.wait("SCPublicationDidFail", sender=primitive)
        assert primitive.state == "idle"
    assert failed.data.code in (401, 407)
    assert not recorder.of("SCSubscriptionDidSucceed") and not recorder.of("SCPublicationDidSucceed")


def test_sofia_refreshes_subscription_and_publication(kamailio, engine, recorder):
    # one after the other: Kamailio's SQLite presence table answers concurrent writers "database is locked"
    route = _route(kamailio, "udp")
    carol = SIPURI(kamailio.domain, user="carol")
    publication = Publication(carol, credentials=Credentials("carol", "carolpw"), route=route, duration=6)
    publication.publish(PresenceState("open", note="refresh me").toxml(str(carol)))
    first_etag = recorder.wait("SCPublicationDidSucceed", sender=publication).data.etag
    refreshed = recorder.wait("SCPublicationDidSucceed", sender=publication, count=2, timeout=12)
    assert refreshed.data.refreshed is True and refreshed.data.etag != first_etag
    subscription = Subscription(SIPURI(kamailio.domain, user="alice"), carol,
                                credentials=Credentials("alice", "alicepw"), route=route, duration=8)
    subscription.subscribe()
    recorder.wait("SCSubscriptionGotNotify", sender=subscription, predicate=_has("refresh me"))
    again = recorder.wait("SCSubscriptionDidSucceed", sender=subscription, count=2, timeout=12)
    assert again.data.refreshed is True and again.data.expires == 8
    assert subscription.state == "active" and publication.state == "published"
    assert not recorder.of("SCPublicationDidFail") and not recorder.of("SCSubscriptionDidEnd")
    subscription.end()
    recorder.wait("SCSubscriptionDidEnd", sender=subscription)
    publication.end()
    recorder.wait("SCPublicationDidEnd", sender=publication)


# ------------------------------------------------------- a raw notifier

class RawNotifier:
    """Just enough of a notifier on a UDP socket to answer SUBSCRIBE as a test needs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.tag = uuid.uuid4().hex[:10]
        self.cseq = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def receive(self, method: str) -> tuple[str, dict[str, str], tuple[str, int]]:
        """The next request ``method`` (answers to our NOTIFYs are skipped)."""
        while True:
            data, addr = self.sock.recvfrom(65535)
            text = data.decode()
            if text.startswith(method + " "):
                head = text.split("\r\n\r\n", 1)[0].split("\r\n")
                headers = {}
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    headers.setdefault(name.strip().lower(), value.strip())
                return text, headers, addr

    def reply(self, request: tuple, code: int, reason: str, extra: str = "") -> None:
        text, headers, addr = request
        keep = [line for line in text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
                if line.split(":", 1)[0].strip().lower() in ("via", "from", "call-id", "cseq")]
        to = headers["to"] + ("" if ";tag=" in headers["to"] else f";tag={self.tag}")
        response = (f"SIP/2.0 {code} {reason}\r\n" + "\r\n".join(keep) + f"\r\nTo: {to}\r\n"
                    f"Contact: <sip:notifier@127.0.0.1:{self.port}>\r\n{extra}Content-Length: 0\r\n\r\n")
        self.sock.sendto(response.encode(), addr)

    def notify(self, subscribe: tuple, state: str, body: bytes = b"", content_type: str | None = None) -> None:
        _, headers, addr = subscribe
        target = re.search(r"<([^>]+)>", headers["contact"]).group(1)
        message = (f"NOTIFY {target} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                   f"From: {headers['to']};tag={self.tag}\r\nTo: {headers['from']}\r\n"
                   f"Call-ID: {headers['call-id']}\r\nCSeq: {next(self.cseq)} NOTIFY\r\n"
                   f"Contact: <sip:notifier@127.0.0.1:{self.port}>\r\nMax-Forwards: 70\r\n"
                   f"Event: presence\r\nSubscription-State: {state}\r\n"
                   + (f"Content-Type: {content_type}\r\n" if content_type else "")
                   + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.sock.sendto(message, addr)


@pytest.fixture
def notifier():
    peer = RawNotifier()
    try:
        yield peer
    finally:
        peer.close()


def _raw_subscription(notifier: RawNotifier, **kwargs) -> Subscription:
    return Subscription(SIPURI("127.0.0.1", user="bob"), SIPURI("127.0.0.1", user="alice", port=notifier.port),
                        **kwargs)


def test_terminated_notify_ends_with_its_reason(engine, recorder, notifier):
    subscription = _raw_subscription(notifier)
    subscription.subscribe()
    request = notifier.receive("SUBSCRIBE")
    assert request[1]["event"] == "presence" and request[1]["accept"] == PIDF
    notifier.reply(request, 200, "OK", "Expires: 600\r\n")
    body = PresenceState("open", note="hi").toxml("sip:alice@127.0.0.1")
    notifier.notify(request, "active;expires=600", body, PIDF)
    got = recorder.wait("SCSubscriptionGotNotify", sender=subscription)
    assert got.data.body == body and got.data.expires == 600 and _state(got).note == "hi"
    notifier.notify(request, "terminated;reason=noresource")
    ended = recorder.wait("SCSubscriptionDidEnd", sender=subscription)
    assert (ended.data.originator, ended.data.code, ended.data.reason) == ("remote", 200, "noresource")
    last = recorder.of("SCSubscriptionGotNotify", sender=subscription)[-1]
    assert last.data.subscription_state == "terminated" and last.data.content_type is None


def test_481_on_refresh_ends_the_subscription(engine, recorder, notifier):
    subscription = _raw_subscription(notifier, duration=60)
    subscription.subscribe()
    request = notifier.receive("SUBSCRIBE")
    notifier.reply(request, 200, "OK", "Expires: 2\r\n")
    notifier.notify(request, "active;expires=2")
    assert recorder.wait("SCSubscriptionDidSucceed", sender=subscription).data.expires == 2
    refresh = notifier.receive("SUBSCRIBE")  # Sofia-SIP refreshes before the 2 s run out
    assert ";tag=" in refresh[1]["to"]
    notifier.reply(refresh, 481, "Call/Transaction Does Not Exist")
    ended = recorder.wait("SCSubscriptionDidEnd", sender=subscription)
    assert (ended.data.originator, ended.data.code) == ("remote", 481)
    assert subscription.state == "terminated"


def test_no_notify_after_2xx_ends_the_subscription(engine, recorder, notifier):
    subscription = _raw_subscription(notifier)
    subscription.notify_timeout = 0.5
    subscription.subscribe()
    notifier.reply(notifier.receive("SUBSCRIBE"), 202, "Accepted", "Expires: 600\r\n")
    recorder.wait("SCSubscriptionDidSucceed", sender=subscription)
    ended = recorder.wait("SCSubscriptionDidEnd", sender=subscription)
    assert (ended.data.originator, ended.data.code, ended.data.reason) == ("remote", 408, "No NOTIFY received")


def test_rejected_subscribe_fails(engine, recorder, notifier):
    subscription = _raw_subscription(notifier)
    subscription.subscribe()
    notifier.reply(notifier.receive("SUBSCRIBE"), 403, "Forbidden")
    failed = recorder.wait("SCSubscriptionDidFail", sender=subscription)
    assert (failed.data.code, failed.data.reason) == (403, "Forbidden")
    assert not recorder.of("SCSubscriptionDidEnd", sender=subscription)


# --------------------------------------------- peer to peer: our notifier

needs_notifier_core = pytest.mark.skipif(
    "allow_events" not in inspect.signature(Engine.start).parameters,
    reason="needs Engine.start(allow_events=...) and NUTAG_WITH_SAVED for nua_respond in the core",
)


@pytest.fixture
def notifier_engine():
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp", "tcp"), allow_events=("presence",))
    engine.incoming_subscription_handler = IncomingSubscription.handle_incoming
    try:
        yield engine
    finally:
        engine.incoming_subscription_handler = None
        engine.stop()


def _watch_ourselves(engine, **kwargs) -> Subscription:
    return Subscription(FromHeader(SIPURI("127.0.0.1", user="dave"), "Dave"),
                        SIPURI("127.0.0.1", user="carol", port=engine.udp_port), **kwargs)


@needs_notifier_core
def test_peer_to_peer_presence(notifier_engine, recorder):
    watcher = _watch_ourselves(notifier_engine)
    watcher.subscribe()
    asked = recorder.wait("SCIncomingSubscriptionGotSubscribe")
    incoming = asked.sender
    assert asked.data.event == "presence" and asked.data.accept == [PIDF] and asked.data.expires == 600
    assert asked.data.from_header.uri.user == "dave" and asked.data.from_header.display_name == "Dave"
    entity = "sip:carol@127.0.0.1"
    incoming.accept(PIDF, PresenceState("open", note="p2p").toxml(entity))
    assert recorder.wait("SCSubscriptionDidSucceed", sender=watcher).data.code == 200
    assert recorder.wait("SCSubscriptionGotNotify", sender=watcher, predicate=_has("p2p", "open"))

    incoming.push_content(PresenceState("closed", note="gone fishing").toxml(entity))
    recorder.wait("SCSubscriptionGotNotify", sender=watcher, predicate=_has("gone fishing", "closed"))

    incoming.end("noresource")
    ended = recorder.wait("SCSubscriptionDidEnd", sender=watcher)
    assert (ended.data.originator, ended.data.reason) == ("remote", "noresource")
    mine = recorder.wait("SCIncomingSubscriptionDidEnd", sender=incoming)
    assert mine.data.originator == "local" and incoming.state == "terminated"


@needs_notifier_core
def test_peer_to_peer_watcher_unsubscribes_and_reject(notifier_engine, recorder):
    watcher = _watch_ourselves(notifier_engine)
    watcher.subscribe()
    incoming = recorder.wait("SCIncomingSubscriptionGotSubscribe").sender
    incoming.accept_pending()
    pending = recorder.wait("SCSubscriptionGotNotify", sender=watcher)
    assert pending.data.subscription_state == "pending" and pending.data.body == b""
    incoming.accept(PIDF, PresenceState("open").toxml("sip:carol@127.0.0.1"))
    recorder.wait("SCSubscriptionGotNotify", sender=watcher, predicate=_has(status="open"))
    watcher.end()
    assert recorder.wait("SCSubscriptionDidEnd", sender=watcher).data.originator == "local"
    assert recorder.wait("SCIncomingSubscriptionDidEnd", sender=incoming).data.originator == "remote"

    refused = _watch_ourselves(notifier_engine)
    refused.subscribe()
    recorder.wait("SCIncomingSubscriptionGotSubscribe", count=2).sender.reject(403)
    assert recorder.wait("SCSubscriptionDidFail", sender=refused).data.code == 403


@needs_notifier_core
def test_unhandled_subscribe_is_refused(notifier_engine, recorder):
    notifier_engine.incoming_subscription_handler = None
    watcher = _watch_ourselves(notifier_engine)
    watcher.subscribe()
    assert recorder.wait("SCSubscriptionDidFail", sender=watcher).data.code == 480
