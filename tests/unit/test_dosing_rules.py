"""Titration and session authorisation rules (dosing review), one test per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecoord_dosing import domain
from carecoord_dosing.domain import Limits, PreDoseReading, Response
from carecoord_shared.contracts.common import PlanStatus

RULES = domain.load_titration()
LIMITS = Limits(starting_dose_mg=100, max_dose_mg=300, max_step_mg=50)
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
NOT_RESPONDING = {"baseline": 20, "latest": 18, "baseline_from_intake": True}


def propose(current: int, **response: object) -> tuple[int, list[str]]:
    return domain.propose_dose(current, LIMITS, Response(**response), RULES)  # type: ignore[arg-type]


def test_no_side_effects_and_no_response_steps_up_one_step() -> None:
    assert propose(100, **NOT_RESPONDING) == (150, ["inadequate_response_increase"])


def test_a_step_up_never_passes_the_cap() -> None:
    assert propose(280, **NOT_RESPONDING) == (300, ["inadequate_response_increase"])
    assert propose(300, **NOT_RESPONDING) == (300, ["at_maximum_dose"])


def test_grade_2_means_no_increase() -> None:
    assert propose(150, worst_grade=2, **NOT_RESPONDING) == (150, ["grade_2_side_effect_no_increase"])


def test_a_blood_pressure_hold_means_no_increase() -> None:
    assert propose(150, blood_pressure_hold=True, **NOT_RESPONDING) == (150, ["blood_pressure_hold_no_increase"])


@pytest.mark.parametrize("grade", [3, 4, 5])
def test_grade_3_or_worse_decreases_by_one_step(grade: int) -> None:
    assert propose(200, worst_grade=grade, **NOT_RESPONDING) == (150, ["grade_3_side_effect_decrease"])
    assert propose(30, worst_grade=grade) == (1, ["grade_3_side_effect_decrease"]), "never below 1 mg"


def test_dissociation_at_grade_1_means_no_increase() -> None:
    assert propose(150, worst_grade=1, symptoms=frozenset({"dissociation"}), **NOT_RESPONDING)[0] == 150


def test_an_adequate_response_keeps_the_dose() -> None:
    assert propose(150, baseline=20, latest=10, baseline_from_intake=True) == (150, ["responding_keep_dose"])
    assert propose(150, baseline=20, latest=11, baseline_from_intake=True)[0] == 200, "a 45 % drop is not yet a response"


def test_without_mood_data_the_dose_is_kept() -> None:
    assert propose(150) == (150, ["no_mood_data_keep_dose"])


@given(
    current=st.integers(1, 300),
    worst=st.integers(0, 5),
    bp=st.booleans(),
    baseline=st.none() | st.integers(0, 27),
    latest=st.none() | st.integers(0, 27),
)
def test_a_proposal_is_never_above_the_cap_nor_beyond_one_step(current: int, worst: int, bp: bool, baseline: int | None, latest: int | None) -> None:
    dose, rationale = propose(current, worst_grade=worst, blood_pressure_hold=bp, baseline=baseline, latest=latest)
    assert 1 <= dose <= LIMITS.max_dose_mg
    assert abs(dose - current) <= LIMITS.max_step_mg
    if worst >= 2 or bp:
        assert dose <= current, "no increase after grade >= 2 or a blood-pressure hold"
    if worst >= 3:
        assert dose < current or current == 1
    assert rationale


def test_a_clinician_cannot_approve_above_the_cap_or_beyond_a_step() -> None:
    domain.check_dose_change(150, 200, LIMITS, RULES)
    with pytest.raises(domain.PlanRuleViolation, match="above the plan's per-session maximum"):
        domain.check_dose_change(250, 260, Limits(100, 250, 50), RULES)
    with pytest.raises(domain.PlanRuleViolation, match="more than one step"):
        domain.check_dose_change(100, 200, LIMITS, RULES)


GOOD_READING = PreDoseReading(measured_at=NOW - timedelta(minutes=20), within_limits=True)


def refusal(status: PlanStatus | None = PlanStatus.active, dose: int | None = 150, reading: PreDoseReading | None = GOOD_READING) -> str | None:
    return domain.authorisation_refusal(status, dose, LIMITS if status else None, reading, now=NOW, rules=RULES)


def test_an_active_plan_with_an_approved_dose_and_a_good_reading_is_authorised() -> None:
    assert refusal() is None


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"status": None}, "no_active_plan"),
        ({"status": PlanStatus.paused}, "plan_paused"),
        ({"status": PlanStatus.draft}, "plan_not_active"),
        ({"status": PlanStatus.discontinued}, "plan_not_active"),
        ({"status": PlanStatus.completed}, "plan_not_active"),
        ({"dose": None}, "no_approved_dose"),
        ({"dose": 301}, "dose_above_cap"),
        ({"reading": None}, "no_recent_pre_dose_blood_pressure"),
        ({"reading": PreDoseReading(NOW - timedelta(minutes=181), True)}, "no_recent_pre_dose_blood_pressure"),
        ({"reading": PreDoseReading(NOW - timedelta(minutes=5), False)}, "blood_pressure_out_of_limits"),
    ],
)
def test_each_refusal_reason(kwargs: dict[str, object], reason: str) -> None:
    assert refusal(**kwargs) == reason  # type: ignore[arg-type]


def test_a_reading_exactly_at_the_age_limit_still_counts() -> None:
    assert refusal(reading=PreDoseReading(NOW - timedelta(minutes=180), True)) is None
