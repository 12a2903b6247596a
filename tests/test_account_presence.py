"""Account presence: publishing the account's state, watching buddies and watchers, against Kamailio's presence
server (and a raw notifier for re-subscription).

Kamailio keeps presence in SQLite and may answer 500 "database is locked" when a PUBLISH and a SUBSCRIBE meet:
the account retries (quickly here), so the tests wait for the outcome rather than for the first answer.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import pytest

from sipsimple.account import Account
from sipsimple.account.presence import PresencePublisher, PresenceSubscriber, SIPAddressList, address_of
from sipsimple.core import SIPURI, Credentials, Route
from sipsimple.payloads import PresenceState
from tests.test_presence_core import PIDF, RawNotifier

RETRY = 0.2


@pytest.fixture
def notifier():
    peer = RawNotifier()
    try:
        yield peer
    finally:
        peer.close()


def presence_account(kamailio, user, password=None, transport="udp", **presence) -> Account:
    account = Account(f"{user}@{kamailio.domain}")
    account.auth.password = kamailio.users[user] if password is None else password
    account.sip.outbound_proxy = Route(kamailio.host, kamailio.port, transport)
    account.sip.register = False  # presence needs no registration: fewer requests racing in the presence DB
    account.presence.enabled = True
    account.presence.retry_interval = RETRY
    account.presence.max_retry_interval = 1.0
    for name, value in presence.items():
        setattr(account.presence, name, value)
    account.enabled = True
    return account


def wait_presentity_gone(kamailio, user: str, timeout: float = 10.0) -> None:
    """Wait until Kamailio holds no publication of ``user``.

    It answers a removing PUBLISH at once but deletes the row from its SQLite table a moment later;
    a SUBSCRIBE in between may be sent the removed document. Nothing announces the deletion, so the
    table is looked at until the row is gone.
    """
    deadline = time.monotonic() + timeout
    path = kamailio.run_dir / "presence.db"
    while True:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)) as db:
                left = db.execute("SELECT COUNT(*) FROM presentity WHERE username = ?", (user,)).fetchone()[0]
        except sqlite3.OperationalError:  # locked by Kamailio right now
            left = None
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"Kamailio still holds a publication of {user} after {timeout} s")
        time.sleep(0.05)


def has_state(uri, status=None, note=None):
    def check(notification) -> bool:
        state = notification.data.state
        return notification.data.uri == uri and (status is None or state.status == status) and \
            (note is None or state.note == note)
    return check


# ----------------------------------------------------------------- settings


def test_presence_settings_are_validated_and_stored(config):
    account = Account("alice@example.com")
    assert account.presence.enabled is False and account.presence.buddies == ()
    assert account.presence.subscribe_winfo is True and account.presence_state is None
    account.presence.buddies = ["sip:Bob@Example.com", "carol@example.com", "bob@example.com"]
    assert account.presence.buddies == ("Bob@example.com", "carol@example.com", "bob@example.com")
    with pytest.raises(TypeError):
        account.presence.buddies = "bob@example.com"
    with pytest.raises(ValueError):
        account.presence.buddies = ["not an address"]
    with pytest.raises(ValueError):
        account.presence.retry_interval = 0
    account.save()
    assert config.get("accounts", "alice@example.com")["presence"]["buddies"] == [
        "Bob@example.com", "carol@example.com", "bob@example.com"]
    assert SIPAddressList().load(["a@b.c", "a@b.c"]) == ("a@b.c",)
    assert address_of(SIPURI("example.com", user="dave", port=5070)) == "dave@example.com"
    with pytest.raises(TypeError):
        account.presence_state = "open"
    # nothing runs without the AccountManager and the Engine: the state is kept for later
    account.presence_state = PresenceState("open", note="later")
    assert account.presence_state.note == "later" and account.buddy_states == {} and account.watchers == ()


# ------------------------------------------------------------ with Kamailio


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_buddy_sees_published_state_changes_and_removal(kamailio, account_manager, engine, recorder, transport):
    alice_id, bob_id = f"alice@{kamailio.domain}", f"bob@{kamailio.domain}"
    wait_presentity_gone(kamailio, "alice")  # what an earlier test published is not taken for alice's state
    alice = presence_account(kamailio, "alice", transport=transport)
    alice.presence_state = PresenceState("open", note=f"online {transport}")
    alice.save()
    published = recorder.wait("SIPAccountPresenceDidPublish", sender=alice)
    assert published.data.code == 200 and published.data.state.note == f"online {transport}"
    assert published.data.refreshed is False and published.data.etag
    recorder.wait("SIPAccountPresenceSubscriptionDidSucceed", sender=alice,
                  predicate=lambda n: n.data.event == "presence.winfo")

    bob = presence_account(kamailio, "bob", transport=transport, buddies=[alice_id], subscribe_winfo=False)
    bob.save()
    seen = recorder.wait("SIPAccountGotPresenceState", sender=bob, predicate=has_state(alice_id, "open"))
    assert seen.data.state == PresenceState("open", note=f"online {transport}") and seen.data.previous is None
    assert bob.buddy_states == {alice_id: PresenceState("open", note=f"online {transport}")}
    # alice learns from presence.winfo that bob watches her
    info = recorder.wait("SIPAccountGotWatcherInfo", sender=alice,
                         predicate=lambda n: any(w.uri == f"sip:{bob_id}" for w in n.data.watchers))
    assert [w.status for w in info.data.watchers if w.uri == f"sip:{bob_id}"] == ["active"]
    assert any(w.uri == f"sip:{bob_id}" for w in alice.watchers)

    alice.presence_state = PresenceState("open", note="in a meeting", activity="busy")
    changed = recorder.wait("SIPAccountGotPresenceState", sender=bob, predicate=has_state(alice_id, note="in a meeting"))
    assert changed.data.state.activity == "busy" and changed.data.previous.note == f"online {transport}"
    assert bob.buddy_states[alice_id].activity == "busy"

    alice.presence_state = None
    assert recorder.wait("SIPAccountPresenceDidUnpublish", sender=alice).data.code == 200
    gone = recorder.wait("SIPAccountGotPresenceState", sender=bob, predicate=has_state(alice_id, "closed"))
    assert gone.data.state.note is None and bob.buddy_states[alice_id].status == "closed"

    # turning presence off unsubscribes; the buddy's state is forgotten
    bob.presence.enabled = False
    bob.save()
    ended = recorder.wait("SIPAccountPresenceSubscriptionDidEnd", sender=bob)
    assert (ended.data.uri, ended.data.event, ended.data.code) == (alice_id, "presence", 200)
    assert bob.buddy_states == {}


def test_publication_kept_and_removed_with_the_account(kamailio, account_manager, engine, recorder):
    carol = presence_account(kamailio, "carol", publish_interval=10, subscribe_winfo=False)
    carol.presence_state = PresenceState("open", note="refresh me")
    carol.save()
    recorder.wait("SIPAccountPresenceDidPublish", sender=carol)
    refreshed = recorder.wait("SIPAccountPresenceDidPublish", sender=carol, predicate=lambda n: n.data.refreshed,
                              timeout=15)
    assert refreshed.data.code == 200 and refreshed.data.expires == 10
    # buddies added at run time, then through the setting
    assert carol.presence_watcher.watch(f"sip:alice@{kamailio.domain}") == f"alice@{kamailio.domain}"
    recorder.wait("SIPAccountPresenceSubscriptionDidSucceed", sender=carol,
                  predicate=lambda n: n.data.uri == f"alice@{kamailio.domain}")
    carol.presence.buddies = [f"bob@{kamailio.domain}"]
    carol.save()
    recorder.wait("SIPAccountPresenceSubscriptionDidSucceed", sender=carol,
                  predicate=lambda n: n.data.uri == f"bob@{kamailio.domain}")
    assert set(carol.presence_watcher.buddies) == {f"alice@{kamailio.domain}", f"bob@{kamailio.domain}"}
    # deleting the account removes its publication and its subscriptions
    carol.delete()
    assert recorder.wait("SIPAccountPresenceDidUnpublish", sender=carol).data.code == 200
    recorder.wait("SIPAccountPresenceSubscriptionDidEnd", sender=carol, count=2)
    assert not carol.presence_watcher.running


def test_wrong_credentials_fail_with_the_code_and_back_off(kamailio, account_manager, engine, recorder):
    bob = presence_account(kamailio, "bob", password="wrong", buddies=[f"alice@{kamailio.domain}"])
    bob.presence_state = PresenceState("open")
    bob.save()
    first = recorder.wait("SIPAccountPresenceDidFail", sender=bob)
    second = recorder.wait("SIPAccountPresenceDidFail", sender=bob, count=2)
    assert first.data.code == second.data.code and first.data.code in (401, 407)
    assert (first.data.will_retry_in, second.data.will_retry_in) == (RETRY, 2 * RETRY)
    failed = recorder.wait("SIPAccountPresenceSubscriptionDidFail", sender=bob)
    assert failed.data.code in (401, 407) and failed.data.will_retry_in is not None
    assert not recorder.of("SIPAccountPresenceDidPublish")
    # the right password starts afresh: it publishes and subscribes
    bob.auth.password = kamailio.users["bob"]
    bob.save()
    assert recorder.wait("SIPAccountPresenceDidPublish", sender=bob).data.code == 200
    for event in ("presence", "presence.winfo"):
        recorder.wait("SIPAccountPresenceSubscriptionDidSucceed", sender=bob,
                      predicate=lambda n, event=event: n.data.event == event)
    # stopping the AccountManager removes the publication and unsubscribes, and waits for the answers
    account_manager.stop()
    assert recorder.wait("SIPAccountPresenceDidUnpublish", sender=bob, timeout=0).data.code == 200
    # (the subscriptions made with the wrong password were ended too, with their 401/407)
    ended = recorder.wait("SIPAccountPresenceSubscriptionDidEnd", sender=bob, count=2, timeout=0,
                          predicate=lambda n: n.data.code == 200)
    assert {n.data.event for n in recorder.of("SIPAccountPresenceSubscriptionDidEnd", sender=bob)
            if n.data.code == 200} == {"presence", "presence.winfo"}
    assert ended and not bob.presence_watcher.running


# --------------------------------------------------------- re-subscription


def test_account_subscribes_again_after_failure_and_termination(account_manager, engine, recorder, notifier):
    bob = Account("bob@127.0.0.1")
    bob.sip.register = False
    bob.sip.outbound_proxy = Route("127.0.0.1", notifier.port, "udp")
    bob.presence.enabled = True
    bob.presence.subscribe_winfo = False
    bob.presence.buddies = ["alice@127.0.0.1"]
    bob.presence.retry_interval = RETRY
    bob.enabled = True
    bob.save()
    # two failures: back-off doubles
    for attempt in (1, 2):
        request = notifier.receive("SUBSCRIBE")
        notifier.reply(request, 500, "Database Is Locked")
        failed = recorder.wait("SIPAccountPresenceSubscriptionDidFail", sender=bob, count=attempt)
        assert (failed.data.code, failed.data.will_retry_in) == (500, RETRY * attempt)
    request = notifier.receive("SUBSCRIBE")
    notifier.reply(request, 200, "OK", "Expires: 600\r\n")
    notifier.notify(request, "active;expires=600", PresenceState("open", note="hi").toxml("sip:alice@127.0.0.1"), PIDF)
    seen = recorder.wait("SIPAccountGotPresenceState", sender=bob)
    assert seen.data.uri == "alice@127.0.0.1" and seen.data.state.note == "hi"
    # the notifier ends it: deactivated means subscribe again at once
    notifier.notify(request, "terminated;reason=deactivated")
    ended = recorder.wait("SIPAccountPresenceSubscriptionDidFail", sender=bob, count=3)
    assert (ended.data.code, ended.data.reason, ended.data.will_retry_in) == (200, "deactivated", 0.0)
    again = notifier.receive("SUBSCRIBE")
    if again[1]["call-id"] == request[1]["call-id"]:
        # the stack unSUBSCRIBEs the ended dialog as its handle is released (harmless)
        assert again[1]["expires"] == "0"
        notifier.reply(again, 481, "Subscription Does Not Exist")
        again = notifier.receive("SUBSCRIBE")
    assert again[1]["call-id"] != request[1]["call-id"] and again[1]["expires"] == "600"
    notifier.reply(again, 200, "OK", "Expires: 600\r\n")
    notifier.notify(again, "active;expires=600", PresenceState("closed").toxml("sip:alice@127.0.0.1"), PIDF)
    closed = recorder.wait("SIPAccountGotPresenceState", sender=bob, count=2)
    assert closed.data.state.status == "closed" and bob.buddy_states["alice@127.0.0.1"].status == "closed"
    # an empty NOTIFY (nothing known) changes nothing
    notifier.notify(again, "active;expires=600")
    bob.presence.enabled = False
    bob.save()
    unsubscribe = notifier.receive("SUBSCRIBE")
    assert unsubscribe[1]["expires"] == "0"
    notifier.reply(unsubscribe, 200, "OK", "Expires: 0\r\n")
    notifier.notify(again, "terminated;reason=timeout")
    recorder.wait("SIPAccountPresenceSubscriptionDidEnd", sender=bob)
    assert len(recorder.of("SIPAccountGotPresenceState", sender=bob)) == 2


# ------------------------------------------------------ helpers used alone


def test_publisher_and_subscriber_alone(kamailio, engine, recorder):
    route = Route(kamailio.host, kamailio.port, "tcp")
    alice = SIPURI(kamailio.domain, user="alice")
    states: list[PresenceState | None] = []
    subscriber = PresenceSubscriber(SIPURI(kamailio.domain, user="carol"), alice, Credentials("carol", "carolpw"),
                                    route, on_notify=lambda s, data: states.append(data.body))
    subscriber.start()
    assert recorder.wait("SIPAccountPresenceSubscriptionDidSucceed", sender=subscriber).data.code == 200
    publisher = PresencePublisher(alice, Credentials("alice", "alicepw"), route, retry_interval=None)
    publisher.publish(PresenceState("open", note="alone"))
    assert recorder.wait("SIPAccountPresenceDidPublish", sender=publisher).data.code == 200
    assert publisher.published
    recorder.wait_for(lambda: any(body and b"alone" in body for body in states))
    publisher.stop()
    assert recorder.wait("SIPAccountPresenceDidUnpublish", sender=publisher).data.code == 200
    with pytest.raises(RuntimeError):
        publisher.publish(PresenceState("open"))
    assert subscriber.stop() is True
    assert recorder.wait("SIPAccountPresenceSubscriptionDidEnd", sender=subscriber).data.code == 200
