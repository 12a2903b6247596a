"""The seed document's example program, ported to Python 3.

The port: ``@implementer(IObserver)`` instead of ``implements(IObserver)``,
``print()`` as a function, ``input()`` for ``raw_input()``,
``sipsimple.notification`` in place of python-application, ``__init__`` where the
wiki page shows ``init``, and the placeholder call at the bottom reads its target
and outbound proxy from the command line:

    python examples/simple_outbound_call.py sip:bob@example.com 127.0.0.1:5060

It uses the default account of the configuration (SIPSIMPLE_CONFIG_DIR).
"""

import sys
from threading import Event

from zope.interface import implementer

from sipsimple.account import AccountManager
from sipsimple.configuration import ConfigurationManager
from sipsimple.core import SIPURI, Route
from sipsimple.engine import Engine
from sipsimple.notification import IObserver, NotificationCenter
from sipsimple.session import Session


# indicate that we implement the sipsimple.notification.IObserver interface
@implementer(IObserver)
class SimpleOutboundCall:

    def __init__(self, remote_uri, route):
        # setup a threading.Event to signal that the Engine has stopped
        self.engine_ended_event = Event()
        # start the configuration manager
        ConfigurationManager().start()
        # start the account manager
        am = AccountManager()
        am.start()
        # start the Engine with configuration framework parameters
        Engine().start_cfg()
        # create a new Session using the default account
        self.session = Session(am.default_account)
        # listen for the notification that the Engine stopped
        NotificationCenter().add_observer(self, "SCEngineDidEnd", Engine())
        # listen for the notification that the Session ended
        NotificationCenter().add_observer(self, "SCSessionDidEnd", self.session)
        # start a new outbound session
        self.session.connect(remote_uri, [route], audio=True)

    def end(self):
        # if the Session is still active, terminate it
        self.session.end()
        # wait for the engine to stop, processed in handle_notification
        self.engine_ended_event.wait()
        # quit the progam, as this can only be done from the main thread
        sys.exit()

    def handle_notification(self, notification):
        if notification.name == "SCSessionDidEnd":
            # if for whatever reason the session ended, stop the Engine
            print("Session ended")
            Engine().stop()
        elif notification.name == "SCEngineDidEnd":
            # once the Engine has stopped, signal the (possibly) waiting main
            # thread through a threading.Event
            self.engine_ended_event.set()


# place an audio call from the specified account to the specified URI, through
# the specified SIP proxy
# edit this to reflect real settings
call = SimpleOutboundCall(SIPURI.parse(sys.argv[1]), Route.parse(sys.argv[2]))
# block waiting for user input
print("Placing call, press enter to quit program")
input()
# block in end() until the Engine has stopped
call.end()
