"""RFC 3263: a URI with a domain and no port is located through NAPTR, SRV and A records."""

from sipsimple.core import SIPURI, Credentials, Engine, Message
from tests.dns_server import DNSServer


def test_message_to_a_domain_found_by_naptr_and_srv(kamailio, recorder, tmp_path):
    dns = DNSServer({
        ("example.test", "NAPTR"): ['10 50 "s" "SIP+D2U" "" _sip._udp.example.test.'],
        ("_sip._udp.example.test", "SRV"): [f"0 0 {kamailio.port} proxy.example.test."],
        ("proxy.example.test", "A"): [kamailio.host],
    })
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), resolv_conf=dns.resolv_conf(tmp_path / "resolv.conf"))
    try:
        # nobody called bob is registered: Kamailio answers 404 after digest auth, which proves
        # the request reached it through the records above (there is no other way to its port)
        message = Message(SIPURI("example.test", user="alice"), SIPURI("example.test", user="bob"), "x",
                          credentials=Credentials("alice", "alicepw"))
        message.send()
        failed = recorder.wait("SCMessageDidFail", sender=message, timeout=20)
    finally:
        engine.stop()
        dns.close()
    assert failed.data.code == 404, failed.data
    assert ("example.test.", "NAPTR") in dns.queries and ("_sip._udp.example.test.", "SRV") in dns.queries


def test_unknown_domain_fails_cleanly(recorder, tmp_path):
    dns = DNSServer({})
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), resolv_conf=dns.resolv_conf(tmp_path / "resolv.conf"))
    try:
        message = Message(SIPURI("nowhere.test", user="a"), SIPURI("nowhere.test", user="b"), "x")
        message.send()
        failed = recorder.wait("SCMessageDidFail", sender=message, timeout=20)
    finally:
        engine.stop()
        dns.close()
    assert failed.data.code >= 400
