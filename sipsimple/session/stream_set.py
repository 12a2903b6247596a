"""A Session's streams by m-line, and the SDP it makes from them (mixed into Session).

The list ``_streams`` holds one entry per m-line of the session's SDP: the
AudioStream, MSRPChat or MSRPFileTransfer using it, or None where the line was
refused or removed (kept, with port 0, so that m-line indexes never shift, as
RFC 3264 section 8 asks).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

from sipsimple.core import Engine
from sipsimple.middleware import MiddlewareLoop
from sipsimple.notification import NotificationCenter
from sipsimple.session import sdp_negotiation as neg
from sipsimple.streams.audio import AudioStream, sdp_to_media
from sipsimple.streams.msrp_chat import MSRPChat
from sipsimple.streams.msrp_filetransfer import MSRPFileTransfer

__all__ = ["SessionStreams", "neg_direction"]

log = logging.getLogger("sipsimple.session")


def neg_direction(remote, line) -> str:
    """The direction of the remote m-line ``line``, session-level attribute included."""
    try:
        return sdp_to_media(remote, line)["direction"]
    except ValueError:
        return line.direction


class SessionStreams:
    """Stream bookkeeping of :class:`~sipsimple.session.session.Session`; uses its attributes and lock."""

    def _find(self, kind: str) -> tuple[int | None, Any]:
        for index, stream in enumerate(self._streams):
            if stream is not None and stream.type == kind:
                return index, stream
        return None, None

    def _new_audio_stream(self) -> AudioStream:
        engine = Engine()
        srtp = getattr(self.account, "srtp_mode", None) or "optional"
        codecs = getattr(self.account, "audio_codec_list", None) or getattr(self.account, "audio_codecs", None)
        return AudioStream(engine.local_ip or "127.0.0.1", srtp_mode=srtp, codecs=list(codecs) if codecs else None)

    def _new_chat_stream(self) -> MSRPChat:
        return MSRPChat(self.account, local_uri=self.local_uri, remote_uri=self.remote_uri)

    def _new_file_stream(self, path: str | os.PathLike | None = None,
                         directory: str | os.PathLike | None = None) -> MSRPFileTransfer:
        if path is None and directory is None:
            directory = getattr(self.account, "file_transfer_directory", None) or os.getcwd()
        return MSRPFileTransfer(self.account, path=path, directory=directory)

    def _observe_stream(self, stream: Any) -> None:
        NotificationCenter().add_observer(self, sender=stream.transport if stream.type == "audio" else stream)

    def _when_prepared(self, streams: list[Any], state: str, action: Callable[[], None],
                       failed: Callable[[BaseException], None]) -> None:
        """Run ``action`` once the streams are ready for SDP (now, when none needs a network step).

        It runs under the lock, on the middleware loop, and only if the session is still in ``state``.
        """
        pending = [stream for stream in streams if getattr(stream, "needs_prepare", False)]
        if not pending:
            action()
            return

        async def prepare() -> None:
            try:
                await asyncio.gather(*(stream.prepare() for stream in pending))
            except Exception as exc:
                with self._lock:
                    if self.state == state:
                        failed(exc)
                return
            with self._lock:
                if self.state == state:
                    action()

        asyncio.run_coroutine_threadsafe(prepare(), MiddlewareLoop().loop)

    def _wanted(self, offered: list[str], audio: bool, chat: bool, file_transfer: bool) -> list[str]:
        wanted = []
        for kind, yes in (("audio", audio), ("chat", chat), ("file-transfer", file_transfer)):
            if yes:
                if kind not in offered:
                    raise ValueError(f"{kind} was not proposed by the other party")
                wanted.append(kind)
        return wanted

    def _create_answer_streams(self, remote, wanted: list[str], directory) -> list[Any]:
        """New streams for the offered lines of the ``wanted`` types (one per type, first line wins)."""
        if len(self._streams) < len(remote.media):
            self._streams += [None] * (len(remote.media) - len(self._streams))
        created: list[Any] = []
        try:
            for index, line in enumerate(remote.media):
                kind = neg.stream_type(line)
                if line.port == 0 or kind not in wanted or self._streams[index] is not None \
                        or self._find(kind)[1] is not None:
                    continue
                if kind == "audio":
                    stream = self._new_audio_stream()
                elif kind == "chat":
                    stream = self._new_chat_stream()
                else:
                    stream = self._new_file_stream(directory=directory)
                if kind != "audio":
                    stream.match_offer(line)  # MSRP over TLS when the offer is TCP/TLS/MSRP
                self._streams[index] = stream
                self._observe_stream(stream)
                created.append(stream)
        except Exception:
            self._forget_new_streams(created)
            raise
        return created

    def _forget_new_streams(self, created: list[Any]) -> None:
        for index, stream in enumerate(self._streams):
            if stream is not None and any(stream is c for c in created):
                self._discard_stream(index)
        known = len(self._local_sdp.media) if self._local_sdp is not None else 0
        while len(self._streams) > known and self._streams[-1] is None:
            self._streams.pop()

    def _discard_stream(self, index: int) -> None:
        """Stop and forget the stream at ``index`` (the local SDP is left alone)."""
        stream = self._streams[index] if index < len(self._streams) else None
        if stream is None:
            return
        self._streams[index] = None
        self._retire(stream)

    def _retire(self, stream: Any) -> None:
        """Stop a stream that is no longer in the session."""
        if stream.type == "audio":
            NotificationCenter().discard_observer(self, sender=stream.transport)
        try:
            stream.stop()
        except Exception:
            log.exception("stopping %r failed", stream)
        if stream.type == "audio" and stream.final_statistics is not None:
            self._last_audio_statistics = stream.final_statistics

    def _set_aside(self, index: int) -> None:
        """Take the stream at ``index`` out of the session, still running, until our offer is answered.

        The offer refuses its line; stopping it at once would let the other party see the
        stream die (an MSRP connection close) before the offer that removes it arrives.
        """
        stream = self._streams[index]
        self._streams[index] = None
        self._leaving.append(stream)

    def _retire_leaving(self) -> None:
        leaving, self._leaving = self._leaving, []
        for stream in leaving:
            self._retire(stream)

    def _stop_stream(self, index: int) -> None:
        """Stop the stream at ``index`` and refuse its m-line from now on (port 0)."""
        self._discard_stream(index)
        self._refuse_line(index)

    def _refuse_line(self, index: int) -> None:
        if self._local_sdp is not None and index < len(self._local_sdp.media):
            media = list(self._local_sdp.media)
            media[index] = neg.rejected_line(media[index])
            self._local_sdp.media = media

    def _make_sdp(self, media: list) -> Any:
        self._sdp_version += 1
        return neg.new_local_sdp(Engine().local_ip or "127.0.0.1", self._sdp_id, self._sdp_version, media)

    def _offer_media(self) -> list:
        """Our m-lines for a new offer: one per stream (audio with the hold direction), refused ones kept."""
        direction = neg.hold_direction(self.on_hold_by_local, self.on_hold_by_remote)
        old = list(self._local_sdp.media) if self._local_sdp is not None else []
        media = []
        for index, stream in enumerate(self._streams):
            if stream is not None:
                media.append(stream.offer(direction) if stream.type == "audio" else stream.offer())
            elif index < len(old):
                media.append(neg.rejected_line(old[index]))
        return media

    def _answer_media(self, remote) -> list:
        """Our answer: a line from each stream we have at an index, the rest refused."""
        media = []
        for index, line in enumerate(remote.media):
            stream = self._streams[index] if index < len(self._streams) else None
            if stream is None or line.port == 0:
                media.append(neg.rejected_line(line))
            elif stream.type == "audio":
                direction = neg.answer_direction(neg_direction(remote, line), self.on_hold_by_local)
                media.append(stream.answer(remote, line, direction))
            else:
                media.append(stream.answer(remote, line))
        return media

    def _start_streams(self, remote, kinds: tuple[str, ...] | None = None) -> None:
        """Start (or update) the streams from the other side's SDP; its refused lines stop ours."""
        for index, stream in enumerate(list(self._streams)):
            if stream is None or index >= len(remote.media) or (kinds is not None and stream.type not in kinds):
                continue
            line = remote.media[index]
            if line.port == 0:
                self._stop_stream(index)
                continue
            local_line = self._local_sdp.media[index]
            stream.start(remote, line, local_line.direction)

    def _active_streams(self) -> list[str]:
        return [stream.type for stream in self._streams if stream is not None]

    def _proposed_streams(self) -> list[Any]:
        """The streams of our pending proposal still in the session (lines past the old description)."""
        known = len(self._sdp_before_proposal.media) if self._sdp_before_proposal is not None else 0
        return [stream for stream in self._streams[known:] if stream is not None]
