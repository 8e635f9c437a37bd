"""Quiet hours in the patient's own time zone: a message in them waits until they end."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from carecoord_contracts.common import US_STATES
from carecoord_engagement.notify.quiet_hours import STATE_TIME_ZONES, quiet_until, zone_for

NIGHT = (time(21, 0), time(8, 0))
DENVER = ZoneInfo("America/Denver")


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_late_evening_waits_until_eight_the_next_morning_local() -> None:
    now = local(DENVER, 2026, 12, 3, 22, 30)
    assert quiet_until(now, DENVER, *NIGHT) == local(DENVER, 2026, 12, 4, 8, 0).astimezone(UTC)


def test_early_morning_waits_until_eight_the_same_day() -> None:
    now = local(DENVER, 2026, 12, 3, 5, 59)
    assert quiet_until(now, DENVER, *NIGHT) == local(DENVER, 2026, 12, 3, 8, 0).astimezone(UTC)


@pytest.mark.parametrize("hour", [8, 12, 20])
def test_daytime_is_not_quiet(hour: int) -> None:
    assert quiet_until(local(DENVER, 2026, 12, 3, hour, 0), DENVER, *NIGHT) is None


def test_the_same_instant_is_quiet_for_one_patient_and_not_for_another() -> None:
    instant = datetime(2026, 12, 4, 4, 30, tzinfo=UTC)  # 23:30 in New York, 20:30 in Los Angeles
    assert quiet_until(instant, ZoneInfo("America/New_York"), *NIGHT) is not None
    assert quiet_until(instant, ZoneInfo("America/Los_Angeles"), *NIGHT) is None


def test_a_window_within_one_day_and_an_empty_window() -> None:
    assert quiet_until(local(DENVER, 2026, 12, 3, 13, 0), DENVER, time(12, 0), time(14, 0)) == local(
        DENVER, 2026, 12, 3, 14, 0
    ).astimezone(UTC)
    assert quiet_until(local(DENVER, 2026, 12, 3, 23, 0), DENVER, time(0, 0), time(0, 0)) is None


def test_the_end_is_wall_clock_across_a_daylight_saving_change() -> None:
    # The night of 13-14 March 2027 the US springs forward: 08:00 MDT is 14:00 UTC, not 15:00 (MST).
    now = local(DENVER, 2027, 3, 13, 23, 0)
    assert quiet_until(now, DENVER, *NIGHT) == datetime(2027, 3, 14, 14, 0, tzinfo=UTC)


def test_zone_is_the_patients_own_then_their_states_then_a_default() -> None:
    assert zone_for("America/Phoenix", "CO") == ZoneInfo("America/Phoenix")
    assert zone_for("Not/AZone", "CO") == DENVER
    assert zone_for(None, "ca") == ZoneInfo("America/Los_Angeles")
    assert zone_for(None, None) == ZoneInfo("America/New_York")


def test_every_us_state_has_a_zone_that_exists() -> None:
    assert set(US_STATES) <= set(STATE_TIME_ZONES)
    for name in STATE_TIME_ZONES.values():
        ZoneInfo(name)
