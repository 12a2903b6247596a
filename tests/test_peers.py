"""The test rig works: each peer is checked with a tool we did not write (sipp, baresip, ssl)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio, sip_options_ok
from tests.peers.ports import free_port
from tests.peers.sipp import SippProcess, run_sipp

pytestmark = pytest.mark.interop


def target(kam: Kamailio) -> str:
    return f"{kam.host}:{kam.port}"


def test_kamailio_answers_options_from_sipp(kamailio: Kamailio, tmp_run_dir: Path) -> None:
    assert kamailio.running
    assert sip_options_ok(kamailio.host, kamailio.port)
    result = run_sipp("options.xml", target(kamailio), keys={"ruri": f"sip:{target(kamailio)}"},
                      run_dir=tmp_run_dir)
    assert result.ok and result.successful == 1, result.describe()


def test_kamailio_tls_certificate_verifies_against_ca_file(kamailio: Kamailio) -> None:
    assert kamailio.ca_file is not None and kamailio.tls_port
    context = ssl.create_default_context(cafile=str(kamailio.ca_file))
    with socket.create_connection((kamailio.host, kamailio.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=kamailio.host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_kamailio_msrp_relay_port_accepts_connections(kamailio: Kamailio) -> None:
    assert kamailio.msrp_port and kamailio.msrp_port != kamailio.port
    with socket.create_connection((kamailio.host, kamailio.msrp_port), timeout=5):
        pass


def test_sipp_register_with_digest_auth(kamailio: Kamailio, tmp_run_dir: Path) -> None:
    result = run_sipp("reg_auth.xml", target(kamailio), service="alice", user="alice",
                      password=kamailio.users["alice"], run_dir=tmp_run_dir)
    assert result.ok, result.describe()
    assert (result.successful, result.failed) == (1, 0)
    assert "SIP/2.0 200 OK" in result.messages


def test_sipp_register_with_wrong_password_is_refused(kamailio: Kamailio, tmp_run_dir: Path) -> None:
    result = run_sipp("reg_auth.xml", target(kamailio), service="alice", user="alice",
                      password="not-alicepw", run_dir=tmp_run_dir)
    assert not result.ok
    assert (result.successful, result.failed) == (0, 1)
    # the answer to the REGISTER carrying credentials (CSeq 2) is another challenge or a refusal
    assert "CSeq: 2 REGISTER" in result.errors
    assert "SIP/2.0 401" in result.errors or "SIP/2.0 403" in result.errors, result.describe()


def test_sipp_message_through_proxy_with_auth(kamailio: Kamailio, tmp_path: Path) -> None:
    # bob registers the port his MESSAGE receiver then listens on
    bob_port = free_port()
    registered = run_sipp("reg_auth.xml", target(kamailio), service="bob", user="bob",
                          password=kamailio.users["bob"], local_port=bob_port, run_dir=tmp_path / "reg")
    assert registered.ok, registered.describe()
    with SippProcess("uas_message.xml", local_port=bob_port, calls=1, timeout=15,
                     run_dir=tmp_path / "bob") as bob:
        sent = run_sipp("uac_message.xml", target(kamailio), service="bob", user="alice",
                        password=kamailio.users["alice"], keys={"from_user": "alice", "body": "hello bob"},
                        run_dir=tmp_path / "alice")
        received = bob.wait(timeout=10)
    assert sent.ok, sent.describe()
    assert "407 Proxy Authentication Required" in sent.messages
    assert received.ok and received.successful == 1, received.describe()
    assert "hello bob" in received.messages


def test_baresip_registers_with_kamailio(kamailio: Kamailio, baresip_factory: Callable[..., Baresip],
                                         tmp_run_dir: Path) -> None:
    carol = baresip_factory(user="carol", password=kamailio.users["carol"], registrar=target(kamailio))
    carol.wait_registered()
    assert "200 OK" in carol.log_text()
    # the registrar now knows where carol is: an OPTIONS for her reaches baresip, which answers 200
    result = run_sipp("options.xml", target(kamailio), keys={"ruri": kamailio.aor("carol")}, run_dir=tmp_run_dir)
    assert result.ok, result.describe()
    assert "baresip" in result.messages


def test_sipp_calls_baresip_through_kamailio(kamailio: Kamailio, baresip_factory: Callable[..., Baresip],
                                              tmp_run_dir: Path) -> None:
    bob = baresip_factory(user="bob", password=kamailio.users["bob"], registrar=target(kamailio))
    bob.wait_registered()
    result = run_sipp("uac_auth.xml", target(kamailio), service="bob", user="alice",
                      password=kamailio.users["alice"], run_dir=tmp_run_dir)
    assert result.ok and result.successful == 1, result.describe()
    established = bob.ctrl.wait_event("CALL_ESTABLISHED")
    assert established["peeruri"] == kamailio.aor("alice")
    bob.ctrl.wait_event("CALL_CLOSED")


def test_sipp_builtin_uac_and_background_uas(tmp_path: Path) -> None:
    with SippProcess("uas", builtin=True, calls=2, timeout=15, run_dir=tmp_path / "uas") as uas:
        uac = run_sipp("uac", uas.address, builtin=True, calls=2, rate=20, run_dir=tmp_path / "uac")
        answered = uas.wait(timeout=10)
    assert uac.ok and uac.successful == 2, uac.describe()
    assert answered.ok and answered.successful == 2, answered.describe()
