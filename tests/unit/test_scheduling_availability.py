"""Weekly availability in a clinician's wall-clock time, made concrete across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carecoord_scheduling.domain.availability import (
    WeeklyWindow,
    candidate_starts,
    local_instant,
    windows_between,
    within_local_day,
)

NEW_YORK = ZoneInfo("America/New_York")
SUNDAY = 6


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def sunday_windows(start_minute: int, end_minute: int, day: datetime) -> list[tuple[datetime, datetime]]:
    window = WeeklyWindow(SUNDAY, start_minute, end_minute)
    return windows_between([window], NEW_YORK, day, day + timedelta(days=1))


@pytest.mark.parametrize(
    ("sunday", "expected_start_utc"),
    [
        (utc(2026, 3, 1), utc(2026, 3, 1, 14)),  # EST, UTC-5
        (utc(2026, 3, 8), utc(2026, 3, 8, 13)),  # the spring-forward day: EDT, UTC-4
        (utc(2026, 10, 25), utc(2026, 10, 25, 13)),  # EDT
        (utc(2026, 11, 1), utc(2026, 11, 1, 14)),  # the fall-back day: EST again
    ],
)
def test_a_morning_window_stays_at_nine_on_the_clock_either_side_of_a_change(
    sunday: datetime, expected_start_utc: datetime
) -> None:
    [(start, end)] = sunday_windows(9 * 60, 12 * 60, sunday)
    assert (start, end) == (expected_start_utc, expected_start_utc + timedelta(hours=3))
    assert start.astimezone(NEW_YORK).hour == 9 and end.astimezone(NEW_YORK).hour == 12


def test_a_window_across_the_spring_gap_is_an_hour_shorter() -> None:
    # 01:00-04:00 local on 2026-03-08: clocks jump from 02:00 to 03:00.
    [(start, end)] = sunday_windows(60, 4 * 60, utc(2026, 3, 8))
    assert (start, end) == (utc(2026, 3, 8, 6), utc(2026, 3, 8, 8))


def test_a_window_across_the_autumn_repeat_is_an_hour_longer() -> None:
    # 01:00-04:00 local on 2026-11-01: 01:00-02:00 happens twice.
    [(start, end)] = sunday_windows(60, 4 * 60, utc(2026, 11, 1))
    assert (start, end) == (utc(2026, 11, 1, 5), utc(2026, 11, 1, 9))


def test_a_wall_time_inside_the_gap_moves_to_the_first_real_minute() -> None:
    assert local_instant(datetime(2026, 3, 8).date(), 2 * 60 + 30, NEW_YORK) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert local_instant(datetime(2026, 11, 1).date(), 90, NEW_YORK) == utc(2026, 11, 1, 5, 30)  # the first 01:30


def test_weekly_windows_over_the_change_week_give_the_same_local_times_every_day() -> None:
    weekdays = [WeeklyWindow(d, 9 * 60, 17 * 60) for d in range(7)]
    intervals = windows_between(weekdays, NEW_YORK, utc(2026, 3, 5), utc(2026, 3, 12))
    assert len(intervals) == 7
    assert {
        (s.astimezone(NEW_YORK).time().isoformat(), e.astimezone(NEW_YORK).time().isoformat()) for s, e in intervals
    } == {("09:00:00", "17:00:00")}
    assert [s.hour for s, _ in intervals] == [14, 14, 14, 13, 13, 13, 13]  # 03-05..03-07 EST, from 03-08 EDT


def test_a_full_day_window_ends_at_the_next_local_midnight() -> None:
    [(start, end)] = windows_between([WeeklyWindow(SUNDAY, 0, 1440)], NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 3))
    assert (start, end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))  # midnight EDT to midnight EST: 25 hours


def test_slots_skip_busy_time_and_respect_bounds() -> None:
    window = [(utc(2026, 3, 9, 13), utc(2026, 3, 9, 17))]
    busy = [(utc(2026, 3, 9, 14), utc(2026, 3, 9, 15))]
    starts = list(
        candidate_starts(
            window,
            busy,
            duration=timedelta(minutes=50),
            step=timedelta(minutes=30),
            not_before=utc(2026, 3, 9, 13, 10),
            not_after=utc(2026, 3, 9, 17),
        )
    )
    assert starts == [utc(2026, 3, 9, 15), utc(2026, 3, 9, 15, 30), utc(2026, 3, 9, 16)]


def test_the_patients_day_is_read_in_the_patients_zone() -> None:
    los_angeles = ZoneInfo("America/Los_Angeles")
    # 15:00 UTC is 07:00 in Los Angeles on 2026-11-02 (PST) but 08:00 on 2026-10-30 (PDT).
    assert not within_local_day(utc(2026, 11, 2, 15), utc(2026, 11, 2, 16), los_angeles, 8 * 60, 21 * 60)
    assert within_local_day(utc(2026, 10, 30, 15), utc(2026, 10, 30, 16), los_angeles, 8 * 60, 21 * 60)
