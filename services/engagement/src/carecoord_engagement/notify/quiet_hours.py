"""Quiet hours in the patient's own time zone.

A message that is not safety outreach and not a staff page waits until quiet hours end
(default 21:00-08:00 local). The time zone is the one intake holds for the patient; when that
is missing or not an IANA name, the state of residence's (STATE_TIME_ZONES: the zone most of the
state's people live in -- a patient in the other part of a split state hears from us an hour off,
still inside sensible hours with the defaults), and without either America/New_York's.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "America/New_York"

# USPS code -> the IANA zone of most of the state's population.
STATE_TIME_ZONES: dict[str, str] = {
    "AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix", "AR": "America/Chicago",
    "CA": "America/Los_Angeles", "CO": "America/Denver", "CT": "America/New_York", "DE": "America/New_York",
    "DC": "America/New_York", "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis",
    "IA": "America/Chicago", "KS": "America/Chicago", "KY": "America/New_York", "LA": "America/Chicago",
    "ME": "America/New_York", "MD": "America/New_York", "MA": "America/New_York", "MI": "America/Detroit",
    "MN": "America/Chicago", "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver",
    "NE": "America/Chicago", "NV": "America/Los_Angeles", "NH": "America/New_York", "NJ": "America/New_York",
    "NM": "America/Denver", "NY": "America/New_York", "NC": "America/New_York", "ND": "America/Chicago",
    "OH": "America/New_York", "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York",
    "RI": "America/New_York", "SC": "America/New_York", "SD": "America/Chicago", "TN": "America/Chicago",
    "TX": "America/Chicago", "UT": "America/Denver", "VT": "America/New_York", "VA": "America/New_York",
    "WA": "America/Los_Angeles", "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver",
    "PR": "America/Puerto_Rico",
}  # fmt: skip


def parse_clock(value: str) -> time:
    """'21:00' -> time(21, 0); raises ValueError otherwise."""
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes or 0))


def zone_for(time_zone: str | None, state: str | None) -> ZoneInfo:
    """The patient's zone: their own if it is a known IANA name, else their state's, else DEFAULT_ZONE."""
    for name in (time_zone, STATE_TIME_ZONES.get((state or "").upper())):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo(DEFAULT_ZONE)


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When quiet hours end if ``now`` (aware) falls in them in ``zone``, else None. Returned in UTC.

    ``start`` > ``end`` spans midnight (21:00-08:00); ``start`` == ``end`` means no quiet hours.
    """
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    # Wall-clock end in the zone (a DST change in between is the zone's business), then UTC.
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
