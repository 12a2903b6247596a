"""The Engine: start and stop, options, SIP trace, MESSAGE over loopback, bad input on the wire."""

import os
import socket
import threading

import pytest

from sipsimple.core import (
    SIPURI,
    Engine,
    FromHeader,
    Message,
    SIPCoreEngineError,
    SIPCoreInvalidStateError,
    ToHeader,
)
from sipsimple.engine import Engine as SeedEngine
from tests.notifications import NotificationRecorder


def test_seed_path_is_the_singleton():
    assert SeedEngine() is Engine() is Engine()


def test_start_posts_and_binds(recorder):
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp", "tcp"), user_agent="tester/1")
    try:
        started = recorder.wait("SCEngineDidStart", sender=engine)
        assert started.data.udp_port == engine.udp_port == engine.tcp_port > 0
        assert engine.transports == ("udp", "tcp")
        with pytest.raises(SIPCoreEngineError):
            engine.start(local_ip="127.0.0.1")
        # the port really is ours, for both transports
        with pytest.raises(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", engine.udp_port))
    finally:
        engine.stop()
    recorder.wait("SCEngineWillEnd", sender=engine)
    recorder.wait("SCEngineDidEnd", sender=engine)
    assert not engine.is_running


@pytest.mark.parametrize("options", [
    dict(transports=("sctp",)), dict(transports=()), dict(udp_port=70000), dict(local_ip="::1"),
    dict(local_ip="not-an-ip"), dict(user_agent="a\r\nb"), dict(tls_ca_file="/no/such/file"), dict(bogus=1),
])
def test_invalid_options_are_refused(options):
    with pytest.raises((ValueError, TypeError)):
        Engine().start(**options)
    assert not Engine().is_running


def test_port_in_use_fails_with_notification(recorder):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(SIPCoreEngineError):
            Engine().start(local_ip="127.0.0.1", transports=("udp",), udp_port=port)
    assert "reason" in recorder.wait("SCEngineDidFail").data
    assert not Engine().is_running


def test_primitives_need_a_running_engine():
    message = Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b"), "x")
    with pytest.raises(SIPCoreEngineError):
        message.send()


def _threads_and_fds():
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def test_start_stop_100_times_without_leaks():
    engine = Engine()
    engine.start(local_ip="127.0.0.1")
    engine.stop()
    before = _threads_and_fds()
    for _ in range(100):
        engine.start(local_ip="127.0.0.1", transports=("udp", "tcp"))
        engine.stop()
    assert _threads_and_fds() == before


def test_message_over_loopback_with_trace(engine, recorder):
    me = SIPURI("127.0.0.1", user="bob", port=engine.udp_port)
    message = Message(FromHeader(SIPURI("127.0.0.1", user="alice"), "Alice"), ToHeader(me), "héllo",
                      content_type="text/plain", extra_headers={"X-Test": "1"})
    message.send()
    got = recorder.wait("SCEngineGotMessage")
    assert got.data.body == "héllo".encode() and got.data.content_type == "text/plain"
    assert got.data.from_header.uri.user == "alice" and got.data.from_header.display_name == "Alice"
    assert got.data.message.header("x-test") == "1"
    done = recorder.wait("SCMessageDidSucceed", sender=message)
    assert done.data.code == 200
    with pytest.raises(SIPCoreInvalidStateError):
        message.send()


def test_sip_trace_shows_both_directions(recorder):
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), trace_sip=True)
    try:
        me = SIPURI("127.0.0.1", user="bob", port=engine.udp_port)
        message = Message(SIPURI("127.0.0.1", user="alice"), me, "traced")
        message.send()
        recorder.wait("SCMessageDidSucceed", sender=message)
        out = recorder.wait("SCEngineSIPTrace", predicate=lambda n: n.data.direction == "out"
                            and n.data.data.startswith(b"MESSAGE "))
        assert out.data.transport == "udp" and out.data.destination_port == engine.udp_port
        assert b"\r\nContent-Length: 6\r\n" in out.data.data
        inbound = recorder.wait("SCEngineSIPTrace", predicate=lambda n: n.data.direction == "in"
                                and n.data.data.startswith(b"MESSAGE "))
        assert inbound.data.data.endswith(b"\r\n\r\ntraced")
        # we sent it to ourselves: what the trace shows going out is exactly what came in, body included
        assert out.data.data == inbound.data.data
        answer_in = recorder.wait("SCEngineSIPTrace", predicate=lambda n: n.data.direction == "in"
                                  and n.data.data.startswith(b"SIP/2.0 200"))
        answer_out = recorder.wait("SCEngineSIPTrace", predicate=lambda n: n.data.direction == "out"
                                   and n.data.data.startswith(b"SIP/2.0 200"))
        assert answer_out.data.data == answer_in.data.data
    finally:
        engine.stop()


def test_sip_trace_shows_retransmissions_whole(recorder):
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), trace_sip=True)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes requests, never answers
            silent.bind(("127.0.0.1", 0))
            port = silent.getsockname()[1]
            message = Message(SIPURI("127.0.0.1", user="alice"), SIPURI("127.0.0.1", user="bob", port=port),
                              "say it again")
            message.send()

            def sent(n):
                return n.data.direction == "out" and n.data.destination_port == port

            first = recorder.wait("SCEngineSIPTrace", predicate=sent)
            again = recorder.wait("SCEngineSIPTrace", predicate=sent, count=2, timeout=5)  # T1 = 0.5 s
            wire = silent.recv(65536)
            assert first.data.data == again.data.data == wire
            assert wire.endswith(b"\r\n\r\nsay it again")
    finally:
        engine.stop()


def test_message_to_dead_port_fails(engine, recorder):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    message = Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b", port=dead, parameters={"transport": "tcp"}), "x")
    message.send()
    failed = recorder.wait("SCMessageDidFail", sender=message, timeout=40)
    assert failed.data.code >= 400


def test_message_timeout_is_reported(engine, recorder):
    # a UDP socket that never answers: our timeout fires before Sofia's 32 s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        message = Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b", port=s.getsockname()[1]), "x")
        message.send(timeout=1.0)
        failed = recorder.wait("SCMessageDidFail", sender=message)
    assert failed.data.code == 408


def test_engine_stop_fails_pending_message(recorder):
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        message = Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b", port=s.getsockname()[1]), "x")
        message.send()
        engine.stop()
    assert recorder.wait("SCMessageDidFail", sender=message).data.code == 0


@pytest.mark.parametrize("datagram", [
    b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\nCSeq: banana\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n",
    b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKy\r\nFrom: <garbage\r\n"
    b"To: <sip:b@c>\r\nCall-ID: 2\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
])
def test_malformed_request_gets_400_and_never_reaches_python(engine, recorder, datagram):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(datagram.replace(b"127.0.0.1:9", b"127.0.0.1:%d" % s.getsockname()[1]),
                 ("127.0.0.1", engine.udp_port))
        reply = s.recv(65535)
    assert reply.startswith(b"SIP/2.0 400")
    # the engine still works and nothing half-parsed was posted
    message = Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b", port=engine.udp_port), "ok")
    message.send()
    recorder.wait("SCMessageDidSucceed", sender=message)
    assert [n.data.body for n in recorder.of("SCEngineGotMessage")] == [b"ok"]


def test_garbage_datagrams_do_not_hurt(engine, recorder):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x00" * 100, b"SIP/2.0", b"\r\n\r\n", os.urandom(1400), b"INVITE\r\n\r\n"):
            s.sendto(junk, ("127.0.0.1", engine.udp_port))
    message = Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b", port=engine.udp_port), "still here")
    message.send()
    recorder.wait("SCMessageDidSucceed", sender=message)


def test_stop_from_a_notification_handler_on_the_engine_thread():
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",))
    ended = threading.Event()
    with NotificationRecorder("SCEngineDidEnd") as rec:
        def stop_on_message(notification):
            engine.stop()

        from sipsimple.notification import NotificationCenter

        NotificationCenter().add_observer(stop_on_message, "SCEngineGotMessage")
        try:
            Message(SIPURI("127.0.0.1", user="a"), SIPURI("127.0.0.1", user="b", port=engine.udp_port), "bye").send()
            rec.wait("SCEngineDidEnd", sender=engine)
            ended.set()
        finally:
            NotificationCenter().discard_observer(stop_on_message, "SCEngineGotMessage")
    assert ended.is_set()
    engine.stop()  # joins what is left of the thread; harmless once ended
