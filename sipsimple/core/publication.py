"""Publication: PUBLISH event state (e.g. presence) to a compositor (RFC 3903).

Sofia-SIP keeps the entity tag: the first ``publish(body)`` sends the body, a
later one sends the new body with ``SIP-If-Match``, refreshes before expiry go
without a body with ``SIP-If-Match`` (measured against Kamailio), and ``end()``
sends ``Expires: 0``. A 412 (the compositor forgot our entity tag) is answered
by publishing the last body afresh, once.

States: ``idle`` -> ``publishing`` (PUBLISH sent) -> ``published`` ->
``unpublishing`` (``end()``) -> ``idle``. ``publish()`` while a PUBLISH is on
its way sends the newest body once that one is answered.

Notifications (sender: the Publication):

- ``SCPublicationDidSucceed``: a 2xx to PUBLISH (first, modify or refresh);
  data: ``code``, ``reason``, ``expires`` (seconds granted), ``etag`` (the
  SIP-ETag), ``refreshed`` (True for a refresh Sofia-SIP sent by itself).
- ``SCPublicationDidFail``: a PUBLISH failed (a failure response, wrong
  credentials -> 401/407, 408 when nobody answered, 0 when the engine stopped);
  data: ``code``, ``reason``. The compositor holds nothing of ours afterwards:
  the state is ``idle`` and ``publish()`` may be called again.
- ``SCPublicationWillEnd``: ``end()`` is removing the publication.
- ``SCPublicationDidEnd``: it is removed; data: ``code``, ``reason`` (of the
  response to the removing PUBLISH; 0 when nothing was sent or the engine stopped).
"""

from __future__ import annotations

from sipsimple.core.headers import FromHeader
from sipsimple.core.primitive import (
    Primitive,
    check_credentials_and_route,
    checked_content_type,
    checked_duration,
    checked_event,
    route_header,
)
from sipsimple.core.subscription import headers_text
from sipsimple.core.uri import SIPURI, Credentials, Route

__all__ = ["Publication"]


class Publication(Primitive):
    """Publishes ``event`` state of ``from_header`` (a SIPURI is accepted too)."""

    def __init__(
        self,
        from_header: FromHeader | SIPURI,
        event: str = "presence",
        content_type: str = "application/pidf+xml",
        credentials: Credentials | None = None,
        route: Route | None = None,
        duration: int = 600,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.from_header = from_header if isinstance(from_header, FromHeader) else FromHeader(from_header)
        checked_event(event)
        checked_content_type(content_type)
        checked_duration(duration)
        check_credentials_and_route(credentials, route)
        self.event = event
        self.content_type = content_type
        self.credentials = credentials
        self.route = route
        self.duration = duration
        self._headers = headers_text(extra_headers)
        self.state = "idle"
        self.etag: str | None = None
        self.expires: int | None = None
        self.body: bytes | None = None      # the last body sent
        self._queued: bytes | None = None   # a body given while a PUBLISH was on its way
        self._in_flight = False
        self._end_requested = False
        self._republished = False           # a 412 was answered by a fresh PUBLISH

    # ------------------------------------------------------------ public

    def publish(self, body: str | bytes) -> None:
        """Publish ``body`` (the first time, or as a modification)."""
        if not isinstance(body, (str, bytes)):
            raise TypeError("the body must be str or bytes")
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        with self._lock:
            self._check_state(("idle", "publishing", "published"), "publish")
            if self._in_flight:
                self._queued = data
                return
            if self.state == "idle":
                self._republished = False
            self._send(data)

    def end(self) -> None:
        """Remove the publication (PUBLISH with Expires: 0); ``SCPublicationDidEnd`` follows."""
        with self._lock:
            if self.state in ("idle", "unpublishing"):
                return
            self._post("SCPublicationWillEnd")
            self.state = "unpublishing"
            self._queued = None
            self._end_requested = True
            if not self._in_flight:
                self._send_unpublish()

    # ----------------------------------------------------------- helpers

    def _send(self, data: bytes) -> None:
        core = self._core()
        if self._handle is None:
            creds = self.credentials
            self._handle = core.create_handle(
                self, creds.username if creds else None, creds.password if creds else None,
                [("to", str(self.from_header)), ("from", str(self.from_header)),
                 ("initial_route", route_header(self.route))],
            )
        core.command(self._handle, "publish", [
            ("event", self.event), ("content_type", self.content_type), ("payload", data),
            ("expires", str(self.duration)), ("header", self._headers),
        ])
        self.body = data
        self._in_flight = True
        if self.state == "idle":
            self.state = "publishing"

    def _send_unpublish(self) -> None:
        if self.etag is None or self._handle is None:
            self._ended(0, "Nothing published")
            return
        try:
            self._core().command(self._handle, "unpublish", [("header", self._headers)])
            self._in_flight = True
        except Exception as exc:
            self._ended(0, str(exc))

    def _ended(self, code: int, reason: str) -> None:
        self._reset()
        self._post("SCPublicationDidEnd", code=code, reason=reason)

    def _reset(self) -> None:
        self.state = "idle"
        self.etag = None
        self.expires = None
        self._queued = None
        self._in_flight = False
        self._end_requested = False
        # a failed PUBLISH may be waiting for credentials on its handle: the next one gets a new one
        self._release()

    def _engine_stopped(self) -> None:
        with self._lock:
            self._handle = None
            if self.state == "unpublishing":
                self._ended(0, "Engine stopped")
            elif self.state != "idle":
                self._reset()
                self._post("SCPublicationDidFail", code=0, reason="Engine stopped")

    # ------------------------------------------------------ engine thread

    def _handle_event(self, event) -> None:
        with self._lock:
            if event.status < 200 or event.auth_retry:
                return
            if event.name == "nua_r_publish":
                self._got_publish_response(event)
            elif event.name == "nua_r_unpublish" and self.state == "unpublishing":
                self._ended(event.status, event.reason or "")

    def _got_publish_response(self, event) -> None:
        refreshed = not self._in_flight   # Sofia-SIP refreshed on its own
        self._in_flight = False
        reason = event.reason or ""
        if 200 <= event.status < 300:
            message = event.message
            etag = message.header("sip-etag") if message is not None else None
            self.etag = etag or self.etag
            self.expires = message.expires if message is not None and message.expires is not None \
                else self.duration
            if self.state == "unpublishing":
                self._send_unpublish()
                return
            self.state = "published"
            self._post("SCPublicationDidSucceed", code=event.status, reason=reason, expires=self.expires,
                       etag=self.etag, refreshed=refreshed)
            if self._queued is not None:
                data, self._queued = self._queued, None
                self._send(data)
            return
        if self.state == "unpublishing":
            self._ended(event.status, reason)
            return
        if event.status == 412 and not self._republished and self.body is not None:
            # RFC 3903 6: the compositor lost our entity tag: publish afresh on a new handle
            self._republished = True
            data = self._queued if self._queued is not None else self.body
            self._queued = None
            self._release()
            self.etag = None
            self.state = "idle"
            try:
                self._send(data)
                return
            except Exception:
                pass
        self._reset()
        self._post("SCPublicationDidFail", code=event.status, reason=reason)
