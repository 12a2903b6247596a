"""A small set of inclusive integer intervals, for tracking which bytes of a message arrived."""

from __future__ import annotations

import bisect

__all__ = ["ByteRanges"]


class ByteRanges:
    """Sorted, merged, inclusive ``[start, end]`` intervals (1-based byte positions)."""

    __slots__ = ("_starts", "_ends")

    def __init__(self, ranges=()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end]``; empty when ``end < start``."""
        if end < start:
            return
        starts, ends = self._starts, self._ends
        # fast path: appending right after the last interval (in-order chunks)
        if ends and starts[-1] <= start <= ends[-1] + 1:
            if end > ends[-1]:
                ends[-1] = end
                self._merge_tail()
            return
        i = bisect.bisect_left(ends, start - 1)
        j = bisect.bisect_right(starts, end + 1)
        if i < j:
            start = min(start, starts[i])
            end = max(end, ends[j - 1])
        starts[i:j] = [start]
        ends[i:j] = [end]

    def _merge_tail(self) -> None:
        starts, ends = self._starts, self._ends
        while len(starts) > 1 and starts[-1] <= ends[-2] + 1:
            ends[-2] = max(ends[-2], ends[-1])
            del starts[-1], ends[-1]

    def covers(self, start: int, end: int) -> bool:
        """True when every position in ``[start, end]`` is in the set (always for empty ranges)."""
        if end < start:
            return True
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    @property
    def total(self) -> int:
        """Number of positions in the set."""
        return sum(e - s + 1 for s, e in zip(self._starts, self._ends, strict=True))

    def contiguous_end(self, start: int = 1) -> int:
        """Last position of the run that begins at ``start`` (``start - 1`` if none)."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i >= 0 and self._ends[i] >= start:
            return self._ends[i]
        return start - 1

    def __iter__(self):
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def __repr__(self) -> str:
        return f"ByteRanges({list(self)})"
