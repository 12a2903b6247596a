"""The least an account needs for a Session, for tests that use no AccountManager."""

from __future__ import annotations

from sipsimple.core import SIPURI, Credentials, Route


class LocalAccount:
    """``user@127.0.0.1`` (or ``user@domain``), no registration; what Session reads from an account."""

    def __init__(self, user: str = "alice", srtp_mode: str = "optional", codecs: list[str] | None = None, *,
                 msrp_relay=None, password: str | None = None, domain: str = "127.0.0.1",
                 outbound_proxy: Route | None = None, display_name: str | None = "") -> None:
        self.uri = SIPURI(domain, user=user)
        self.credentials = Credentials(user, password) if password else None
        self.display_name = user.title() if display_name == "" else display_name
        self.srtp_mode = srtp_mode
        self.audio_codecs = codecs
        self.msrp_relay = msrp_relay
        self.outbound_proxy = outbound_proxy


def bob_uri(engine) -> SIPURI:
    """bob at our own Engine: a request to it leaves the stack and comes back in."""
    return SIPURI("127.0.0.1", user="bob", port=engine.udp_port)
