"""Intake's decisions, pure: what the stored intake data lacks, what the rules look at, and which
eligibility decision a submission, an override or a re-evaluation records. No I/O.

The use cases (intake.py) load the patient and their latest submissions, call these, and
write and announce what they return. The scoring of each instrument is ``scoring``, the
eligibility rules ``rules``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from carecoord_contracts.common import EligibilityOutcome, Instrument
from carecoord_shared.errors import RuleViolation

from .rules import Decision, Facts, RuleSet, age_on

OVERRIDE_REASON = "clinician_override"
RE_EVALUATION_REASON = "clinician_re_evaluation"


class Basis:
    """What made an eligibility decision (the decision row's ``basis``)."""

    rules = "rules"
    clinician_override = OVERRIDE_REASON
    clinician_re_evaluation = RE_EVALUATION_REASON


@dataclass(frozen=True)
class IntakeInputs:
    """The latest stored submission of each kind (rows), None where there is none yet."""

    scores: dict[Instrument, Any]
    screening: Any | None
    blood_pressure: Any | None
    coverage: Any | None

    @property
    def missing(self) -> list[str]:
        """The intake steps still to do, by name."""
        steps = {"medical_screening": self.screening, "blood_pressure": self.blood_pressure, "coverage": self.coverage}
        return [f"assessment_{i.value}" for i in Instrument if i not in self.scores] + [
            name for name, done in steps.items() if done is None
        ]


class CurrentDecision(Protocol):
    """What a clinician's decision needs of the decision in force (its stored row)."""

    decision_id: uuid.UUID
    outcome: str
    reasons: list[str]
    rule_version: str


@dataclass(frozen=True)
class EligibilityDecision:
    """A decision to record: each field is written once, to the decision row and to EligibilityDetermined."""

    outcome: EligibilityOutcome
    reasons: list[str]
    rule_version: str
    basis: str
    # A clinician's decision: the one it supersedes and who made it.
    overrides: uuid.UUID | None = None
    overridden_by: str | None = None


def facts(
    inputs: IntakeInputs, *, date_of_birth: date, state_of_residence: str, served_states: frozenset[str], today: date
) -> Facts:
    """What the rules look at, from the latest submission of each kind (the intake is complete)."""
    assert not inputs.missing and inputs.screening is not None and inputs.blood_pressure is not None
    phq9 = inputs.scores[Instrument.phq9]
    return Facts(
        age=age_on(date_of_birth, today),
        state_of_residence=state_of_residence,
        served_states=served_states,
        conditions=conditions(inputs.screening.answers),
        systolic=inputs.blood_pressure.systolic,
        diastolic=inputs.blood_pressure.diastolic,
        totals={i: row.total for i, row in inputs.scores.items()},
        phq9_item9_positive=bool(phq9.item9_positive),
    )


def conditions(answers: Mapping[str, bool]) -> frozenset[str]:
    """The questionnaire codes answered yes."""
    return frozenset(code for code, yes in answers.items() if yes)


def by_rules(decision: Decision) -> EligibilityDecision:
    """The automatic decision, made as soon as the intake is complete."""
    return EligibilityDecision(
        outcome=decision.outcome,
        reasons=list(decision.reasons),
        rule_version=decision.rule_version,
        basis=Basis.rules,
    )


def override(current: CurrentDecision | None, *, outcome: EligibilityOutcome, clinician_id: str) -> EligibilityDecision:
    """A clinician decides a needs-review intake: eligible or ineligible, under the rule version that asked."""
    if current is None or current.outcome != EligibilityOutcome.needs_review.value:
        raise RuleViolation("only a needs_review eligibility decision can be overridden by a clinician")
    if outcome is EligibilityOutcome.needs_review:
        raise RuleViolation("an override decides: eligible or ineligible")
    return EligibilityDecision(
        outcome=outcome,
        reasons=[*current.reasons, OVERRIDE_REASON],
        rule_version=current.rule_version,
        basis=Basis.clinician_override,
        overrides=current.decision_id,
        overridden_by=clinician_id,
    )


def re_evaluation(rules: RuleSet, facts: Facts, *, current: CurrentDecision, clinician_id: str) -> EligibilityDecision:
    """The rules in force decide again on the (updated) facts; a clinician's act, superseding the current decision.

    A re-evaluation can never pass an exclusion the rules make: a needs_review result is then
    decided with an override.
    """
    decision = rules.evaluate(facts)
    return EligibilityDecision(
        outcome=decision.outcome,
        reasons=[*decision.reasons, RE_EVALUATION_REASON],
        rule_version=decision.rule_version,
        basis=Basis.clinician_re_evaluation,
        overrides=current.decision_id,
        overridden_by=clinician_id,
    )
