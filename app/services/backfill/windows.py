"""Intervals of data time: a run's nominal interval, a bad window, and sets of them kept merged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

# A run known only by an instant (a nominal start without end, or a start time) covers this much, so that
# instants still overlap the windows around them.
INSTANT = timedelta(microseconds=1)


class Window(NamedTuple):
    """[start, end) in UTC. A tuple: plans make and sort tens of thousands of them, and tuples are built and
    compared in C."""

    start: datetime
    end: datetime

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end


def run_window(
    nominal_start: datetime | None,
    nominal_end: datetime | None,
    started_at: datetime | None,
    ended_at: datetime | None,
    created_at: datetime,
) -> Window:
    """The data time a run covers: its nominal interval, else the time it ran (for unscheduled jobs)."""
    if nominal_start is not None:
        end = nominal_end if nominal_end is not None and nominal_end > nominal_start else nominal_start + INSTANT
        return Window(nominal_start, end)
    start = started_at or created_at
    end = ended_at if ended_at is not None and ended_at > start else start + INSTANT
    return Window(start, end)


def merge(windows: list[Window]) -> list[Window]:
    """Sorted, with overlapping and touching windows joined."""
    merged: list[Window] = []
    ordered = iter(sorted(windows))
    first = next(ordered, None)
    if first is None:
        return merged
    start, end = first
    for w_start, w_end in ordered:  # one Window per merged run of windows, not one per extension
        if w_start <= end:
            if w_end > end:
                end = w_end
        else:
            merged.append(Window(start, end))
            start, end = w_start, w_end
    merged.append(Window(start, end))
    return merged


def overlaps_any(window: Window, windows: list[Window]) -> bool:
    start, end = window
    for w in windows:
        if start < w.end and w.start < end:
            return True
    return False


def hull(windows: list[Window]) -> Window | None:
    if not windows:
        return None
    return Window(min(w.start for w in windows), max(w.end for w in windows))
