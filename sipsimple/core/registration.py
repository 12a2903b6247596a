"""Registration: REGISTER an address of record and keep it registered.

Notifications (sender: the Registration):

- ``SCRegistrationDidSucceed``: registered or refreshed; data: ``code``, ``reason``,
  ``contact_header`` (ours, as the registrar holds it), ``contact_header_list``
  (every contact the registrar holds for the address), ``expires`` (seconds granted).
- ``SCRegistrationDidFail``: a REGISTER failed; data: ``code`` (0 when no response,
  e.g. the engine stopped), ``reason``, ``will_retry_in`` (seconds until the next
  attempt, or None when it will not retry).
- ``SCRegistrationWillEnd``: ``end()`` is unregistering.
- ``SCRegistrationDidEnd``: unregistered (or given up); data: ``code``, ``reason``.

Sofia-SIP refreshes a registration before it expires; a failed attempt is
retried with exponential back-off (``retry_interval`` doubling up to ``max_retry_interval``).
"""

from __future__ import annotations

from sipsimple.core.headers import FromHeader
from sipsimple.core.primitive import Primitive, check_credentials_and_route, checked_duration, route_header
from sipsimple.core.uri import SIPURI, Credentials, Route

__all__ = ["Registration"]


class Registration(Primitive):
    """Keeps ``uri`` registered at its registrar (through ``route`` when given)."""

    def __init__(
        self,
        uri: SIPURI,
        credentials: Credentials | None = None,
        duration: int = 600,
        route: Route | None = None,
        display_name: str | None = None,
        retry_interval: float = 5.0,
        max_retry_interval: float = 300.0,
        contact_transport: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(uri, SIPURI) or not uri.user:
            raise ValueError("a Registration needs a SIPURI with a user part")
        checked_duration(duration)
        check_credentials_and_route(credentials, route)
        self.uri = uri.freeze()
        self.credentials = credentials
        self.duration = duration
        self.route = route
        self.display_name = display_name
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        # the contact uses the transport we reach the registrar on, unless told otherwise
        self.contact_transport = contact_transport or (route.transport if route else uri.transport)
        self.state = "unregistered"
        self.expires: int | None = None
        self.contact_header = None
        self._failures = 0
        self._retry_timer: int | None = None

    @property
    def is_registered(self) -> bool:
        return self.state == "registered"

    def register(self) -> None:
        """Send REGISTER now; the result comes as a notification."""
        with self._lock:
            self._check_state(("unregistered", "failed"), "register")
            core = self._core()
            self._cancel_retry()
            if self._handle is None:
                creds = self.credentials
                from_header = FromHeader(self.uri, self.display_name)
                self._handle = core.create_handle(
                    self, creds.username if creds else None, creds.password if creds else None,
                    [("to", str(from_header)), ("from", str(from_header)),
                     ("initial_route", route_header(self.route))],
                )
            self.state = "registering"
            core.command(self._handle, "register", self._register_tags())

    def _register_tags(self) -> list:
        from sipsimple.core.engine import Engine

        contact = Engine().contact_uri(self.uri.user, self.contact_transport)
        display = f'"{self.display_name}" ' if self.display_name else ""
        return [("contact", f"{display}<{contact}>"), ("expires", str(self.duration))]

    def end(self) -> None:
        """Unregister (or stop retrying); ``SCRegistrationDidEnd`` follows."""
        with self._lock:
            if self.state in ("unregistered", "unregistering"):
                return
            self._cancel_retry()
            self._post("SCRegistrationWillEnd")
            if self.state in ("registered", "registering") and self._handle is not None:
                self.state = "unregistering"
                try:
                    self._core().command(self._handle, "unregister", None)
                    return
                except Exception:
                    pass
            self._ended(0, "Registration ended")

    def _ended(self, code: int, reason: str) -> None:
        self.state = "unregistered"
        self.expires = None
        self._release()
        self._post("SCRegistrationDidEnd", code=code, reason=reason)

    def _cancel_retry(self) -> None:
        if self._retry_timer is not None:
            try:
                self._core().cancel_timer(self._retry_timer)
            except Exception:
                pass
            self._retry_timer = None

    def _retry(self) -> None:
        with self._lock:
            self._retry_timer = None
            if self.state == "failed":
                self.state = "unregistered"
                try:
                    self.register()
                except Exception as exc:  # the engine went away: nothing left to retry on
                    self._post("SCRegistrationDidFail", code=0, reason=str(exc), will_retry_in=None)

    def _engine_stopped(self) -> None:
        with self._lock:
            self._retry_timer = None
            self._handle = None
            if self.state != "unregistered":
                self._ended(0, "Engine stopped")

    # -------------------------------------------------------- engine thread

    def _handle_event(self, event) -> None:
        with self._lock:
            if event.name == "nua_r_register":
                self._got_register_response(event)
            elif event.name == "nua_r_unregister" and event.status >= 200 and not event.auth_retry:
                if self.state == "unregistering":
                    self._ended(event.status, event.reason or "")

    def _got_register_response(self, event) -> None:
        if event.status < 200 or event.auth_retry:
            return
        if self.state == "unregistering":
            if event.status >= 300:
                # end() came while the REGISTER was out and it failed: nothing left to unregister
                self._ended(event.status, event.reason or "")
            return
        message = event.message
        if 200 <= event.status < 300:
            contacts = message.contact_headers if message is not None else []
            ours = self._our_contact(contacts)
            self.expires = (ours.expires if ours and ours.expires is not None
                            else (message.expires if message and message.expires is not None else self.duration))
            self.contact_header = ours
            self._failures = 0
            self.state = "registered"
            self._post("SCRegistrationDidSucceed", code=event.status, reason=event.reason or "",
                       contact_header=ours, contact_header_list=contacts, expires=self.expires)
            return
        self.state = "failed"
        self.expires = None
        # Sofia keeps a challenged request waiting for credentials on its handle: retry on a new one
        self._release()
        self._failures += 1
        delay = min(self.retry_interval * 2 ** (self._failures - 1), self.max_retry_interval)
        retry_after = message.header("retry-after") if message is not None else None
        if retry_after and retry_after.split()[0].isdigit():
            delay = max(delay, float(retry_after.split()[0]))
        try:
            self._retry_timer = self._core().call_later(delay, self._retry)
        except Exception:
            delay = None
        self._post("SCRegistrationDidFail", code=event.status, reason=event.reason or "", will_retry_in=delay)

    def _our_contact(self, contacts):
        from sipsimple.core.engine import Engine

        engine = Engine()
        for contact in contacts:
            uri = contact.uri
            if uri.user == self.uri.user and uri.host == engine.local_ip and uri.port in (
                    engine.udp_port, engine.tcp_port, engine.tls_port):
                return contact
        return contacts[0] if len(contacts) == 1 else None
