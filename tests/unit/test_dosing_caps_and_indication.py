"""Titration 2026.12.0 (issue 20, items 4 and 5): the program's dose caps, every limit relation, and
response measured on the indication's instrument against the intake baseline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from carecoord_contracts.common import DiagnosisCodes, Indication, Instrument, PlanStatus
from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_dosing import domain
from carecoord_dosing.domain import LimitRefused, Limits, PreDoseReading, Response
from carecoord_dosing.schemas import PlanCreate

RULES = domain.load_titration()
OLD = domain.load_titration("2026.11.1")
# A plan written before the program caps, with limits beyond them.
LEGACY = Limits(starting_dose_mg=100, max_dose_mg=600, max_step_mg=100)
NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def test_the_in_force_version_is_2026_12_0_with_caps_and_the_old_version_still_loads() -> None:
    assert domain.CURRENT_TITRATION == RULES.version == "2026.12.0"
    assert (RULES.program_max_dose_mg, RULES.program_max_step_mg) == (300, 50)
    assert OLD.program_max_dose_mg is None and not OLD.uses_intake_baseline


# --- item 4: limits at plan creation ---------------------------------------------------


def refused(start: int, cap: int, step: int) -> LimitRefused:
    with pytest.raises(LimitRefused) as caught:
        domain.check_dosing_limits(start, cap, step, RULES)
    return caught.value


def test_a_plan_at_the_program_caps_is_accepted_and_one_mg_past_is_refused_naming_the_limit_and_version() -> None:
    domain.check_dosing_limits(100, 300, 50, RULES)
    past = refused(100, 301, 50)
    assert past.reason == "max_dose_above_program_maximum"
    assert "300 mg" in str(past) and "2026.12.0" in str(past)
    step = refused(100, 300, 51)
    assert step.reason == "max_step_above_program_maximum" and "50 mg" in str(step) and "2026.12.0" in str(step)


def test_a_step_must_be_smaller_than_the_plans_maximum_dose() -> None:
    domain.check_dosing_limits(40, 50, 49, RULES)
    assert refused(40, 50, 50).reason == "max_step_not_below_max_dose"
    assert refused(10, 40, 50).reason == "max_step_not_below_max_dose"


def test_the_starting_dose_must_be_within_the_plans_maximum() -> None:
    domain.check_dosing_limits(300, 300, 50, RULES)
    assert refused(301, 300, 50).reason == "starting_dose_above_plan_maximum"


def test_limit_refusals_are_http_422_rule_violations() -> None:
    from carecoord_shared.errors import LimitExceeded, RuleViolation

    error = refused(100, 301, 50)
    assert (
        isinstance(error, LimitExceeded)
        and isinstance(error, domain.PlanRuleViolation)
        and isinstance(error, RuleViolation)
    )


# --- item 4: approvals and proposals -------------------------------------------------------


def test_an_approval_at_the_program_cap_is_accepted_and_above_it_refused_even_when_the_plan_allows_more() -> None:
    domain.check_dose_change(250, 300, LEGACY, RULES)
    with pytest.raises(LimitRefused) as caught:
        domain.check_dose_change(250, 301, LEGACY, RULES)
    assert caught.value.reason == "dose_above_program_maximum" and "2026.12.0" in str(caught.value)


def test_an_approval_beyond_the_program_step_is_refused_even_when_the_plans_step_is_larger() -> None:
    domain.check_dose_change(200, 250, LEGACY, RULES)
    with pytest.raises(LimitRefused) as caught:
        domain.check_dose_change(200, 251, LEGACY, RULES)
    assert caught.value.reason == "dose_step_above_program_maximum" and "program's maximum step of 50 mg" in str(
        caught.value
    )


def test_a_legacy_dose_above_the_program_cap_may_come_down_to_it_in_one_approval_but_not_go_up() -> None:
    domain.check_dose_change(600, 300, LEGACY, RULES)
    with pytest.raises(LimitRefused):
        domain.check_dose_change(600, 350, LEGACY, RULES)


def test_a_proposal_never_passes_the_program_cap_nor_its_step() -> None:
    not_responding = Response(instrument=Instrument.phq9, baseline=20, latest=18, baseline_from_intake=True)
    assert domain.propose_dose(200, LEGACY, not_responding, RULES) == (250, ["inadequate_response_increase"])
    assert domain.propose_dose(280, LEGACY, not_responding, RULES) == (300, ["inadequate_response_increase"])
    assert domain.propose_dose(300, LEGACY, not_responding, RULES) == (300, ["at_maximum_dose"])
    assert domain.propose_dose(600, LEGACY, Response(worst_grade=3), RULES)[0] == 300
    assert domain.propose_dose(600, LEGACY, Response(), RULES)[0] == 300, "keeping the dose keeps it within the cap"


def test_a_session_above_the_program_cap_is_refused_even_within_the_plans_own_maximum() -> None:
    session = uuid.uuid4()
    reading = PreDoseReading(NOW - timedelta(minutes=5), True, appointment_id=session)
    assert (
        domain.authorisation_refusal(
            PlanStatus.active, 300, LEGACY, reading, appointment_id=session, now=NOW, rules=RULES, consented=True
        )
        is None
    )
    assert (
        domain.authorisation_refusal(
            PlanStatus.active, 301, LEGACY, reading, appointment_id=session, now=NOW, rules=RULES, consented=True
        )
        == "dose_above_cap"
    )


# --- item 5: indication, diagnosis codes, baselines -----------------------------------------


@pytest.mark.parametrize(
    ("indication", "instrument"),
    [
        (Indication.ptsd, Instrument.pcl5),
        (Indication.depression, Instrument.phq9),
        (Indication.anxiety, Instrument.gad7),
        (None, Instrument.phq9),
    ],
)
def test_each_indication_is_measured_on_its_instrument(indication: Indication | None, instrument: Instrument) -> None:
    assert RULES.instrument_for(indication) is instrument
    assert OLD.instrument_for(indication) is Instrument.phq9


def propose(
    instrument: Instrument, baseline: int | None, latest: int | None, from_intake: bool = True
) -> tuple[int, list[str]]:
    response = Response(instrument=instrument, baseline=baseline, latest=latest, baseline_from_intake=from_intake)
    return domain.propose_dose(150, Limits(100, 300, 50), response, RULES)


def test_a_pcl5_drop_of_10_points_from_intake_is_a_response_and_9_is_not() -> None:
    assert propose(Instrument.pcl5, 50, 40) == (150, ["responding_keep_dose"])
    assert propose(Instrument.pcl5, 50, 41) == (200, ["inadequate_response_increase"])


@pytest.mark.parametrize("instrument", [Instrument.phq9, Instrument.gad7])
def test_a_50_percent_drop_is_a_response_on_phq9_and_gad7(instrument: Instrument) -> None:
    assert propose(instrument, 15, 7) == (150, ["responding_keep_dose"]), "53 %"
    assert propose(instrument, 15, 8) == (200, ["inadequate_response_increase"]), "47 %"
    assert propose(instrument, 14, 7) == (150, ["responding_keep_dose"]), "exactly 50 %"


def test_without_an_intake_baseline_the_first_check_in_is_used_and_the_proposal_says_so() -> None:
    dose, rationale = propose(Instrument.pcl5, 50, 41, from_intake=False)
    assert dose == 200 and rationale == ["inadequate_response_increase", "no_intake_baseline_first_checkin_used"]
    assert "no_intake_baseline_first_checkin_used" in propose(Instrument.pcl5, 50, None, from_intake=False)[1]
    assert propose(Instrument.pcl5, None, None, from_intake=False) == (150, ["no_mood_data_keep_dose"])


def test_version_2026_11_1_still_measures_5_phq9_points_from_the_first_check_in() -> None:
    response = Response(instrument=Instrument.phq9, baseline=20, latest=15)
    assert domain.propose_dose(150, Limits(100, 300, 50), response, OLD) == (150, ["responding_keep_dose"])
    assert domain.propose_dose(150, Limits(100, 300, 50), response, RULES)[0] == 200, (
        "25 % is no response under 2026.12.0"
    )


CODES = TypeAdapter(DiagnosisCodes)


@pytest.mark.parametrize("code", ["F43.10", "F4310", "F33.1", "F331", "F41.1", "F43.12", "Z63.0", "F43", "T74.31XA"])
def test_icd10cm_codes_are_accepted_with_or_without_the_dot_and_kept_without_it(code: str) -> None:
    assert CODES.validate_python([code]) == [code.replace(".", "")]


@pytest.mark.parametrize(
    "code", ["f43.10", "F4.310", "F43.", "43.10", "F43.10.1", "F43.101234", "F 43.10", "F43-10", "", "FF3.1"]
)
def test_malformed_diagnosis_codes_are_refused(code: str) -> None:
    with pytest.raises(ValidationError):
        CODES.validate_python([code])


def test_a_plan_needs_one_to_twelve_distinct_diagnosis_codes() -> None:
    with pytest.raises(ValidationError):
        CODES.validate_python([])
    assert len(CODES.validate_python([f"F43.1{i}" for i in range(10)] + ["F33.1", "F41.1"])) == 12
    with pytest.raises(ValidationError):
        CODES.validate_python([f"F43.1{i}" for i in range(10)] + ["F33.1", "F41.1", "F32.9"])
    with pytest.raises(ValidationError, match="at most once"):
        CODES.validate_python(["F43.10", "F4310"])


def test_plan_creation_requires_an_indication_and_diagnosis_codes() -> None:
    body = {
        "patient_id": "6f1c2a52-4c7e-4d52-9a3c-0e0b6a2f7c11",
        "clinician_id": "dr-lee",
        "starting_dose_mg": 100,
        "max_dose_mg": 300,
        "max_step_mg": 50,
        "planned_sessions": 6,
    }
    with pytest.raises(ValidationError) as missing:
        PlanCreate.model_validate(body)
    assert {e["loc"][0] for e in missing.value.errors()} == {"indication", "diagnosis_codes"}
    with pytest.raises(ValidationError):
        PlanCreate.model_validate({**body, "indication": "insomnia", "diagnosis_codes": ["F43.10"]})
    plan = PlanCreate.model_validate({**body, "indication": "ptsd", "diagnosis_codes": ["F43.10"]})
    assert plan.indication is Indication.ptsd and plan.diagnosis_codes == ["F4310"]


def test_treatment_plan_created_carries_them_additively() -> None:
    old = TreatmentPlanCreated.model_validate(
        {
            "plan_id": "6f1c2a52-4c7e-4d52-9a3c-0e0b6a2f7c11",
            "starting_dose_mg": 100,
            "max_dose_mg": 300,
            "max_step_mg": 50,
            "planned_sessions": 6,
        }
    )
    assert old.indication is None and old.diagnosis_codes is None
    new = old.model_copy(update={"indication": Indication.ptsd, "diagnosis_codes": ["F4310"]})
    assert TreatmentPlanCreated.model_validate_json(new.model_dump_json()).diagnosis_codes == ["F4310"]
