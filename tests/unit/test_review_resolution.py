"""Resolving a review with a dose change (safety): the body names the dose with its decision only,
and the dose is checked against the plan's limits safety keeps from dosing's events."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from carecoord_safety.domain import plan_limits
from carecoord_safety.domain.plan_limits import PlanView
from carecoord_safety.schemas import ResolveReview

PLAN = PlanView(plan_id=uuid.uuid4(), status="paused", max_dose_mg=300, max_step_mg=50, current_dose_mg=150)


def test_resume_with_dose_change_carries_the_new_dose() -> None:
    body = ResolveReview(clinician_id="dr-lee", decision="resume_with_dose_change", dose_mg=100)  # type: ignore[arg-type]
    assert body.dose_mg == 100


def test_resume_with_dose_change_without_a_dose_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs dose_mg"):
        ResolveReview(clinician_id="dr-lee", decision="resume_with_dose_change")  # type: ignore[arg-type]


@pytest.mark.parametrize("decision", ["resume", "discontinue"])
def test_a_decision_without_a_dose_change_refuses_a_dose(decision: str) -> None:
    ResolveReview(clinician_id="dr-lee", decision=decision)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="only with resume_with_dose_change"):
        ResolveReview(clinician_id="dr-lee", decision=decision, dose_mg=100)  # type: ignore[arg-type]


@pytest.mark.parametrize("dose", [0, 1001])
def test_a_dose_outside_the_contract_bounds_is_refused(dose: int) -> None:
    with pytest.raises(ValidationError):
        ResolveReview(clinician_id="dr-lee", decision="resume_with_dose_change", dose_mg=dose)  # type: ignore[arg-type]


def test_the_dose_must_be_within_the_plans_maximum_and_one_step() -> None:
    assert plan_limits.dose_refusal(PLAN, 200) is None, "one step up"
    assert plan_limits.dose_refusal(PLAN, 100) is None, "one step down"
    assert plan_limits.dose_refusal(PLAN, 201).code == "dose_step_above_plan_maximum"  # type: ignore[union-attr]
    assert plan_limits.dose_refusal(PLAN, 99).code == "dose_step_above_plan_maximum"  # type: ignore[union-attr]
    at_cap = PlanView(PLAN.plan_id, "paused", max_dose_mg=300, max_step_mg=50, current_dose_mg=280)
    assert plan_limits.dose_refusal(at_cap, 300) is None
    assert plan_limits.dose_refusal(at_cap, 301).code == "dose_above_plan_maximum"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", ["draft", "discontinued", "completed"])
def test_only_a_live_plans_dose_can_change(status: str) -> None:
    plan = PlanView(PLAN.plan_id, status, 300, 50, 150)
    assert plan_limits.dose_refusal(plan, 150).code == "no_live_plan"  # type: ignore[union-attr]
    assert plan_limits.dose_refusal(None, 150).code == "no_live_plan"  # type: ignore[union-attr]
