"""The middleware loop: one asyncio loop, on its own thread, for every Session.

Core events arrive on the Engine thread and media events on the media event
thread; the middleware moves them onto this loop (``call_soon_threadsafe``) so
that Session logic runs on one thread and its notifications reach observers in
order. Applications on asyncio may use the loop too (``MiddlewareLoop().loop``),
or await the awaitable helpers that the Session offers from their own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MiddlewareLoop", "run_in_middleware"]

log = logging.getLogger("sipsimple.middleware")
T = TypeVar("T")


class MiddlewareLoop:
    """Singleton owner of the middleware's asyncio loop (started on first use)."""

    _instance: MiddlewareLoop | None = None
    _lock = threading.Lock()

    def __new__(cls) -> MiddlewareLoop:
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._loop = None
                instance._thread = None
                cls._instance = instance
            return cls._instance

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or not self._thread.is_alive():  # type: ignore[union-attr]
                ready = threading.Event()
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._run, args=(self._loop, ready),
                                                name="sipsimple-middleware", daemon=True)
                self._thread.start()
                ready.wait()
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.set_exception_handler(lambda _loop, context: log.error("middleware loop: %s",
                                                                       context.get("message"),
                                                                       exc_info=context.get("exception")))
        loop.run_forever()

    def in_loop(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop, after everything queued before it (from any thread)."""
        if self.in_loop():
            self.loop.call_soon(_guarded, fn, args)
        else:
            self.loop.call_soon_threadsafe(_guarded, fn, args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        """Run ``fn(*args)`` on the loop after ``delay`` seconds; only from the loop itself."""
        return self.loop.call_later(delay, _guarded, fn, args)

    def run_sync(self, fn: Callable[..., T], *args: Any, timeout: float | None = 10.0) -> T:
        """Run ``fn(*args)`` on the loop and wait for its result (not from the loop itself)."""
        if self.in_loop():
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(call)
        return future.result(timeout)


def _guarded(fn: Callable[..., Any], args: tuple) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("error in middleware callback %r", fn)


def run_in_middleware(fn: Callable[..., Any], *args: Any) -> None:
    MiddlewareLoop().call_soon(fn, *args)
