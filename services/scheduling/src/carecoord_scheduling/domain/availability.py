"""Clinicians' weekly availability in their own wall-clock time, made concrete in UTC.

Pure: no database, no clock. Daylight-saving changes are handled by building
every instant from the local date and wall time with zoneinfo, so a window
"Sunday 09:00-12:00" stays 09:00-12:00 on the clock on both sides of a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class WeeklyWindow:
    weekday: int  # 0 = Monday, as datetime.weekday()
    start_minute: int  # minutes after local midnight
    end_minute: int  # up to 1440 (the end of the day)

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
        if not 0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY:
            raise ValueError("a window starts before it ends, within one day (00:00 to 24:00)")


def local_instant(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time on a local date.

    A wall time that does not exist (the spring-forward gap) moves to the
    first minute that does; one that exists twice (fall-back) is the first.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    for _ in range(24 * 60):
        instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall:
            return instant
        wall += timedelta(minutes=1)
    raise ValueError(f"no valid local time near {wall} in {tz}")


def windows_between(windows: Iterable[WeeklyWindow], tz: ZoneInfo, start: datetime, end: datetime) -> list[Interval]:
    """The concrete UTC intervals of the weekly windows that overlap [start, end), merged and sorted (cut at ``end`` only)."""
    windows = list(windows)
    intervals: list[Interval] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    while day <= last:
        for w in windows:
            if w.weekday != day.weekday():
                continue
            # Not cut at ``start``: slots keep the window's grid (candidate_starts skips to the
            # first step after ``not_before``). Cut there, a window open now offered a slot
            # starting at this very microsecond, which was in the past by the time it was booked.
            s = local_instant(day, w.start_minute, tz)
            e = min(local_instant(day, w.end_minute, tz), end)
            if max(s, start) < e:
                intervals.append((s, e))
        day += timedelta(days=1)
    return merge(intervals)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def overlaps(a: Interval, b: Interval) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def within_local_day(start: datetime, end: datetime, tz: ZoneInfo, day_start_minute: int, day_end_minute: int) -> bool:
    """Whether [start, end) falls between two wall-clock times of one local day (the patient's waking hours)."""
    day = start.astimezone(tz).date()
    return local_instant(day, day_start_minute, tz) <= start and end <= local_instant(day, day_end_minute, tz)


def candidate_starts(
    available: list[Interval],
    busy: list[Interval],
    *,
    duration: timedelta,
    step: timedelta,
    not_before: datetime,
    not_after: datetime,
) -> Iterator[datetime]:
    """Start times, earliest first, at which an appointment fits in the availability and misses every busy interval.

    ``not_after`` bounds the appointment's end. Starts step from each window's start.
    """
    busy = merge(busy)
    for window_start, window_end in available:
        t = window_start
        if t < not_before:
            # Jump to the first step at or after not_before, keeping the window's grid.
            steps = -(-(not_before - t) // step)
            t = t + steps * step
        while t + duration <= min(window_end, not_after):
            slot = (t, t + duration)
            clash = next((b for b in busy if overlaps(slot, b)), None)
            if clash is None:
                yield t
                t += step
            else:
                # Skip past the clash on the window's grid.
                steps = -(-(clash[1] - t) // step)
                t = t + max(steps, 1) * step
