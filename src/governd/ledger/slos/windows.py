"""Good and bad counts over rolling windows, in buckets: exact counts, bounded memory.

A window ``w`` is counted in buckets of the largest of ``WIDTHS`` that divides
it at least 60 times (5m in 5 s buckets, 1h in 1m, 6h in 5m, 1d in 10m, 30d
in 6h), so it covers between ``w - width`` and ``w`` of history (within 1/60
of its length), the current bucket included: at time t it holds the events
of buckets ``(b - w/width, b]``, where b is the bucket of t. New events count
at once. Counts are of events, never averages of ratios. The default SLO
keeps ~650 buckets per group.

Every window of one width shares a ring of buckets as long as the longest of
them, and keeps its running sums: advancing a bucket subtracts the one that
leaves each window, so reading a window costs nothing and a day of quiet costs
one reset. Events are added through ``Counts.add`` in the bucket of their
time; one that arrives late still lands in its bucket, if the ring holds it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Bucket widths in seconds, from the finest; each divides the next, so a bucket of one
#: width lies inside one bucket of every coarser width.
WIDTHS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400)
_BUCKETS_PER_WINDOW = 60


def width_of(window: float) -> int:
    """The bucket width a window is counted in."""
    found = 1
    for width in WIDTHS:
        if width * _BUCKETS_PER_WINDOW <= window and window % width == 0:
            found = width
    return found


def retention(windows: Iterable[float]) -> dict[int, int]:
    """Seconds of history each width's ring of ``windows`` holds (its longest window), by width."""
    out: dict[int, int] = {}
    for window in windows:
        width = width_of(window)
        out[width] = max(out.get(width, 0), width * span_of(window))
    return dict(sorted(out.items()))


def span_of(window: float) -> int:
    """How many buckets of its width a window covers."""
    return max(1, math.ceil(window / width_of(window)))


class _Ring:
    """The buckets of one width, and the running sums of each window counted in them."""

    __slots__ = ("bad", "good", "head", "sums", "width")

    def __init__(self, width: int, spans: Iterable[int]) -> None:
        self.width = width
        self.sums = {span: [0, 0] for span in sorted(set(spans))}
        length = max(self.sums)
        self.good = [0] * length
        self.bad = [0] * length
        self.head = -1  # the newest bucket's number; -1 before the first

    def advance(self, bucket: int) -> None:
        """Make ``bucket`` the newest: every window forgets the buckets that left it."""
        if bucket <= self.head:
            return
        length = len(self.good)
        if self.head < 0 or bucket - self.head >= length:
            self.good = [0] * length
            self.bad = [0] * length
            for pair in self.sums.values():
                pair[0] = pair[1] = 0
            self.head = bucket
            return
        good, bad = self.good, self.bad
        for newest in range(self.head + 1, bucket + 1):
            for span, pair in self.sums.items():
                leaving = (newest - span) % length
                pair[0] -= good[leaving]
                pair[1] -= bad[leaving]
            slot = newest % length
            good[slot] = bad[slot] = 0
        self.head = bucket

    def put(self, bucket: int, good: int, bad: int) -> None:
        """Make ``bucket``'s counts ``good`` and ``bad`` (the totals a shared store holds)."""
        self.advance(bucket)
        if self.head - bucket < len(self.good):
            slot = bucket % len(self.good)
            self.add(bucket, good - self.good[slot], bad - self.bad[slot])

    def add(self, bucket: int, good: int, bad: int) -> None:
        """Count events of ``bucket`` (the newest, or a recent one the ring still holds)."""
        self.advance(bucket)
        age = self.head - bucket
        if age >= len(self.good):
            return  # older than any window: it counts nowhere
        slot = bucket % len(self.good)
        self.good[slot] += good
        self.bad[slot] += bad
        for span, pair in self.sums.items():
            if age < span:
                pair[0] += good
                pair[1] += bad


class Counts:
    """Good and bad counts over a fixed set of windows (seconds)."""

    __slots__ = ("_by_width", "_rings", "_where")

    def __init__(self, windows: Iterable[float]) -> None:
        by_width: dict[int, list[int]] = {}
        for window in windows:
            by_width.setdefault(width_of(window), []).append(span_of(window))
        self._rings = [_Ring(width, spans) for width, spans in sorted(by_width.items())]
        self._by_width = {ring.width: ring for ring in self._rings}
        self._where = {w: (self._by_width[width_of(w)], span_of(w)) for w in windows}

    def add(self, ts: float, good: int, bad: int) -> None:
        """Count ``good`` and ``bad`` events at time ``ts``."""
        for ring in self._rings:
            ring.add(int(ts // ring.width), good, bad)

    def put(self, width: int, start: float, good: int, bad: int) -> None:
        """Set the counts of the bucket of ``width`` that starts at ``start`` (unknown widths: none)."""
        ring = self._by_width.get(width)
        if ring is not None:
            ring.put(int(start // width), good, bad)

    def advance(self, now: float) -> None:
        """Let time pass to ``now`` with no events: old buckets leave their windows."""
        for ring in self._rings:
            ring.advance(int(now // ring.width))

    def window(self, window: float) -> tuple[int, int]:
        """``(good, bad)`` over ``window`` as of the last ``add`` or ``advance``."""
        ring, span = self._where[window]
        good, bad = ring.sums[span]
        return good, bad
