"""sipp drives OPTIONS, MESSAGE and REGISTER load at our endpoint: every request answered, none lost."""

import threading

from sipsimple.notification import NotificationCenter
from tests.peers.sipp import run_sipp

CALLS = 1500
RATE = 500


def test_options_load(engine, tmp_path):
    target = f"127.0.0.1:{engine.udp_port}"
    result = run_sipp("options.xml", target, run_dir=tmp_path, keys={"ruri": f"sip:{target}"},
                      calls=CALLS, rate=RATE, timeout=60, trace=False)
    assert result.ok and result.successful == CALLS and result.failed == 0, result.describe()


def test_message_load_every_message_reaches_python(engine, tmp_path):
    seen = []
    cond = threading.Condition()

    def count(notification):
        with cond:
            seen.append(notification.data.body)
            cond.notify_all()

    NotificationCenter().add_observer(count, "SCEngineGotMessage")
    try:
        result = run_sipp("uac_message.xml", f"127.0.0.1:{engine.udp_port}", run_dir=tmp_path, service="bob",
                          keys={"from_user": "alice", "body": "load"}, calls=CALLS, rate=RATE, timeout=60,
                          trace=False)
        assert result.ok and result.successful == CALLS and result.failed == 0, result.describe()
        # the stack answers before Python has seen the last batch: keep observing until it has
        with cond:
            cond.wait_for(lambda: len(seen) >= CALLS, timeout=30)
    finally:
        NotificationCenter().discard_observer(count, "SCEngineGotMessage")
    assert len(seen) == CALLS and {body.strip() for body in seen} == {b"load"}


def test_register_load_is_refused_cleanly(engine, tmp_path):
    result = run_sipp("register_uac.xml", f"127.0.0.1:{engine.udp_port}", run_dir=tmp_path, service="alice",
                      calls=CALLS, rate=RATE, timeout=60, trace=False)
    assert result.ok and result.successful == CALLS and result.failed == 0, result.describe()
