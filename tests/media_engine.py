"""The media engine as media tests want it: running on the clocked null device at one rate."""

from sipsimple.core._media import MediaEngine


def start_media_engine(rate: int = 48000) -> MediaEngine:
    """The MediaEngine running at ``rate`` on the null device (restarted if it runs at another)."""
    engine = MediaEngine()
    if engine.running and engine.sample_rate != rate:
        engine.stop()
    if not engine.running:
        engine.start(sample_rate=rate, frame_ms=20, device="null")
    return engine
