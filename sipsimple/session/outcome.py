"""What a Session's connect()/accept() return, and the errors a Session raises."""

from __future__ import annotations

import asyncio
import threading

from sipsimple.core.errors import SIPCoreError

__all__ = ["SessionError", "SessionStateError", "SessionOutcome"]


class SessionError(Exception):
    """A session failed (what an awaited connect()/accept() raises); has code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason


class SessionStateError(SIPCoreError):
    """A Session method was called in a state that does not allow it."""


class SessionOutcome:
    """What connect()/accept() return: ignore it (the seed's way), ``wait()`` or ``await`` it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: SessionError | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._lock = threading.Lock()

    def _resolve(self, error: SessionError | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._error = error
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future, error)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the session started (returns) or failed (raises SessionError)."""
        if not self._done.wait(timeout):
            raise TimeoutError("the session did not start or fail in time")
        if self._error is not None:
            raise self._error

    def __await__(self):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._done.is_set():
                _settle(future, self._error)
            else:
                self._waiters.append((loop, future))
        return future.__await__()


def _settle(future: asyncio.Future, error: SessionError | None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
