"""Versioned, declarative eligibility rules, evaluated by a plain function.

The rule files in this folder are configuration: exclusions, review
conditions, thresholds and the questionnaire are data, never code branches.
Evaluation is pure so the same function decides live intakes and can replay
history under a proposed version.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from carecoord_contracts.common import EligibilityOutcome, Instrument

RULES_DIR = Path(__file__).parent
CURRENT_VERSION = "2026.11.1"

UNDER_MINIMUM_AGE = "under_minimum_age"
STATE_NOT_SERVED = "state_not_served"
BELOW_ENROLMENT_THRESHOLD = "below_enrolment_threshold"


class Action(StrEnum):
    exclude = "exclude"
    review = "review"


@dataclass(frozen=True)
class Question:
    code: str
    action: Action
    text: str


@dataclass(frozen=True)
class BloodPressureLimit:
    systolic: int
    diastolic: int
    reason: str

    def reached_by(self, systolic: int, diastolic: int) -> bool:
        return systolic >= self.systolic or diastolic >= self.diastolic


@dataclass(frozen=True)
class Facts:
    """Everything a decision looks at; assembled by the caller from stored intake data."""

    age: int
    state_of_residence: str
    served_states: frozenset[str]
    conditions: frozenset[str]  # questionnaire codes answered "yes"
    systolic: int
    diastolic: int
    totals: Mapping[Instrument, int]
    phq9_item9_positive: bool


@dataclass(frozen=True)
class Decision:
    outcome: EligibilityOutcome
    reasons: tuple[str, ...]
    rule_version: str


@dataclass(frozen=True)
class RuleSet:
    version: str
    minimum_age: int
    thresholds: Mapping[Instrument, int]
    bp_exclude: BloodPressureLimit
    bp_review: BloodPressureLimit
    item9_reason: str
    questions: tuple[Question, ...]

    def screening_findings(self, conditions: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The questionnaire's exclusions and review conditions, in questionnaire order."""
        exclusions = tuple(q.code for q in self.questions if q.code in conditions and q.action is Action.exclude)
        review = tuple(q.code for q in self.questions if q.code in conditions and q.action is Action.review)
        return exclusions, review

    def evaluate(self, facts: Facts) -> Decision:
        """Any exclusion makes the patient ineligible whatever else is true; then review; then eligible."""
        exclusions, review = self.screening_findings(facts.conditions)
        ineligible = list(exclusions)
        if facts.age < self.minimum_age:
            ineligible.insert(0, UNDER_MINIMUM_AGE)
        if facts.state_of_residence not in facts.served_states:
            ineligible.insert(0, STATE_NOT_SERVED)
        if self.bp_exclude.reached_by(facts.systolic, facts.diastolic):
            ineligible.append(self.bp_exclude.reason)
        met = [i for i, threshold in self.thresholds.items() if facts.totals.get(i, 0) >= threshold]
        if not met:
            ineligible.append(BELOW_ENROLMENT_THRESHOLD)
        if ineligible:
            return self._decide(EligibilityOutcome.ineligible, ineligible)

        needs_review = list(review)
        if self.bp_review.reached_by(facts.systolic, facts.diastolic):
            needs_review.append(self.bp_review.reason)
        if facts.phq9_item9_positive:
            needs_review.append(self.item9_reason)
        if needs_review:
            return self._decide(EligibilityOutcome.needs_review, needs_review)
        return self._decide(EligibilityOutcome.eligible, [f"{i.value}_threshold_met" for i in met])

    def _decide(self, outcome: EligibilityOutcome, reasons: list[str]) -> Decision:
        return Decision(outcome=outcome, reasons=tuple(dict.fromkeys(reasons)), rule_version=self.version)


def age_on(date_of_birth: date, day: date) -> int:
    """Completed years on `day` (a 29 February birthday counts from 1 March in common years)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def _limit(raw: Mapping[str, Any]) -> BloodPressureLimit:
    return BloodPressureLimit(systolic=int(raw["systolic"]), diastolic=int(raw["diastolic"]), reason=str(raw["reason"]))


def load(version: str = CURRENT_VERSION) -> RuleSet:
    raw = tomllib.loads((RULES_DIR / f"eligibility-{version}.toml").read_text())
    if raw["version"] != version:
        raise ValueError(f"rule file for {version} declares version {raw['version']}")
    thresholds = {Instrument(name): int(value) for name, value in raw["enrolment_thresholds"].items()}
    questions = tuple(Question(code=q["code"], action=Action(q["action"]), text=q["text"]) for q in raw["questions"])
    codes = [q.code for q in questions]
    if len(set(codes)) != len(codes):
        raise ValueError(f"rule file {version}: duplicate question codes")
    return RuleSet(
        version=version,
        minimum_age=int(raw["minimum_age"]),
        thresholds=thresholds,
        bp_exclude=_limit(raw["blood_pressure"]["exclude_at"]),
        bp_review=_limit(raw["blood_pressure"]["review_at"]),
        item9_reason=raw["phq9_item9_review_reason"],
        questions=questions,
    )
