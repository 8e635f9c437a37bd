"""Safety's pure decisions around the use cases (domain/reviews.py, domain/sessions.py, the check-in scores):
what a further trigger changes on a review, when a check-in is the post-dose one, what a fired timer chases."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carecoord_contracts.common import ReviewDecision, ReviewPriority
from carecoord_safety import rules
from carecoord_safety.domain import reviews as review_rules
from carecoord_safety.domain import sessions as session_rules
from carecoord_safety.domain.reviews import OpenReview
from carecoord_safety.domain.sessions import Session
from carecoord_safety.rules import ReviewRequest
from carecoord_shared.errors import RuleViolation

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
RULES = rules.load()


def _request(priority: ReviewPriority, due_within_h: int, *triggers: str) -> ReviewRequest:
    return ReviewRequest("severe_side_effect", priority, timedelta(hours=due_within_h), False, triggers, ("r1",))


def _open(status: str = "open", rank: int = 2, due_in_h: int = 24) -> OpenReview:
    return OpenReview(uuid.uuid4(), status, rank, T0 + timedelta(hours=due_in_h), ("grade_3",))


def test_a_joining_trigger_adds_its_triggers_once_and_never_lowers_the_priority() -> None:
    joined = review_rules.join(_open(rank=2), _request(ReviewPriority.routine, 48, "grade_3", "nausea_x3_in_7d"), T0)
    assert joined.values == {"triggers": ["grade_3", "nausea_x3_in_7d"]}
    assert joined.due_at is None, "a later due time never moves the review's"
    raised = review_rules.join(_open(rank=2), _request(ReviewPriority.urgent, 48), T0)
    assert raised.values["priority"] == "urgent" and raised.values["priority_rank"] == 3


def test_an_earlier_due_time_moves_an_open_review_only() -> None:
    sooner = _request(ReviewPriority.high, 4)
    assert review_rules.join(_open("open"), sooner, T0).due_at == T0 + timedelta(hours=4)
    assert review_rules.join(_open("open"), sooner, T0).values["due_at"] == T0 + timedelta(hours=4)
    acknowledged = review_rules.join(_open("acknowledged"), sooner, T0)
    assert acknowledged.due_at is None and "due_at" not in acknowledged.values


def test_review_status_checks() -> None:
    review_id = uuid.uuid4()
    review_rules.check_acknowledge(review_id, "open")
    with pytest.raises(RuleViolation, match="only an open review"):
        review_rules.check_acknowledge(review_id, "acknowledged")
    with pytest.raises(RuleViolation, match="already resolved"):
        review_rules.check_resolve(review_id, "resolved", "resume")
    with pytest.raises(RuleViolation, match="needs dose_mg"):
        review_rules.check_dose_with_decision(ReviewDecision.resume_with_dose_change, None)
    with pytest.raises(RuleViolation):
        review_rules.check_dose_with_decision(ReviewDecision.resume, 100)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (ReviewPriority.routine, ReviewPriority.high),
        (ReviewPriority.high, ReviewPriority.urgent),
        (ReviewPriority.urgent, ReviewPriority.urgent),
    ],
)
def test_an_overdue_review_rises_one_step(before: ReviewPriority, after: ReviewPriority) -> None:
    assert review_rules.overdue_priority(before) is after


def test_a_refused_dose_change_opens_a_review_as_urgent_as_the_resolved_one() -> None:
    request = review_rules.dose_refusal_review(ReviewPriority.high, T0, T0 + timedelta(hours=4), "dose_above_cap")
    assert (request.reason, request.priority, request.due_within) == (
        "dose_change_refused",
        ReviewPriority.high,
        timedelta(hours=4),
    )
    assert request.triggers == ("dose_above_cap",) and not request.hold


BOOKED = Session(
    status="booked", starts_at=T0, authorised_at=None, refused_at=None, no_show_at=None, checked_in_at=None
)


def _session(**values: Any) -> Session:
    return replace(BOOKED, **values)


def test_a_check_in_is_the_post_dose_one_only_at_or_after_the_dose() -> None:
    dosed = _session(authorised_at=T0 + timedelta(hours=1))
    assert not session_rules.is_post_dose(dosed, T0 + timedelta(minutes=59))
    assert session_rules.is_post_dose(dosed, T0 + timedelta(hours=1))
    # A session booked before 2026.12.1 and never authorised: its booked start stands for the dose...
    assert session_rules.is_post_dose(_session(), T0)
    # ...unless it was refused or a no-show: then there was no dose.
    assert not session_rules.is_post_dose(_session(refused_at=T0), T0 + timedelta(hours=2))
    assert not session_rules.is_post_dose(_session(no_show_at=T0), T0 + timedelta(hours=2))


def test_only_an_earlier_check_in_replaces_the_one_kept() -> None:
    kept = _session(checked_in_at=T0 + timedelta(hours=2))
    assert session_rules.earliest_check_in(kept, T0 + timedelta(hours=1))
    assert not session_rules.earliest_check_in(kept, T0 + timedelta(hours=2))


def test_the_post_dose_timers_run_from_the_authorisation() -> None:
    due = session_rules.post_dose_due(RULES, T0)
    assert due.checkin_missed == T0 + RULES.timers.checkin_missed_after
    assert due.checkin_review == T0 + RULES.timers.checkin_review_after


def test_what_a_fired_timer_still_chases() -> None:
    assert not session_rules.still_missing(None)
    assert not session_rules.still_missing(_session(authorised_at=T0, checked_in_at=T0))
    assert session_rules.still_missing(_session(authorised_at=T0, status="cancelled")), "dosed: whatever came since"
    assert session_rules.still_missing(_session()), "a pre-2026.12.1 timer of a session still booked"
    assert not session_rules.still_missing(_session(status="cancelled"))
    assert not session_rules.still_missing(_session(refused_at=T0))


def test_hours_since_the_dose_are_whole_and_never_negative() -> None:
    dosed = _session(authorised_at=T0 + timedelta(hours=1))
    assert session_rules.hours_since_dose(dosed, T0 + timedelta(hours=5, minutes=59)) == 4
    assert session_rules.hours_since_dose(dosed, T0) == 0


def test_a_no_show_opens_its_review_once_and_says_whether_the_tablet_was_released() -> None:
    assert RULES.timers.no_show_review is not None, "the rules in force name a no-show review"
    first = session_rules.no_show_review(RULES, _session())
    assert first is not None and first.triggers == ("dosing_session_no_show",)
    authorised = session_rules.no_show_review(RULES, _session(authorised_at=T0))
    assert authorised is not None and authorised.triggers == ("dosing_session_no_show_authorised",)
    assert session_rules.no_show_review(RULES, _session(no_show_at=T0)) is None, "already marked: once"
    assert session_rules.no_show_review(rules.load("2026.11.1"), _session()) is None, "no review before 2026.12.1"


def test_a_missing_check_in_review_names_its_hours() -> None:
    request = session_rules.missing_check_in_review(RULES)
    hours = int(RULES.timers.checkin_review_after.total_seconds() // 3600)
    assert request is not None and request.triggers == (f"no_checkin_{hours}h_after_dosing",)


def test_check_in_scores() -> None:
    scores = rules.score_checkin([1, 2, 3, 0, 0, 0, 0, 1, 2], None, [3] * 7)
    assert (scores.phq9_total, scores.phq9_item9, scores.pcl5_total, scores.gad7_total) == (9, 2, None, 21)
    assert scores.mood(T0) == rules.Mood(at=T0, phq9_item9=2, phq9_total=9, pcl5_total=None)
