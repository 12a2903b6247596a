"""The media engine as media tests want it: running on the clocked null device at one rate."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sipsimple.core._media import MediaEngine


def start_media_engine(rate: int = 48000) -> MediaEngine:
    """The MediaEngine running at ``rate`` on the null device (restarted if it runs at another)."""
    engine = MediaEngine()
    if engine.running and engine.sample_rate != rate:
        engine.stop()
    if not engine.running:
        engine.start(sample_rate=rate, frame_ms=20, device="null")
    return engine


@contextmanager
def recorded_events(engine: MediaEngine) -> Iterator[list[tuple[str, Any, Any]]]:
    """Every event the media engine reports while inside, as (name, sender, data)."""
    got: list[tuple[str, Any, Any]] = []
    lock = threading.Lock()

    def handler(name, sender, data):
        with lock:
            got.append((name, sender, data))

    old = engine.event_handler
    engine.event_handler = handler
    try:
        yield got
    finally:
        engine.event_handler = old
