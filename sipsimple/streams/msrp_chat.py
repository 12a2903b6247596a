"""MSRPChat: the chat stream of a Session (RFC 4975 MSRP, CPIM wrapping, is-composing).

Our m-line::

    m=message PORT TCP/MSRP *            (TCP/TLS/MSRP through an msrps: relay)
    a=path:msrp://...                    (relay hops first when the account has ``msrp_relay``)
    a=accept-types:message/cpim text/* application/im-iscomposing+xml
    a=accept-wrapped-types:*
    a=setup:actpass                      (in offers; active/passive in answers, RFC 6135)

Messages are wrapped in message/cpim (From, To, DateTime) when the peer accepts it,
else sent as they are if the peer accepts their type. ``send_message`` returns the
message id at once, from any thread; messages sent before the connection is up wait in a
queue and go out in order once it is (or are reported undelivered if it never comes up).
Every message asks for a success report; the outcome is DidDeliverMessage or
DidNotDeliverMessage. Incoming messages of types we do not accept are refused with 415.

Notifications (sender: the MSRPChat), besides the life cycle ones of
:mod:`sipsimple.streams.msrp_base` (MSRPChatDidInitialize, DidStart, DidFail, WillEnd, DidEnd):

- ``MSRPChatGotMessage``: content (str for text/*, else bytes), content_type, cpim_headers
  (dict: From, To, DateTime, ... -- empty when the message was not CPIM), message (the first
  MSRPData frame of the message).
- ``MSRPChatGotComposingIndication``: state ("active"/"idle"), refresh, last_active,
  content_type, cpim_headers.
- ``MSRPChatDidDeliverMessage``: message_id, code, reason, message (the REPORT or 200 frame).
- ``MSRPChatDidNotDeliverMessage``: message_id, code (MSRP code; 0 for a local failure such
  as a lost connection), reason, message (the failure frame, or None).
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sipsimple.core.sdp import SDPAttribute
from sipsimple.middleware import MiddlewareLoop
from sipsimple.msrp.cpim import CPIM_CONTENT_TYPE, CPIMIdentity, CPIMMessage
from sipsimple.msrp.errors import CPIMError, IsComposingError, MSRPError, MSRPTransactionError
from sipsimple.msrp.iscomposing import ISCOMPOSING_CONTENT_TYPE, IsComposingDocument
from sipsimple.msrp.message import new_message_id
from sipsimple.msrp.messages import IncomingMessage, MemorySink
from sipsimple.streams.msrp_base import MSRPStreamBase, error_code
from sipsimple.streams.msrp_sdp import parse_types

__all__ = ["MSRPChat", "ACCEPT_TYPES", "ACCEPT_WRAPPED_TYPES"]

ACCEPT_TYPES = ["message/cpim", "text/*", ISCOMPOSING_CONTENT_TYPE]
ACCEPT_WRAPPED_TYPES = ["*"]
MAX_MESSAGE_SIZE = 16 * 1024 * 1024


@dataclass
class _Pending:
    message_id: str
    content: bytes
    content_type: str
    to_uri: Any
    dt: datetime
    report: bool


def _type_of(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _accepted(content_type: str, types: list[str]) -> bool:
    content_type = _type_of(content_type)
    return any(pattern == "*" or fnmatch.fnmatchcase(content_type, pattern.lower()) for pattern in types)


def _decode(content: bytes, content_type: str) -> str | bytes:
    if _type_of(content_type).startswith("text/"):
        return content.decode("utf-8", "replace")
    return content


class MSRPChat(MSRPStreamBase):
    """The chat stream; ``local_uri``/``remote_uri`` (SIPURIs) are the CPIM From/To defaults."""

    type = "chat"
    prefix = "MSRPChat"

    def __init__(self, account: Any, local_uri: Any = None, remote_uri: Any = None,
                 local_ip: str | None = None) -> None:
        super().__init__(account, local_ip)
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.accept_types = list(ACCEPT_TYPES)
        self.accept_wrapped_types = list(ACCEPT_WRAPPED_TYPES)
        self.remote_accept_types: list[str] = []
        self.remote_accept_wrapped_types: list[str] = []
        self._queue: deque[_Pending] = deque()

    # -------------------------------------------------------------------- SDP

    def _attributes(self, offer: bool) -> list[SDPAttribute]:
        return [SDPAttribute("accept-types", " ".join(self.accept_types)),
                SDPAttribute("accept-wrapped-types", " ".join(self.accept_wrapped_types))]

    def _check_remote(self, remote_media):
        path = super()._check_remote(remote_media)
        attributes = remote_media.attributes
        self.remote_accept_types = parse_types(attributes.getfirst("accept-types") or "*")
        wrapped = attributes.getfirst("accept-wrapped-types")
        self.remote_accept_wrapped_types = parse_types(wrapped) if wrapped else []
        return path

    # ---------------------------------------------------------------- sending

    def send_message(self, content: str | bytes, content_type: str = "text/plain", to_uri: Any = None,
                     dt: datetime | None = None) -> str:
        """Queue a message (any thread); returns its message id at once."""
        return self._enqueue(content, content_type, to_uri, dt, report=True)

    def send_composing_indication(self, state: str, refresh: int | None = None,
                                  last_active: datetime | None = None, content_type: str | None = None) -> str:
        """Send an is-composing indication (RFC 3994); no delivery notifications follow it."""
        document = IsComposingDocument(state, last_active, content_type, refresh)
        return self._enqueue(document.to_xml(), ISCOMPOSING_CONTENT_TYPE, None, None, report=False)

    def _enqueue(self, content: str | bytes, content_type: str, to_uri: Any, dt: datetime | None,
                 report: bool) -> str:
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not isinstance(content, bytes | bytearray):
            raise TypeError("content must be str or bytes")
        if not content_type or "/" not in content_type:
            raise ValueError(f"bad content type {content_type!r}")
        item = _Pending(new_message_id(), bytes(content), content_type, to_uri, dt or datetime.now(UTC), report)
        MiddlewareLoop().call_soon(self._push, item)
        return item.message_id

    def _push(self, item: _Pending) -> None:
        if self.state in ("ending", "ended", "failed"):
            code, reason = self.failure or (0, "the chat stream has ended")
            self._not_delivered(item, code, reason, None)
        elif self.state == "started" and not self._queue:
            self._send(item)
        else:
            self._queue.append(item)

    def _started(self) -> None:
        while self._queue and self.state == "started":
            self._send(self._queue.popleft())

    def _failed(self, code: int, reason: str) -> None:
        queued, self._queue = self._queue, deque()
        for item in queued:
            self._not_delivered(item, code, reason, None)

    def _wrap(self, item: _Pending) -> tuple[bytes, str]:
        if _accepted(CPIM_CONTENT_TYPE, self.remote_accept_types) and (
                not self.remote_accept_wrapped_types or _accepted(item.content_type, self.remote_accept_wrapped_types)
                or _accepted(item.content_type, self.remote_accept_types)):
            sender = CPIMIdentity(str(self.local_uri), getattr(self.account, "display_name", None)) \
                if self.local_uri is not None else None
            to_uri = item.to_uri if item.to_uri is not None else self.remote_uri
            recipients = [CPIMIdentity(str(to_uri))] if to_uri is not None else []
            cpim = CPIMMessage(item.content, item.content_type, sender=sender, recipients=recipients,
                               timestamp=item.dt)
            return cpim.encode(), CPIM_CONTENT_TYPE
        if _accepted(item.content_type, self.remote_accept_types):
            return item.content, item.content_type
        raise MSRPTransactionError(415, f"the other party does not accept {item.content_type}")

    def _send(self, item: _Pending) -> None:
        assert self.msrp is not None
        try:
            body, content_type = self._wrap(item)
            outgoing = self.msrp.send_message(body, content_type, message_id=item.message_id,
                                              success_report=item.report,
                                              failure_report="yes" if item.report else "no")
        except (MSRPError, CPIMError, ValueError) as exc:
            self._not_delivered(item, error_code(exc), str(exc), None)
            return
        if item.report:
            asyncio.get_running_loop().create_task(self._outcome(item, outgoing))

    async def _outcome(self, item: _Pending, outgoing) -> None:
        try:
            result = await outgoing.wait()
        except MSRPError as exc:
            self._not_delivered(item, error_code(exc), getattr(exc, "comment", None) or str(exc),
                                outgoing.last_response if error_code(exc) else None)
            return
        except asyncio.CancelledError:
            self._not_delivered(item, 0, "the chat stream has ended", None)
            raise
        self._post("DidDeliverMessage", message_id=item.message_id, code=result.code, reason=result.comment,
                   message=result.frame)

    def _not_delivered(self, item: _Pending, code: int, reason: str, frame) -> None:
        if item.report:
            self._post("DidNotDeliverMessage", message_id=item.message_id, code=code, reason=reason,
                       message=frame)

    # -------------------------------------------------------------- receiving

    def _session_callbacks(self) -> dict[str, Any]:
        return {"on_incoming": self._incoming, "on_message": self._received}

    def _incoming(self, message: IncomingMessage) -> MemorySink:
        if not _accepted(message.content_type or "", self.accept_types):
            raise MSRPTransactionError(415, "Unsupported Media Type")
        if message.total is not None and message.total > MAX_MESSAGE_SIZE:
            raise MSRPTransactionError(413, "Message Too Large")
        return MemorySink(MAX_MESSAGE_SIZE)

    def _received(self, message: IncomingMessage) -> None:
        body = message.body
        content_type = _type_of(message.content_type)
        headers: dict[str, object] = {}
        if content_type == CPIM_CONTENT_TYPE:
            try:
                cpim = CPIMMessage.parse(body)
            except CPIMError as exc:
                self._post_bad(message, f"bad CPIM: {exc}")
                return
            body, content_type, headers = cpim.content, cpim.content_type, cpim.headers_dict()
        if _type_of(content_type) == ISCOMPOSING_CONTENT_TYPE:
            try:
                document = IsComposingDocument.parse(body)
            except IsComposingError as exc:
                self._post_bad(message, f"bad is-composing document: {exc}")
                return
            self._post("GotComposingIndication", state=document.state, refresh=document.refresh,
                       last_active=document.last_active, content_type=document.content_type,
                       cpim_headers=headers)
            return
        self._post("GotMessage", content=_decode(body, content_type), content_type=content_type,
                   cpim_headers=headers, message=message.first_frame)

    def _post_bad(self, message: IncomingMessage, reason: str) -> None:
        # delivered at the MSRP level already; hand it over raw rather than drop it
        self._post("GotMessage", content=message.body, content_type=_type_of(message.content_type),
                   cpim_headers={}, message=message.first_frame, error=reason)
