from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carecoord_contracts.common import US_STATES, EligibilityOutcome, Instrument
from carecoord_intake import rules
from carecoord_intake.rules import Action, Facts, age_on

RULES = rules.load()
EXCLUDE = sorted(q.code for q in RULES.questions if q.action is Action.exclude)
REVIEW = sorted(q.code for q in RULES.questions if q.action is Action.review)
SERVED = frozenset({"CO", "NY"})

# A patient every rule lets through: adult, served state, clean screening, normal BP, PHQ-9 of 12.
ELIGIBLE = Facts(
    age=35,
    state_of_residence="CO",
    served_states=SERVED,
    conditions=frozenset(),
    systolic=120,
    diastolic=80,
    totals={Instrument.phq9: 12, Instrument.gad7: 4, Instrument.pcl5: 10},
    phq9_item9_positive=False,
)


def decide(**changes: object) -> rules.Decision:
    return RULES.evaluate(replace(ELIGIBLE, **changes))  # type: ignore[arg-type]


def test_the_current_rule_file_loads_with_its_version_and_the_domain_thresholds() -> None:
    assert RULES.version == rules.CURRENT_VERSION
    assert RULES.minimum_age == 18
    assert dict(RULES.thresholds) == {Instrument.phq9: 10, Instrument.gad7: 10, Instrument.pcl5: 33}
    assert {"pregnant", "active_psychosis", "ketamine_hypersensitivity"} <= set(EXCLUDE)
    assert {"past_psychosis_stable", "significant_liver_disease"} <= set(REVIEW)


def test_a_patient_meeting_every_rule_is_eligible_with_the_threshold_met_as_reason() -> None:
    decision = decide()
    assert decision == rules.Decision(EligibilityOutcome.eligible, ("phq9_threshold_met",), RULES.version)


@pytest.mark.parametrize(
    ("totals", "reasons"),
    [
        ({Instrument.phq9: 10}, ("phq9_threshold_met",)),
        ({Instrument.gad7: 10}, ("gad7_threshold_met",)),
        ({Instrument.pcl5: 33}, ("pcl5_threshold_met",)),
        (
            {Instrument.phq9: 27, Instrument.gad7: 21, Instrument.pcl5: 80},
            ("phq9_threshold_met", "gad7_threshold_met", "pcl5_threshold_met"),
        ),
    ],
)
def test_any_one_enrolment_threshold_at_its_edge_is_enough(
    totals: dict[Instrument, int], reasons: tuple[str, ...]
) -> None:
    decision = decide(totals=totals)
    assert (decision.outcome, decision.reasons) == (EligibilityOutcome.eligible, reasons)


def test_just_below_every_threshold_is_ineligible() -> None:
    decision = decide(totals={Instrument.phq9: 9, Instrument.gad7: 9, Instrument.pcl5: 32})
    assert (decision.outcome, decision.reasons) == (EligibilityOutcome.ineligible, ("below_enrolment_threshold",))


@pytest.mark.parametrize(("age", "outcome"), [(17, EligibilityOutcome.ineligible), (18, EligibilityOutcome.eligible)])
def test_minimum_age_18(age: int, outcome: EligibilityOutcome) -> None:
    decision = decide(age=age)
    assert decision.outcome is outcome
    assert ("under_minimum_age" in decision.reasons) is (outcome is EligibilityOutcome.ineligible)


def test_a_state_not_served_is_ineligible() -> None:
    decision = decide(state_of_residence="TX")
    assert (decision.outcome, decision.reasons) == (EligibilityOutcome.ineligible, ("state_not_served",))


@pytest.mark.parametrize("code", EXCLUDE)
def test_every_absolute_exclusion_makes_the_patient_ineligible(code: str) -> None:
    decision = decide(conditions=frozenset({code}))
    assert (decision.outcome, decision.reasons) == (EligibilityOutcome.ineligible, (code,))


@pytest.mark.parametrize("code", REVIEW)
def test_every_review_condition_sends_the_decision_to_a_clinician(code: str) -> None:
    decision = decide(conditions=frozenset({code}))
    assert (decision.outcome, decision.reasons) == (EligibilityOutcome.needs_review, (code,))


def test_phq9_item9_positive_needs_review() -> None:
    decision = decide(phq9_item9_positive=True)
    assert (decision.outcome, decision.reasons) == (EligibilityOutcome.needs_review, ("phq9_item9_positive",))


@pytest.mark.parametrize(
    ("systolic", "diastolic", "outcome", "reason"),
    [
        (139, 89, EligibilityOutcome.eligible, None),
        (140, 80, EligibilityOutcome.needs_review, "elevated_blood_pressure"),
        (120, 90, EligibilityOutcome.needs_review, "elevated_blood_pressure"),
        (179, 109, EligibilityOutcome.needs_review, "elevated_blood_pressure"),
        (180, 80, EligibilityOutcome.ineligible, "uncontrolled_hypertension"),
        (120, 110, EligibilityOutcome.ineligible, "uncontrolled_hypertension"),
    ],
)
def test_blood_pressure_edges(systolic: int, diastolic: int, outcome: EligibilityOutcome, reason: str | None) -> None:
    decision = decide(systolic=systolic, diastolic=diastolic)
    assert decision.outcome is outcome
    if reason:
        assert decision.reasons == (reason,)


def test_a_declared_and_a_measured_hypertension_give_one_reason() -> None:
    decision = decide(conditions=frozenset({"uncontrolled_hypertension"}), systolic=190)
    assert decision.reasons == ("uncontrolled_hypertension",)


def test_every_reason_of_an_ineligible_decision_is_listed_and_review_reasons_do_not_mix_in() -> None:
    decision = decide(
        age=16,
        state_of_residence="TX",
        conditions=frozenset({"pregnant", "significant_liver_disease"}),
        totals={Instrument.phq9: 3},
        phq9_item9_positive=True,
    )
    assert decision.outcome is EligibilityOutcome.ineligible
    assert decision.reasons == ("state_not_served", "under_minimum_age", "pregnant", "below_enrolment_threshold")


def test_screening_findings_split_the_questionnaire_by_action() -> None:
    exclusions, review = RULES.screening_findings(frozenset({"breastfeeding", "past_psychosis_stable", "unknown_code"}))
    assert (exclusions, review) == (("breastfeeding",), ("past_psychosis_stable",))


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(2008, 11, 27), date(2026, 11, 27), 18),
        (date(2008, 11, 28), date(2026, 11, 27), 17),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
    ],
)
def test_age_counts_completed_years(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


def test_a_rule_file_that_declares_another_version_is_refused(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = (rules.RULES_DIR / f"eligibility-{rules.CURRENT_VERSION}.toml").read_text()
    (tmp_path / "eligibility-x.toml").write_text(text)
    monkeypatch.setattr(rules, "RULES_DIR", tmp_path)
    with pytest.raises(ValueError, match="declares version"):
        rules.load("x")


facts = st.builds(
    Facts,
    age=st.integers(0, 120),
    state_of_residence=st.sampled_from(sorted(US_STATES)),
    served_states=st.frozensets(st.sampled_from(sorted(US_STATES))),
    conditions=st.frozensets(st.sampled_from(EXCLUDE + REVIEW)),
    systolic=st.integers(50, 300),
    diastolic=st.integers(20, 200),
    totals=st.fixed_dictionaries(
        {Instrument.phq9: st.integers(0, 27), Instrument.gad7: st.integers(0, 21), Instrument.pcl5: st.integers(0, 80)}
    ),
    phq9_item9_positive=st.booleans(),
)


@given(facts, st.sampled_from(EXCLUDE))
def test_any_absolute_exclusion_yields_ineligible_whatever_else_is_true(f: Facts, exclusion: str) -> None:
    decision = RULES.evaluate(replace(f, conditions=f.conditions | {exclusion}))
    assert decision.outcome is EligibilityOutcome.ineligible
    assert exclusion in decision.reasons


@given(facts)
def test_under_18_or_unserved_is_always_ineligible(f: Facts) -> None:
    assert RULES.evaluate(replace(f, age=min(f.age, 17))).outcome is EligibilityOutcome.ineligible
    unserved = replace(f, served_states=f.served_states - {f.state_of_residence})
    assert RULES.evaluate(unserved).outcome is EligibilityOutcome.ineligible


@given(facts)
def test_every_decision_has_reasons_that_fit_the_event_contract(f: Facts) -> None:
    decision = RULES.evaluate(f)
    assert decision.reasons and len(decision.reasons) <= 20
    assert all(r.replace("_", "").isalnum() and r == r.lower() for r in decision.reasons)
    assert decision.rule_version == RULES.version
