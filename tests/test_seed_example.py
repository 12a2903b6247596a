"""The seed document's example, ported to Python 3, runs as written against baresip through Kamailio."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parent.parent / "examples" / "simple_outbound_call.py"

SETUP = """
import sys
from sipsimple.account import Account, AccountManager
from sipsimple.configuration import ConfigurationManager
from sipsimple.configuration.settings import SIPSimpleSettings
ConfigurationManager().start()
settings = SIPSimpleSettings()
settings.sip.local_ip = "127.0.0.1"
settings.save()
account = Account("alice@127.0.0.1")
account.auth.password = "alicepw"
account.sip.outbound_proxy = sys.argv[1]
account.sip.register = False
account.enabled = True
account.save()
manager = AccountManager()
manager.start()
manager.default_account = account
manager.stop()
ConfigurationManager().stop()
"""


def test_seed_example_places_a_call(kamailio, baresip_factory, tmp_path):
    bob = baresip_factory(user="bob", password="bobpw", registrar=f"{kamailio.host}:{kamailio.port}")
    bob.wait_registered()
    env = dict(os.environ, SIPSIMPLE_CONFIG_DIR=str(tmp_path / "config"))
    proxy = f"{kamailio.host}:{kamailio.port}"
    subprocess.run([sys.executable, "-c", SETUP, proxy], env=env, check=True, timeout=30)

    example = subprocess.Popen([sys.executable, str(EXAMPLE), f"sip:bob@{kamailio.domain}", proxy], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert example.stdout.readline().strip() == "Placing call, press enter to quit program"
        bob.ctrl.wait_event("CALL_ESTABLISHED", timeout=15)      # baresip answered our call
        example.stdin.write("\n")
        example.stdin.flush()
        output, _ = example.communicate(timeout=30)
    finally:
        if example.poll() is None:
            example.kill()
    assert "Session ended" in output
    assert example.returncode == 0, output
    bob.ctrl.wait_event("CALL_CLOSED")
