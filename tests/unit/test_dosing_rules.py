"""Titration and session authorisation rules (dosing review), one test per rule."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecoord_contracts.common import PlanStatus
from carecoord_dosing import domain
from carecoord_dosing.domain import Limits, PreDoseReading, Response

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
    assert propose(150, baseline=20, latest=11, baseline_from_intake=True)[0] == 200, (
        "a 45 % drop is not yet a response"
    )


def test_without_mood_data_the_dose_is_kept() -> None:
    assert propose(150) == (150, ["no_mood_data_keep_dose"])


@given(
    current=st.integers(1, 300),
    worst=st.integers(0, 5),
    bp=st.booleans(),
    baseline=st.none() | st.integers(0, 27),
    latest=st.none() | st.integers(0, 27),
)
def test_a_proposal_is_never_above_the_cap_nor_beyond_one_step(
    current: int, worst: int, bp: bool, baseline: int | None, latest: int | None
) -> None:
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


SESSION = uuid.uuid4()
GOOD_READING = PreDoseReading(measured_at=NOW - timedelta(minutes=20), within_limits=True, appointment_id=SESSION)


def refusal(
    status: PlanStatus | None = PlanStatus.active,
    dose: int | None = 150,
    reading: PreDoseReading | None = GOOD_READING,
    rules: domain.TitrationRules = RULES,
    consented: bool = True,
) -> str | None:
    return domain.authorisation_refusal(
        status,
        dose,
        LIMITS if status else None,
        reading,
        appointment_id=SESSION,
        now=NOW,
        rules=rules,
        consented=consented,
    )


def reading(minutes_before: float, *, session: uuid.UUID | None = SESSION, within: bool = True) -> PreDoseReading:
    return PreDoseReading(
        measured_at=NOW - timedelta(minutes=minutes_before), within_limits=within, appointment_id=session
    )


def test_an_active_plan_with_an_approved_dose_and_a_good_reading_is_authorised() -> None:
    assert refusal() is None


def test_without_a_standing_treatment_consent_no_session_is_authorised_whatever_else_holds() -> None:
    assert refusal(consented=False) == "consent_missing", "never signed, or withdrawn"
    assert refusal(PlanStatus.paused, consented=False) == "consent_missing", "the first thing a patient must fix"
    assert refusal(None, consented=False) == "no_active_plan"
    assert (
        domain.grant_refusal(
            PlanStatus.active, same_plan=True, consented=False, authorised_at=NOW, now=NOW, rules=RULES
        )
        == "consent_missing"
    ), "a grant given before the withdrawal is not handed out again"


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
        ({"reading": None}, "no_pre_dose_bp_for_session"),
        ({"reading": reading(61)}, "pre_dose_bp_too_old"),
        ({"reading": reading(5, within=False)}, "blood_pressure_out_of_limits"),
    ],
)
def test_each_refusal_reason(kwargs: dict[str, object], reason: str) -> None:
    assert refusal(**kwargs) == reason  # type: ignore[arg-type]


def test_the_pre_dose_window_is_the_rules_and_a_reading_at_its_edge_still_counts() -> None:
    assert RULES.pre_dose_bp_window == timedelta(minutes=60) and RULES.pre_dose_bp_future_skew == timedelta(minutes=5)
    assert refusal(reading=reading(60)) is None
    assert refusal(reading=reading(60 + 1 / 60)) == "pre_dose_bp_too_old", "one second past the window"
    assert refusal(reading=reading(61)) == "pre_dose_bp_too_old", (
        "within the old 180 minutes, but not right before the dose"
    )


def test_a_reading_for_another_session_or_for_none_does_not_authorise() -> None:
    assert refusal(reading=reading(5, session=uuid.uuid4())) == "no_pre_dose_bp_for_session"
    assert refusal(reading=reading(5, session=None)) == "no_pre_dose_bp_for_session", "a reading naming no session"


def test_a_reading_stamped_in_the_future_counts_only_within_the_skew() -> None:
    assert refusal(reading=reading(-5)) is None
    assert refusal(reading=reading(-5 - 1 / 60)) == "pre_dose_bp_in_future"


def test_the_earlier_rule_version_is_kept_for_the_record() -> None:
    earlier = domain.load_titration("2026.11.1")
    assert refusal(reading=reading(170, session=uuid.uuid4()), rules=earlier) is None, (
        "2026.11.1: any reading from 180 minutes"
    )
    assert refusal(reading=reading(181), rules=earlier) == "no_recent_pre_dose_blood_pressure"


def test_the_dose_a_plan_allows_is_decided_in_one_place_with_a_code() -> None:
    assert domain.dose_refusal(150, 200, LIMITS, RULES) is None
    assert domain.dose_refusal(250, 300, LIMITS, RULES) is None, "at the cap and one step"
    assert domain.dose_refusal(300, 301, LIMITS, RULES).code == "dose_above_plan_maximum"  # type: ignore[union-attr]
    assert domain.dose_refusal(150, 201, LIMITS, RULES).code == "dose_step_above_plan_maximum"  # type: ignore[union-attr]
    assert domain.dose_refusal(150, 99, LIMITS, RULES).code == "dose_step_above_plan_maximum", (
        "a step down is a step too"
    )  # type: ignore[union-attr]


def test_the_program_caps_bind_a_review_dose_change_like_any_approval() -> None:
    """A plan recorded before the caps (limits above them): the program's maximum and step still hold,
    through the same function the review's dose change goes through."""
    legacy = Limits(starting_dose_mg=100, max_dose_mg=400, max_step_mg=100)
    assert domain.dose_refusal(250, 300, legacy, RULES) is None
    assert domain.dose_refusal(250, 301, legacy, RULES).code == "dose_above_program_maximum"  # type: ignore[union-attr]
    assert domain.dose_refusal(200, 251, legacy, RULES).code == "dose_step_above_program_maximum"  # type: ignore[union-attr]
    assert domain.dose_refusal(400, 300, legacy, RULES) is None, "a plan above the caps comes down to them in one step"
