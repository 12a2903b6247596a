"""Sessions under load from and towards sipp's built-in scenarios (``-sn uac`` / ``-sn uas``).

- sipp ``uac`` calls into our SessionManager, whose in-process answering application
  accepts every incoming session with audio; sipp's BYE ends each call;
- our Sessions call sipp ``uas``, several at a time, each ended once established.

Every call must succeed on both sides, and no session may be left behind.
"""

from __future__ import annotations

import shutil
import threading

import pytest

from sipsimple.core import SIPURI
from sipsimple.notification import NotificationCenter
from sipsimple.session import Session, SessionManager
from tests.local_accounts import LocalAccount
from tests.peers.sipp import SippProcess, run_sipp

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) is not installed")]


class AnsweringApp:
    """Accepts every incoming session with audio; counts how sessions start, fail and end."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.incoming = self.started = self.ended = self.failed = 0
        self.errors: list[str] = []
        self.codecs: set[str | None] = set()
        center = NotificationCenter()
        for name in ("SCSessionNewIncoming", "SCSessionDidStart", "SCSessionDidFail", "SCSessionDidEnd"):
            center.add_observer(self, name=name)

    def close(self) -> None:
        for name in ("SCSessionNewIncoming", "SCSessionDidStart", "SCSessionDidFail", "SCSessionDidEnd"):
            NotificationCenter().discard_observer(self, name=name)

    def handle_notification(self, notification) -> None:
        session, name = notification.sender, notification.name
        if name == "SCSessionNewIncoming":
            try:
                session.accept(audio=True)
            except Exception as exc:  # reported by the test, not lost in the loop
                self.errors.append(repr(exc))
        with self.lock:
            if name == "SCSessionNewIncoming":
                self.incoming += 1
            elif name == "SCSessionDidStart":
                self.started += 1
                self.codecs.add(session.audio_codec)
            elif name == "SCSessionDidFail":
                self.failed += 1
                self.errors.append(f"{notification.data.code} {notification.data.reason}")
            elif name == "SCSessionDidEnd":
                self.ended += 1
            self.lock.notify_all()

    def wait_ended(self, count: int, timeout: float = 30.0) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.ended >= count, timeout)


def test_sipp_uac_calls_into_session_manager(sip, tmp_path):
    app = AnsweringApp()
    try:
        calls, rate = 100, 20
        result = run_sipp("uac", f"127.0.0.1:{sip.udp_port}", builtin=True, run_dir=tmp_path / "uac",
                          service="bob", calls=calls, rate=rate, timeout=60,
                          extra=["-d", "500", "-l", str(rate * 2)])
        assert result.ok, result.describe()
        assert result.successful == calls and result.failed == 0, result.describe()
        assert app.wait_ended(calls), (app.incoming, app.started, app.ended, app.errors)
        assert (app.incoming, app.started, app.ended, app.failed) == (calls, calls, calls, 0), app.errors
        assert app.codecs == {"PCMU"} and not app.errors
        assert not SessionManager().sessions
    finally:
        app.close()


def test_sessions_call_sipp_uas(sip, recorder, tmp_path):
    total, at_once = 50, 10
    with SippProcess("uas", builtin=True, run_dir=tmp_path / "uas", calls=total, timeout=120,
                     trace=False) as uas:
        target = SIPURI("127.0.0.1", user="sipp", port=uas.local_port)
        done = 0
        while done < total:
            sessions = [Session(LocalAccount(f"alice{done + i}", display_name=None)) for i in range(at_once)]
            for session in sessions:
                session.connect(target, [], audio=True)
            for session in sessions:
                recorder.wait("SCSessionDidStart", sender=session, timeout=15)
                assert session.audio_codec == "PCMU" and session.has_audio
            for session in sessions:
                session.end()
            for session in sessions:
                assert recorder.wait("SCSessionDidEnd", sender=session, timeout=15).data.originator == "local"
            done += at_once
        result = uas.wait(60)
    assert result.ok, result.describe()
    assert result.successful == total and result.failed == 0, result.describe()
    assert not recorder.of("SCSessionDidFail")
    assert not SessionManager().sessions


def test_no_audio_from_a_silent_peer(engine, recorder, tmp_path):
    """sipp's uas answers but sends no RTP: 5 s after the start the session says so."""
    from sipsimple.core import SIPURI
    from sipsimple.session import Session, SessionManager
    from tests.peers.sipp import SippProcess

    SessionManager()
    with SippProcess("uas", builtin=True, run_dir=tmp_path, calls=1, timeout=30) as uas:
        session = Session(LocalAccount("alice", "off", ["PCMU"], display_name=None))
        session.connect(SIPURI("127.0.0.1", user="service", port=uas.local_port), [], audio=True)
        started = recorder.wait("SCSessionDidStart", sender=session)
        silent = recorder.wait("SCSessionGotNoAudio", sender=session, timeout=10)
        elapsed = (silent.data.timestamp - started.data.timestamp).total_seconds()
        assert 4.5 <= elapsed <= 7.0 and not session.audio_was_received
        session.end()
        recorder.wait("SCSessionDidEnd", sender=session)


def test_491_is_retried_after_the_rfc_delay(engine, recorder, tmp_path):
    """A re-INVITE answered 491 (glare) is sent again after RFC 3261 14.1's delay: 2.1-4 s for
    the Call-ID's owner, which the caller is."""
    from sipsimple.core import SIPURI
    from sipsimple.session import Session, SessionManager
    from tests.peers.sipp import SippProcess

    SessionManager()
    with SippProcess("uas_glare.xml", run_dir=tmp_path, calls=1, timeout=30) as uas:
        session = Session(LocalAccount("alice", "off", ["PCMU"], display_name=None))
        session.connect(SIPURI("127.0.0.1", user="service", port=uas.local_port), [], audio=True)
        recorder.wait("SCSessionDidStart", sender=session)
        session.hold()
        pending = recorder.wait("SCInvitationChangedState", sender=session._invitation,
                                predicate=lambda n: n.data.code == 491)
        answered = recorder.wait("SCInvitationChangedState", sender=session._invitation,
                                 predicate=lambda n: n.data.prev_sub_state == "sending_proposal"
                                 and n.data.code == 200)
        delay = (answered.data.timestamp - pending.data.timestamp).total_seconds()
        assert 2.1 <= delay <= 4.5, delay
        assert answered.data.sdp.media[0].direction == "recvonly" and session.on_hold_by_local
        session.end()
        recorder.wait("SCSessionDidEnd", sender=session)
        result = uas.wait(10)
    assert result.successful == 1 and result.failed == 0, result.describe()


def test_refused_hold_leaves_the_session_as_it_was(engine, recorder, tmp_path):
    """sipp refuses our hold (488): on_hold_by_local goes back; a later hold is accepted and said so."""
    from sipsimple.core import SIPURI
    from sipsimple.session import Session, SessionManager
    from tests.peers.sipp import SippProcess

    SessionManager()
    with SippProcess("uas_refuse_reinvite.xml", run_dir=tmp_path, calls=1, timeout=30) as uas:
        session = Session(LocalAccount("alice", "off", ["PCMU"], display_name=None))
        session.connect(SIPURI("127.0.0.1", user="service", port=uas.local_port), [], audio=True)
        recorder.wait("SCSessionDidStart", sender=session)
        session.hold()
        recorder.wait("SCInvitationChangedState", sender=session._invitation,
                      predicate=lambda n: n.data.code == 488)
        recorder.wait_for(lambda: not session.on_hold_by_local)
        assert not recorder.of("SCSessionDidChangeHoldState", sender=session)
        session.hold()
        held = recorder.wait("SCSessionDidChangeHoldState", sender=session)
        assert held.data.on_hold and session.on_hold_by_local
        session.end()
        recorder.wait("SCSessionDidEnd", sender=session)
