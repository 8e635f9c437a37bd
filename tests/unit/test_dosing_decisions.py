"""Dosing's pure decisions around the plan use cases (domain.py): what a clinician's review decision does when
it releases a hold, which proposals may be approved, when a course is complete, the response a proposal reads."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from carecoord_contracts.common import Indication, Instrument, PlanStatus, ReviewDecision
from carecoord_dosing import domain
from carecoord_dosing.domain import Limits, Observed, PlanRuleViolation, PlanState, Proposal

RULES = domain.load_titration()
T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
PLAN = PlanState(
    plan_id=uuid.uuid4(),
    patient_id=uuid.uuid4(),
    status=PlanStatus.paused,
    limits=Limits(starting_dose_mg=100, max_dose_mg=300, max_step_mg=50),
    planned_sessions=6,
    sessions_completed=2,
    approved_dose_mg=150,
    indication=Indication.depression,
    created_at=T0,
)
CHANGE = ReviewDecision.resume_with_dose_change


def test_a_named_dose_within_the_limits_is_proposed_from_the_current_dose_and_approved() -> None:
    release = domain.hold_release(CHANGE, PLAN, dose_mg=120, current_dose_mg=150, rules=RULES)
    assert release.propose == Proposal(120, ["review_dose_change"], session_number=3, previous_dose_mg=150)
    assert release.approve and release.reconcile and release.refused is None


def test_a_named_dose_beyond_the_limits_is_refused_and_nothing_else_happens() -> None:
    release = domain.hold_release(CHANGE, PLAN, dose_mg=201, current_dose_mg=150, rules=RULES)
    assert release == domain.HoldRelease(refused="dose_step_above_plan_maximum")
    assert not release.reconcile, "the hold stays open: the plan stays paused"


@pytest.mark.parametrize("plan", [None, replace(PLAN, status=PlanStatus.draft)])
def test_a_dose_change_without_a_live_plan_is_refused(plan: PlanState | None) -> None:
    release = domain.hold_release(CHANGE, plan, dose_mg=120, current_dose_mg=150, rules=RULES)
    assert release.refused == "no_live_plan"


def test_discontinue_ends_the_plan_and_reconciles_nothing() -> None:
    release = domain.hold_release(ReviewDecision.discontinue, PLAN, dose_mg=None, current_dose_mg=None, rules=RULES)
    assert release.discontinue and release.propose is None and not release.reconcile


def test_a_dose_change_without_a_dose_proposes_one_step_down_for_approval() -> None:
    release = domain.hold_release(CHANGE, PLAN, dose_mg=None, current_dose_mg=None, rules=RULES)
    assert release.propose == Proposal(100, ["review_requested_dose_change"], 3, previous_dose_mg=150)
    assert not release.approve and release.reconcile
    low = replace(PLAN, approved_dose_mg=30)
    assert domain.hold_release(CHANGE, low, dose_mg=None, current_dose_mg=None, rules=RULES).propose == Proposal(
        1, ["review_requested_dose_change"], 3, previous_dose_mg=30
    ), "never below 1 mg"
    unapproved = replace(PLAN, approved_dose_mg=None)
    assert domain.hold_release(CHANGE, unapproved, dose_mg=None, current_dose_mg=None, rules=RULES).propose is None


@pytest.mark.parametrize("plan", [PLAN, None])
def test_resume_only_reconciles(plan: PlanState | None) -> None:
    release = domain.hold_release(ReviewDecision.resume, plan, dose_mg=None, current_dose_mg=None, rules=RULES)
    assert release == domain.HoldRelease() and release.reconcile


def test_only_a_pending_proposal_of_an_active_or_paused_plan_is_approved() -> None:
    proposal_id = uuid.uuid4()
    domain.check_approval(proposal_id, "proposed", PlanStatus.active)
    domain.check_approval(proposal_id, "proposed", PlanStatus.paused)
    with pytest.raises(PlanRuleViolation, match="only a pending proposal"):
        domain.check_approval(proposal_id, "superseded", PlanStatus.active)
    for status in (PlanStatus.draft, PlanStatus.completed, PlanStatus.discontinued):
        with pytest.raises(PlanRuleViolation, match=f"the plan is {status.value}"):
            domain.check_approval(proposal_id, "proposed", status)


def test_a_course_completes_after_its_planned_sessions_only_while_active() -> None:
    active = replace(PLAN, status=PlanStatus.active)
    assert not domain.course_completed(active, 5)
    assert domain.course_completed(active, 6)
    assert not domain.course_completed(PLAN, 6), "a paused plan is not completed by a session"


def test_the_response_reads_side_effects_blood_pressure_and_the_baseline() -> None:
    recent = [
        Observed("side_effect", grade=2, symptoms=("nausea",)),
        Observed("side_effect", grade=1, symptoms=("dizziness",)),
        Observed("vitals", within_limits=False),
        Observed("mood"),
    ]
    from_intake = domain.response_from(recent, [18, 15], 20, Instrument.phq9)
    assert (from_intake.worst_grade, from_intake.symptoms, from_intake.blood_pressure_hold) == (
        2,
        frozenset({"nausea", "dizziness"}),
        True,
    )
    assert (from_intake.baseline, from_intake.latest, from_intake.baseline_from_intake) == (20, 15, True)
    first_check_in = domain.response_from([], [18, 15], None, Instrument.gad7)
    assert (first_check_in.baseline, first_check_in.latest, first_check_in.baseline_from_intake) == (18, 15, False)
    assert first_check_in.instrument is Instrument.gad7 and not first_check_in.blood_pressure_hold
    assert domain.response_from([], [18], None, Instrument.phq9).latest is None, "one check-in is only a baseline"
    assert domain.response_from([], [], 20, Instrument.phq9).latest is None
