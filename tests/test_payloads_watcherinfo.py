"""Applying partial watcherinfo updates to the full state (RFC 3857/3858)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipsimple.payloads import WatcherInfo, WatcherInfoTracker, apply_watcherinfo
from sipsimple.payloads.watcherinfo import WatcherInfoSequenceError

DATA = Path(__file__).parent / "data" / "payloads"
FULL = (DATA / "watcherinfo_full.xml").read_bytes()
PARTIAL = (DATA / "watcherinfo_partial.xml").read_bytes()
NS = "urn:ietf:params:xml:ns:watcherinfo"


def doc(version: int, state: str, watchers: str, resource: str = "sip:professor@example.net") -> WatcherInfo:
    return WatcherInfo.parse(
        f'<watcherinfo xmlns="{NS}" version="{version}" state="{state}">'
        f'<watcher-list resource="{resource}" package="presence">{watchers}</watcher-list></watcherinfo>'
    )


def test_apply_partial_replaces_by_id_and_appends_new() -> None:
    full = WatcherInfo.parse(FULL)
    merged = apply_watcherinfo(full, WatcherInfo.parse(PARTIAL))
    assert (merged.version, merged.state) == (1, "full")
    wl = merged.watcher_lists[0]
    assert [(w.id, w.status, w.event) for w in wl.watchers] == [
        ("8ajksjda7s", "active", "approved"),
        ("hh8juja87s997-ass7", "active", "approved"),
        ("q7bq2s", "terminated", "timeout"),
        ("z4kqa91", "waiting", "rejected"),
    ]
    assert wl.watcher("hh8juja87s997-ass7").expiration == 3600
    # Inputs are untouched and the merged state is a valid document.
    assert full == WatcherInfo.parse(FULL)
    assert WatcherInfo.parse(merged.toxml()) == merged


def test_apply_partial_adds_new_watcher_lists() -> None:
    full = WatcherInfo.parse(FULL)
    partial = doc(
        1,
        "partial",
        '<watcher id="n1" status="pending" event="subscribe">sip:x@y</watcher>',
        "sip:other@example.net",
    )
    merged = apply_watcherinfo(full, partial)
    assert [wl.resource for wl in merged.watcher_lists] == [
        "sip:professor@example.net",
        "sip:other@example.net",
    ]


def test_full_document_replaces_state() -> None:
    full = WatcherInfo.parse(FULL)
    fresh = doc(0, "full", "")
    assert apply_watcherinfo(full, fresh) == fresh
    assert apply_watcherinfo(None, fresh) == fresh


def test_partial_needs_base_and_consecutive_version() -> None:
    with pytest.raises(WatcherInfoSequenceError, match="before any full state"):
        apply_watcherinfo(None, WatcherInfo.parse(PARTIAL))
    with pytest.raises(WatcherInfoSequenceError, match="version 5 does not follow 0"):
        apply_watcherinfo(WatcherInfo.parse(FULL), doc(5, "partial", ""))


def test_tracker() -> None:
    tracker = WatcherInfoTracker()
    assert tracker.pending == [] and tracker.active == []
    assert tracker.update(FULL)
    assert [w.uri for w in tracker.pending] == ["sip:userB@example.org"]
    assert tracker.update(PARTIAL)
    assert tracker.pending == []
    assert [w.uri for w in tracker.active] == ["sip:userA@example.net", "sip:userB@example.org"]
    # A retransmitted partial is ignored, a gap asks for a refresh.
    assert not tracker.update(PARTIAL)
    with pytest.raises(WatcherInfoSequenceError):
        tracker.update(doc(3, "partial", ""))
    # A new full state (e.g. after re-subscribing) restarts the sequence.
    assert tracker.update(
        doc(0, "full", '<watcher id="a" status="pending" event="subscribe">sip:a@b</watcher>')
    )
    assert [w.id for w in tracker.pending] == ["a"]
    tracker.reset()
    assert tracker.state is None
