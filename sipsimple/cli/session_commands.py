"""The keyboard side of ``sipsimple session``: the table of sessions on screen, the commands typed
(``/call``, ``/hold``, ``/dtmf``, ...) and the rule of one live call at a time.

:class:`SoftphoneCommands` is mixed into :class:`sipsimple.cli.session.Softphone`, which
owns the sessions and their notifications; what it uses of it is declared on the class.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from sipsimple.cli.call import DTMF_DIGITS, DTMF_PAUSE
from sipsimple.cli.options import CLIError, out, parse_target

__all__ = ["Entry", "SoftphoneCommands", "HELP_TEXT", "DTMF_INTERVAL"]

DTMF_INTERVAL = 0.1 + DTMF_PAUSE  # a digit's 100 ms, then a pause

HELP_TEXT = """\
/call URI [--chat] [--no-audio]  start a session (audio; --chat: with chat)
/answer [N]        accept an incoming session or a proposed stream
/reject [N]        decline it
/hang [N]          end the session (also /end)
/hold  /unhold     put the other party on hold, and back
/record [FILE]     start recording the audio (again: stop)
/dtmf DIGITS       send DTMF digits
/chat  /nochat     add or remove chat
/audio /noaudio    add or remove audio
/switch N          talk to session N (the call left goes on hold; back: it resumes)
/sessions          list the sessions
/quit              end everything and exit
any other line     a chat message to the current session (//text sends /text)"""


@dataclass(eq=False)
class Entry:
    """One session on screen."""

    number: int
    session: Any
    offered: list[str] = field(default_factory=list)  # what an incoming session offers
    proposal: list[str] = field(default_factory=list)  # what the other party proposes to add
    streams: list[str] = field(default_factory=list)  # as last printed
    dtmf: list[str] = field(default_factory=list)
    next_dtmf_at: float = 0.0
    update: str | None = None  # what our pending re-INVITE does, e.g. "hold"
    held_by_user: bool = False  # /hold put it on hold: only /unhold takes it off
    auto_held: bool = False  # held because the keyboard went to another session: switching back resumes it
    hold_wanted: bool | None = None  # an automatic hold (True) or resume (False) the session could not take yet
    pending: set[str] = field(default_factory=set)  # ids of typed messages not yet (not) delivered

    @property
    def waiting(self) -> bool:
        """Whether it waits for /answer or /reject."""
        state = self.session.state
        return state == "INCOMING" or (state == "PROPOSED" and bool(self.proposal))


class SoftphoneCommands:
    """The commands typed, and the holds that follow the keyboard from call to call."""

    # provided by the Softphone this is mixed into
    settings: Any  # sipsimple.cli.options.Settings
    entries: list[Entry]  # the sessions on screen, in the order they came
    current: Entry | None  # the one commands and typed text go to

    def call(self, target, audio: bool = True, chat: bool = False) -> None:
        """Start a session to ``target`` (the Softphone's)."""
        raise NotImplementedError

    def _answer(self, entry: Entry) -> None:
        """Accept ``entry``'s incoming session or stream proposal (the Softphone's)."""
        raise NotImplementedError

    # ------------------------------------------------------------ output

    @staticmethod
    def say(entry: Entry, text: str) -> None:
        out(f"[{entry.number}] {text}")

    @staticmethod
    def error(text: str) -> None:
        out(f"error: {text}")

    # ------------------------------------------------------------ commands

    def command(self, line: str) -> str | None:
        """Run one line typed; "quit" when it asks to quit."""
        text = line.strip()
        if not text:
            return None
        if not text.startswith("/") or text.startswith("//"):
            self._send_message(line.strip()[1:] if text.startswith("//") else line.strip())
            return None
        try:
            words = shlex.split(text[1:])
        except ValueError as exc:
            self.error(f"cannot read {text!r}: {exc}")
            return None
        if not words:
            self.error("empty command; /help lists them")
            return None
        name, params = words[0].lower(), words[1:]
        if name in ("quit", "exit", "q"):
            return "quit"
        handler = self.COMMANDS.get(name)
        if handler is None:
            self.error(f"unknown command /{name}; /help lists them")
            return None
        try:
            handler(self, params)
        except CLIError as exc:
            self.error(str(exc))
        except Exception as exc:  # a session refusing in its state (SessionStateError), a bad argument
            self.error(str(exc) or type(exc).__name__)
        return None

    def _pick(self, params: list[str], waiting: bool = False) -> Entry:
        """The session ``[N]`` names, else (waiting=True) the current one if it waits, else the first that
        waits, else the current one."""
        if params:
            number = params[0].lstrip("[").rstrip("]")
            entry = next((e for e in self.entries if str(e.number) == number), None)
            if entry is None:
                raise CLIError(f"no session {params[0]}; /sessions lists them")
            return entry
        if waiting:
            if self.current is not None and self.current.waiting:
                return self.current
            entry = next((e for e in self.entries if e.waiting), None)
            if entry is not None:
                return entry
        if self.current is None:
            raise CLIError("no session; start one with /call URI")
        return self.current

    def _cmd_call(self, params: list[str]) -> None:
        options = [p for p in params if p.startswith("--")]
        uris = [p for p in params if not p.startswith("--")]
        unknown = [o for o in options if o not in ("--chat", "--no-audio")]
        if len(uris) != 1 or unknown:
            raise CLIError("usage: /call URI [--chat] [--no-audio]")
        chat, audio = "--chat" in options, "--no-audio" not in options
        if not audio and not chat:
            raise CLIError("--no-audio needs --chat (a session needs a stream)")
        domain = self.settings.account.host if self.settings.account else None
        self.call(parse_target(uris[0], domain), audio=audio, chat=chat)

    def _cmd_answer(self, params: list[str]) -> None:
        entry = self._pick(params, waiting=True)
        if not entry.waiting:
            raise CLIError(f"[{entry.number}] has nothing to answer")
        self._answer(entry)

    def _cmd_reject(self, params: list[str]) -> None:
        entry = self._pick(params, waiting=True)
        if entry.session.state == "INCOMING":
            self.say(entry, "declining")
            entry.session.reject()
        elif entry.waiting:
            entry.proposal = []
            entry.session.reject_proposal()
        else:
            raise CLIError(f"[{entry.number}] has nothing to reject; /hang ends it")

    def _cmd_hang(self, params: list[str]) -> None:
        entry = self._pick(params)
        if entry.session.state == "INCOMING":
            entry.session.reject()
        else:
            entry.session.end()

    def _update(self, label: str, action) -> Entry:
        entry = self._pick([])
        action(entry.session)
        entry.update = label
        return entry

    def _cmd_hold(self, params: list[str]) -> None:
        entry = self._pick([])
        if not entry.session.on_hold_by_local:  # else hold() has nothing to send
            self._update("hold", lambda session: session.hold())
        entry.held_by_user, entry.auto_held, entry.hold_wanted = True, False, None

    def _cmd_unhold(self, params: list[str]) -> None:
        entry = self._pick([])
        if entry.session.on_hold_by_local:
            self._update("unhold", lambda session: session.unhold())
        entry.held_by_user, entry.auto_held, entry.hold_wanted = False, False, None

    def _cmd_record(self, params: list[str]) -> None:
        session = self._pick([]).session
        if session.audio_recording_file_name is not None:
            session.stop_recording_audio()
        else:
            session.start_recording_audio(params[0] if params else None)

    def _cmd_dtmf(self, params: list[str]) -> None:
        digits = "".join(params).upper()
        if not digits or any(digit not in DTMF_DIGITS for digit in digits):
            raise CLIError(f"invalid DTMF digits {''.join(params)!r}: expected 0-9 * # A-D")
        entry = self._pick([])
        if entry.session.state != "ESTABLISHED" or not entry.session.has_audio:
            raise CLIError(f"[{entry.number}] has no established audio to send DTMF on")
        if not entry.dtmf:
            entry.next_dtmf_at = time.monotonic()
        entry.dtmf.extend(digits)

    def _send_dtmf(self) -> None:
        now = time.monotonic()
        for entry in self.entries:
            if entry.dtmf and now >= entry.next_dtmf_at:
                digit = entry.dtmf.pop(0)
                try:
                    entry.session.send_dtmf(digit)
                except Exception as exc:
                    entry.dtmf.clear()
                    self.error(f"[{entry.number}] cannot send DTMF: {exc}")
                    continue
                self.say(entry, f"dtmf sent: {digit}")
                entry.next_dtmf_at = now + DTMF_INTERVAL

    def _cmd_chat(self, params: list[str]) -> None:
        self._pick([]).session.add_chat()

    def _cmd_nochat(self, params: list[str]) -> None:
        self._update("chat removal", lambda session: session.remove_chat())

    def _cmd_audio(self, params: list[str]) -> None:
        self._pick([]).session.add_audio()

    def _cmd_noaudio(self, params: list[str]) -> None:
        self._update("audio removal", lambda session: session.remove_audio())

    def _cmd_switch(self, params: list[str]) -> None:
        if len(params) != 1:
            raise CLIError("usage: /switch N")
        entry = self._pick(params)
        self._make_current(entry)
        self._say_current(entry, stays_held=entry.held_by_user)
        if not entry.held_by_user:
            self._auto_hold(entry, False)

    def _say_current(self, entry: Entry, stays_held: bool) -> None:
        held = stays_held and entry.session.on_hold_by_local
        self.say(entry, "is the current session" + (" (on hold: /unhold resumes it)" if held else ""))

    # ------------------------------------------------------------ one live call at a time

    def _make_current(self, entry: Entry) -> None:
        """Give the keyboard to ``entry``; the session it leaves goes on hold (if it is a call)."""
        previous, self.current = self.current, entry
        if entry.hold_wanted:
            entry.hold_wanted = None  # left while still ringing, say, and back before it could be held
        if previous is not None and previous is not entry and previous in self.entries:
            self._auto_hold(previous, True)

    def _auto_hold(self, entry: Entry, hold: bool) -> None:
        """Hold (or resume) ``entry`` for the user, now or as soon as its session can take a re-INVITE."""
        if not hold and not entry.auto_held and entry.hold_wanted is None:
            return  # not held by us (never, or by /hold): nothing to resume
        entry.hold_wanted = hold
        self._apply_hold(entry)

    def _apply_holds(self) -> None:
        for entry in self.entries:
            if entry.hold_wanted is not None:
                self._apply_hold(entry)

    def _apply_hold(self, entry: Entry) -> None:
        from sipsimple.session import SessionStateError

        hold, session = entry.hold_wanted, entry.session
        if session.state != "ESTABLISHED":
            if session.state in ("TERMINATING", "TERMINATED"):
                entry.hold_wanted = None
            return  # still being set up, or a stream proposal under way: after it
        if entry.update is not None:
            # our last re-INVITE's answer is not handled yet: the next one waits, so that each gets its own
            # answer (one sent before would supersede it, and its hold or unhold would go unreported)
            return
        if not session.has_audio or session.on_hold_by_local == hold:
            entry.hold_wanted = None  # nothing to hold (chat only), or it is already as wanted
            if not hold:
                entry.auto_held = False
            return
        try:
            if hold:
                session.hold()
            else:
                session.unhold()
        except SessionStateError:
            return  # a re-INVITE is under way (ours or theirs): tried again after the next event
        except Exception as exc:  # the stack refused it: say so, and leave the call as it is
            entry.hold_wanted = None
            self.error(f"[{entry.number}] cannot {'hold' if hold else 'resume'}: {exc}")
            return
        entry.hold_wanted, entry.auto_held, entry.update = None, hold, "hold" if hold else "unhold"
        self.say(entry, "putting on hold" if hold else "resuming")

    def _cmd_sessions(self, params: list[str]) -> None:
        if not self.entries:
            out("no sessions")
        for entry in self.entries:
            session = entry.session
            flags = [stream.type for stream in session.streams] or list(entry.offered)
            if session.on_hold_by_local:
                flags.append("on hold")
            if session.on_hold_by_remote:
                flags.append("held by the other party")
            if session.audio_recording_file_name:
                flags.append("recording")
            mark = "*" if entry is self.current else " "
            out(f"{mark}[{entry.number}] {session.remote_uri} {session.state} {', '.join(flags)}".rstrip())

    def _cmd_help(self, params: list[str]) -> None:
        for line in HELP_TEXT.splitlines():
            out(line)

    def _send_message(self, text: str) -> None:
        if self.current is None:
            self.error("no session to send to; start one with /call URI --chat")
            return
        entry = self.current
        try:
            entry.pending.add(entry.session.send_message(text))
        except Exception as exc:  # SessionStateError: no chat (yet), or the session is over
            hint = "; add it with /chat" if entry.session.state == "ESTABLISHED" and not entry.session.has_chat else ""
            self.error(f"[{entry.number}] cannot send: {exc}{hint}")

    COMMANDS: dict[str, Any] = {
        "call": _cmd_call, "answer": _cmd_answer, "accept": _cmd_answer, "reject": _cmd_reject,
        "hang": _cmd_hang, "hangup": _cmd_hang, "end": _cmd_hang, "hold": _cmd_hold, "unhold": _cmd_unhold,
        "record": _cmd_record, "dtmf": _cmd_dtmf, "chat": _cmd_chat, "nochat": _cmd_nochat,
        "audio": _cmd_audio, "noaudio": _cmd_noaudio, "switch": _cmd_switch, "sessions": _cmd_sessions,
        "help": _cmd_help,
    }
