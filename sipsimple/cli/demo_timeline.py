"""The timeline and the checks of ``sipsimple demo``.

:class:`Timeline` observes every notification; the main thread consumes them in
arrival order, prints each as one line (time since start, name, who sent it, the
data that matters) and keeps them. Waiting is always for a notification, with a
timeout: ``wait(predicate, since=mark)`` looks at what arrived since ``mark``
(taken before the action, so nothing that came early is missed) and then at what
comes, until the deadline. :class:`Report` collects the OK/FAIL checks and prints
the summary.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipsimple.cli.options import out

__all__ = ["Timeline", "Report", "Check", "StepFailed", "describe", "named", "STEP_TIMEOUT"]

log = logging.getLogger("sipsimple.cli.demo")

STEP_TIMEOUT = 5.0  # every signalling step takes milliseconds on loopback
NAME_WIDTH = 40     # the longest notification names (SIPAccountPresenceSubscriptionDidSucceed)
# data that is an object graph rather than something to read on one line
_BULKY = {"timestamp", "message", "sdp", "registration", "cpim_headers", "account", "old_account", "watchers",
          "local_path", "remote_path"}


class StepFailed(Exception):
    """A step of the demo did not go as it should; the message says what was missing."""


def _short(value: Any, limit: int = 60) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.replace("\r", "").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _user_of(uri_or_header: Any) -> str:
    uri = getattr(uri_or_header, "uri", uri_or_header)
    return getattr(uri, "user", None) or "?"


def _presence_text(state: Any) -> str:
    if state is None:
        return "(nothing)"
    text = state.status
    if state.note:
        text += f' "{state.note}"'
    if state.activity:
        text += f" ({state.activity})"
    return text


def describe(notification: Any) -> str:
    """The key data of a notification, in one line."""
    name, data = notification.name, notification.data
    if data is None:
        return ""
    get = data.get if hasattr(data, "get") else (lambda key, default=None: getattr(data, key, default))
    if name == "SCEngineDidStart":
        ports = ", ".join(f"{t}={get(f'{t}_port')}" for t in ("udp", "tcp", "tls") if get(f"{t}_port"))
        return f"local_ip={get('local_ip')} {ports}"
    if name == "SCEngineSIPTrace":
        arrow = "<--" if get("direction") == "in" else "-->"
        first = _short((get("data") or b"").split(b"\r\n", 1)[0], 70)
        peer = (f"{get('source_ip')}:{get('source_port')}" if get("direction") == "in"
                else f"{get('destination_ip')}:{get('destination_port')}")
        return f"{arrow} {str(get('transport')).upper()} {peer} {first}"
    if name == "SCInvitationChangedState":
        text = f"{get('prev_state')} -> {get('state')}"
        if get("sub_state") != "normal" or get("prev_sub_state") != "normal":
            text += f" ({get('prev_sub_state')} -> {get('sub_state')})"
        if get("code"):
            text += f" {get('code')} {get('reason') or ''}".rstrip()
        return text
    if name == "SCSessionChangedState":
        return f"{get('prev_state')} -> {get('state')}"
    if name in ("SCSessionGotMessage", "MSRPChatGotMessage"):
        return f'{get("content_type")} "{_short(get("content"), 50)}"'
    if name in ("SCSessionDidDeliverMessage", "SCSessionDidNotDeliverMessage",
                "MSRPChatDidDeliverMessage", "MSRPChatDidNotDeliverMessage"):
        return f"message {_short(get('message_id'), 16)}: {get('code')} {get('reason')}"
    if name in ("SCSessionFileTransferProgress", "MSRPFileTransferGotProgress"):
        total = get("total_bytes") or 0
        done = get("transferred_bytes") or 0
        percent = f" ({100 * done / total:.0f}%)" if total else ""
        direction = get("direction")
        return (f"{direction} " if direction else "") + f"{done}/{total} bytes{percent}"
    if name in ("SCSessionGotFile", "SCSessionDidDeliverFile", "MSRPFileTransferGotFile",
                "MSRPFileTransferDidDeliverFile"):
        path = get("file_name")
        return f"{os.path.basename(str(path)) if path else ''} {get('size')} bytes {_short(get('hash'), 30)}"
    if name.endswith("RecordingAudio"):
        return os.path.basename(str(get("file_name")))
    if name == "SIPAccountGotPresenceState":
        return f"{get('uri')} is {_presence_text(get('state'))} (was {_presence_text(get('previous'))})"
    if name in ("SIPAccountPresenceDidPublish", "SIPAccountPresenceDidFail"):
        text = f"{get('code')} {get('reason')} {_presence_text(get('state'))}"
        retry = get("will_retry_in")
        return text + (f" (retry in {retry:g} s)" if retry else "")
    if name == "SCSubscriptionGotNotify":
        from sipsimple.account.presence import state_from_notify

        state = state_from_notify(get("content_type"), get("body")) if get("body") else None
        return f"{get('event')} {get('subscription_state')}" + (f": {_presence_text(state)}" if state else "")
    if name == "SCIncomingSubscriptionGotSubscribe":
        sender = getattr(get("from_header"), "uri", get("from_header"))
        return f"{sender} asks for {get('event')} (expires {get('expires')})"
    if name == "SCEngineGotMessage":
        sender = getattr(get("from_header"), "uri", get("from_header"))
        return f'{sender} -> {get("request_uri")}: "{_short(get("body", b""))}" ({get("content_type")})'
    if name in ("SCRegistrationDidSucceed", "SIPAccountRegistrationDidSucceed"):
        contact = getattr(get("contact_header"), "uri", None)
        return f"{get('code')} {get('reason')} contact={contact} expires={get('expires')}"
    if name in ("SIPAccountManagerDidAddAccount", "SIPAccountManagerDidRemoveAccount"):
        return str(getattr(get("account"), "id", get("account")))
    if name.startswith("CFGSettingsObject"):
        what = getattr(notification.sender, "id", type(notification.sender).__name__)
        changed = get("modified") if name == "CFGSettingsObjectDidChange" else None
        return f"{what}" + (": " + ", ".join(sorted(changed)) if changed else "")
    if name == "SIPAccountManagerDidChangeDefaultAccount":
        return f"{getattr(get('old_account'), 'id', None)} -> {getattr(get('account'), 'id', None)}"
    items = getattr(data, "__dict__", {})
    return " ".join(f"{k}={_short(v, 40)}" for k, v in items.items()
                    if k not in _BULKY and (v is None or isinstance(v, str | int | float | bool | list | tuple)))


def named(name: str, sender: Any = None, **data: Any) -> Callable[[Any], bool]:
    """A predicate: notification ``name`` (from ``sender``) whose data has these values."""
    def match(notification: Any) -> bool:
        if notification.name != name or (sender is not None and notification.sender is not sender):
            return False
        return all(getattr(notification.data, key, None) == value for key, value in data.items())
    return match


class Timeline:
    """Every notification, printed by the main thread as it consumes them, and kept for the waits."""

    def __init__(self, trace: bool = False) -> None:
        from sipsimple.notification import NotificationCenter

        self.trace = trace
        self.start = time.monotonic()
        self.history: list[Any] = []
        self.labels: dict[int, str] = {}
        self._queue: queue.SimpleQueue[tuple[float, Any]] = queue.SimpleQueue()
        NotificationCenter().add_observer(self)

    def __call__(self, notification: Any) -> None:
        # on whatever thread posts it: only queue it
        self._queue.put((time.monotonic(), notification))

    def close(self) -> None:
        from sipsimple.notification import NotificationCenter

        NotificationCenter().discard_observer(self)

    # -------------------------------------------------------------- output

    def label(self, sender: Any, text: str) -> Any:
        """Show ``text`` as the sender's name in the timeline; returns ``sender``."""
        self.labels[id(sender)] = text
        return sender

    def who(self, sender: Any) -> str | None:
        """The sender's label; objects the middleware makes itself are named by their parties."""
        label = self.labels.get(id(sender))
        if label is not None:
            return label
        kind = type(sender).__name__
        if kind in ("Invitation", "Subscription"):
            what = f"dialog ({sender.direction})" if kind == "Invitation" else "subscription"
            return f"{_user_of(sender.from_header)}->{_user_of(sender.to_header)} {what}"
        if kind == "IncomingSubscription":
            return f"{_user_of(sender.to_header)}'s notifier for {_user_of(sender.from_header)}"
        if kind == "Publication":
            return f"{_user_of(sender.from_header)}'s publication"
        if kind == "Session":  # an incoming one, before the demo could name it
            user = _user_of(sender.local_uri)
            return f"{user}'s {'file transfer' if sender.proposed_file is not None else 'call'}"
        if kind in ("MSRPChat", "MSRPFileTransfer"):
            user = getattr(sender.account, "user", None) or "?"
            return f"{user}'s {'chat' if kind == 'MSRPChat' else 'file stream'}"
        return None

    def note(self, text: str) -> None:
        out(f"  +{time.monotonic() - self.start:7.3f}s  {'--':<{NAME_WIDTH}} {text}")

    def _print(self, when: float, notification: Any) -> None:
        if notification.name == "SCEngineSIPTrace" and not self.trace:
            return
        who = self.who(notification.sender)
        who = f"[{who}] " if who else ""
        out(f"  +{when - self.start:7.3f}s  {notification.name:<{NAME_WIDTH}} {who}{describe(notification)}")

    # ------------------------------------------------------------- waiting

    def _consume(self, timeout: float) -> bool:
        try:
            when, notification = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return False
        self.history.append(notification)
        self._print(when, notification)
        return True

    def drain(self) -> None:
        """Take in (and print) everything posted so far."""
        while self._consume(0):
            pass

    def mark(self) -> int:
        """A position in the history: take it before an action, wait with ``since=`` it."""
        self.drain()
        return len(self.history)

    def wait(self, predicate: Callable[[Any], bool], timeout: float = STEP_TIMEOUT, since: int = 0) -> Any:
        """The first notification since ``since`` that matches; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.history):
                notification = self.history[index]
                index += 1
                if predicate(notification):
                    return notification
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._consume(min(left, 0.1))  # short slices: Ctrl-C is seen at once

    def expect(self, predicate: Callable[[Any], bool], what: str, timeout: float = STEP_TIMEOUT,
               since: int = 0) -> Any:
        """Like :meth:`wait`, but a missing notification raises StepFailed("no <what> ...")."""
        notification = self.wait(predicate, timeout, since)
        if notification is None:
            raise StepFailed(f"no {what} within {timeout:g} s")
        return notification

    def expect_all(self, expected: dict[str, Callable[[Any], bool]], timeout: float = STEP_TIMEOUT,
                   since: int = 0) -> dict[str, Any]:
        """Every one of ``{what: predicate}`` (in any order) within one deadline."""
        deadline = time.monotonic() + timeout
        found = {}
        for what, predicate in expected.items():
            found[what] = self.expect(predicate, what, max(0.0, deadline - time.monotonic()), since)
        return found

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """For state no notification announces (audio filling a tap): look every 50 ms, printing events."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._consume(min(left, 0.05))
        return True


# ------------------------------------------------------------------ checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Report:
    """The OK/FAIL checks, noted in the timeline as they are made and listed in the summary."""

    timeline: Timeline
    checks: list[Check] = field(default_factory=list)

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        self.timeline.drain()  # what led to the verdict is printed before it
        self.checks.append(Check(name, ok, detail))
        self.timeline.note(f"{'OK' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""))
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def summary(self, elapsed: float, interrupted: bool = False) -> bool:
        out()
        out("Summary")
        for check in self.checks:
            out(f"  {'OK  ' if check.ok else 'FAIL'}  {check.name}" + (f": {check.detail}" if check.detail else ""))
        failed = sum(not c.ok for c in self.checks)
        if interrupted:
            verdict = f"interrupted after {len(self.checks)} checks ({failed} FAILED)"
        elif self.ok:
            verdict = f"all {len(self.checks)} checks OK"
        else:
            verdict = f"{failed} of {len(self.checks)} checks FAILED"
        out(f"{verdict} in {elapsed:.1f} s")
        return self.ok and not interrupted
