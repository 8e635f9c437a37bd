"""The decisions about a dosing session's post-dose check-in, pure: when the dose was, whether a check-in counts
as the post-dose one, when the timers fall due, whether a fired timer still has something to chase, and the
review a no-show or a missing check-in opens (the rules' [timers]). sessions.py loads, saves and emits around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..rules import ReviewRequest, RuleSet

# What scheduling says of a session that a (re)booking turns back into booked.
REBOOKABLE = ("unbooked", "cancelled")


@dataclass(frozen=True)
class Session:
    """A dosing session as safety knows it (its dosing_sessions row)."""

    status: str
    starts_at: datetime | None
    authorised_at: datetime | None
    refused_at: datetime | None
    no_show_at: datetime | None
    checked_in_at: datetime | None


def dose_at(session: Session) -> datetime | None:
    """The dose; for a session booked before 2026.12.1 and never authorised since, its booked start."""
    return session.authorised_at or (
        session.starts_at if session.refused_at is None and session.no_show_at is None else None
    )


def is_post_dose(session: Session, at: datetime) -> bool:
    """A check-in answered (or a reading measured) at ``at`` is the post-dose check-in only at or after the dose;
    before it, a mood observation like any other."""
    dose = dose_at(session)
    return dose is not None and at >= dose


def earliest_check_in(session: Session, at: datetime) -> bool:
    """Whether ``at`` is the earliest post-dose check-in heard so far (the one kept)."""
    return session.checked_in_at is None or at < session.checked_in_at


@dataclass(frozen=True)
class PostDoseDue:
    checkin_missed: datetime
    checkin_review: datetime


def post_dose_due(rules: RuleSet, authorised_at: datetime) -> PostDoseDue:
    """The post-dose timers run from the dose (the authorisation), not the booked start."""
    return PostDoseDue(
        checkin_missed=authorised_at + rules.timers.checkin_missed_after,
        checkin_review=authorised_at + rules.timers.checkin_review_after,
    )


def still_missing(session: Session | None) -> bool:
    """Does a fired post-dose timer still have a missing check-in to chase?"""
    if session is None or session.checked_in_at is not None:
        return False
    if session.authorised_at is not None:
        return True  # dosed: chase whatever scheduling said since
    # A timer armed from the booked start (before 2026.12.1), for a session still merely booked.
    return session.status == "booked" and session.refused_at is None


def hours_since_dose(session: Session, now: datetime) -> int:
    """Whole hours from the dose (or the booked start of a session never authorised) to ``now``; never negative."""
    dose = session.authorised_at or session.starts_at
    assert dose is not None  # still_missing: authorised, or booked with a start
    return max(int((now - dose).total_seconds() // 3600), 0)


def no_show_review(rules: RuleSet, before: Session) -> ReviewRequest | None:
    """The review a no-show opens (``[timers] no_show_review``), once: None when the rules name none or the
    session was already marked no-show."""
    action = rules.timers.no_show_review
    if action is None or before.no_show_at is not None:
        return None
    return ReviewRequest(
        reason=action.reason,
        priority=action.priority,
        due_within=action.due_within,
        hold=False,
        triggers=("dosing_session_no_show_authorised" if before.authorised_at else "dosing_session_no_show",),
        rule_ids=("timers.no_show_review",),
    )


def missing_check_in_review(rules: RuleSet) -> ReviewRequest | None:
    """The review a post-dose check-in still missing ``checkin_review_after`` the dose opens (None: none)."""
    action = rules.timers.checkin_review
    if action is None:
        return None
    hours = int(rules.timers.checkin_review_after.total_seconds() // 3600)
    return ReviewRequest(
        reason=action.reason,
        priority=action.priority,
        due_within=action.due_within,
        hold=False,
        triggers=(f"no_checkin_{hours}h_after_dosing",),
        rule_ids=("timers.checkin_review",),
    )
