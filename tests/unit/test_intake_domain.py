"""Intake's pure decisions (carecoord_intake.domain), without a database: which decision a clinician records."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from carecoord_contracts.common import EligibilityOutcome, Instrument
from carecoord_intake import domain, rules
from carecoord_shared.errors import RuleViolation

CURRENT = SimpleNamespace(
    decision_id=uuid.uuid4(), outcome="needs_review", reasons=["bp_review"], rule_version="2026.11.1"
)


def test_missing_names_every_step_still_to_do_in_order() -> None:
    nothing = domain.IntakeInputs(scores={}, screening=None, blood_pressure=None, coverage=None)
    assert nothing.missing == [
        "assessment_phq9",
        "assessment_gad7",
        "assessment_pcl5",
        "medical_screening",
        "blood_pressure",
        "coverage",
    ]
    done = object()
    complete = domain.IntakeInputs(
        scores=dict.fromkeys(Instrument, done), screening=done, blood_pressure=done, coverage=done
    )
    assert complete.missing == []


@pytest.mark.parametrize("outcome", [EligibilityOutcome.eligible, EligibilityOutcome.ineligible])
def test_an_override_decides_a_needs_review_intake_under_its_rule_version(outcome: EligibilityOutcome) -> None:
    decision = domain.override(CURRENT, outcome=outcome, clinician_id="dr-lee")
    assert decision == domain.EligibilityDecision(
        outcome=outcome,
        reasons=["bp_review", "clinician_override"],
        rule_version="2026.11.1",
        basis="clinician_override",
        overrides=CURRENT.decision_id,
        overridden_by="dr-lee",
    )


@pytest.mark.parametrize("outcome", ["eligible", "ineligible"])
def test_only_a_needs_review_decision_can_be_overridden(outcome: str) -> None:
    decided = SimpleNamespace(**{**vars(CURRENT), "outcome": outcome})
    with pytest.raises(RuleViolation, match="only a needs_review"):
        domain.override(decided, outcome=EligibilityOutcome.eligible, clinician_id="dr-lee")
    with pytest.raises(RuleViolation, match="only a needs_review"):
        domain.override(None, outcome=EligibilityOutcome.eligible, clinician_id="dr-lee")


def test_an_override_must_decide() -> None:
    with pytest.raises(RuleViolation, match="an override decides"):
        domain.override(CURRENT, outcome=EligibilityOutcome.needs_review, clinician_id="dr-lee")


def test_a_re_evaluation_is_the_rules_decision_marked_as_the_clinicians() -> None:
    rule_set = rules.load()
    facts = rules.Facts(
        age=30,
        state_of_residence="NY",
        served_states=frozenset({"NY"}),
        conditions=frozenset(),
        systolic=120,
        diastolic=80,
        totals={Instrument.phq9: 27, Instrument.gad7: 0, Instrument.pcl5: 0},
        phq9_item9_positive=False,
    )
    by_rules = domain.by_rules(rule_set.evaluate(facts))
    again = domain.re_evaluation(rule_set, facts, current=CURRENT, clinician_id="dr-lee")
    assert (by_rules.basis, by_rules.overrides, by_rules.overridden_by) == ("rules", None, None)
    assert again.outcome == by_rules.outcome == EligibilityOutcome.eligible
    assert again.reasons == [*by_rules.reasons, "clinician_re_evaluation"]
    assert (again.basis, again.overrides, again.overridden_by) == (
        "clinician_re_evaluation",
        CURRENT.decision_id,
        "dr-lee",
    )
