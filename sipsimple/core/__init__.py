"""The core of sipsimple: the Engine and the SIP primitives on Sofia-SIP.

The compiled part lives in ``_core`` (Cython over Sofia-SIP); the types and
primitives here are thin Python over it.
"""

from sipsimple.core.errors import (
    SIPCoreEngineError,
    SIPCoreError,
    SIPCoreInvalidStateError,
    SIPCoreTimeoutError,
)
from sipsimple.core.headers import ContactHeader, FromHeader, ToHeader
from sipsimple.core.sdp import SDPAttribute, SDPBandwidth, SDPConnection, SDPMediaStream, SDPSession
from sipsimple.core.sipmessage import SIPMessage
from sipsimple.core.uri import SIPURI, Credentials, FrozenSIPURI, Route

__all__ = [
    "SIPCoreError", "SIPCoreInvalidStateError", "SIPCoreEngineError", "SIPCoreTimeoutError",
    "SIPURI", "FrozenSIPURI", "Route", "Credentials",
    "FromHeader", "ToHeader", "ContactHeader", "SIPMessage",
    "SDPSession", "SDPMediaStream", "SDPAttribute", "SDPConnection", "SDPBandwidth",
]

from sipsimple.core.engine import Engine  # noqa: E402
from sipsimple.core.invitation import Invitation  # noqa: E402
from sipsimple.core.message import Message  # noqa: E402
from sipsimple.core.registration import Registration  # noqa: E402

__all__ += ["Engine", "Invitation", "Message", "Registration"]
