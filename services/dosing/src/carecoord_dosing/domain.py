"""Dosing rules as plain functions with no I/O: the plan's status machine,
whether a dosing session may go ahead, and the next dose to propose.

    draft -> active -> paused <-> active -> completed | discontinued

A plan is paused while *any* treatment hold is open and resumes only when
every hold has been released by a clinician's decision.
"""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from carecoord_shared.contracts.common import PlanStatus
from carecoord_shared.errors import RuleViolation

ALLOWED: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.draft: frozenset({PlanStatus.active, PlanStatus.discontinued}),
    PlanStatus.active: frozenset({PlanStatus.paused, PlanStatus.completed, PlanStatus.discontinued}),
    PlanStatus.paused: frozenset({PlanStatus.active, PlanStatus.discontinued}),
    PlanStatus.completed: frozenset(),
    PlanStatus.discontinued: frozenset(),
}

LIVE = frozenset({PlanStatus.draft, PlanStatus.active, PlanStatus.paused})


class PlanRuleViolation(RuleViolation):
    """A requested change the plan's rules forbid; the message says which rule."""


def check_transition(current: PlanStatus, target: PlanStatus) -> None:
    if target not in ALLOWED[current]:
        raise PlanRuleViolation(f"a {current.value} plan cannot become {target.value}")


def check_activation(current: PlanStatus, open_holds: int) -> None:
    check_transition(current, PlanStatus.active)
    if current is PlanStatus.draft and open_holds:
        raise PlanRuleViolation(f"the patient has {open_holds} open treatment hold(s); a clinician must resolve them first")


def status_with_holds(current: PlanStatus, open_holds: int) -> PlanStatus:
    """The status a plan must have given how many holds are open."""
    if current is PlanStatus.active and open_holds > 0:
        return PlanStatus.paused
    if current is PlanStatus.paused and open_holds == 0:
        return PlanStatus.active
    return current


@dataclass(frozen=True)
class Limits:
    starting_dose_mg: int
    max_dose_mg: int
    max_step_mg: int


def check_dosing_limits(starting_dose_mg: int, max_dose_mg: int, max_step_mg: int) -> None:
    if starting_dose_mg > max_dose_mg:
        raise PlanRuleViolation("the starting dose exceeds the per-session maximum")
    if max_step_mg > max_dose_mg:
        raise PlanRuleViolation("the maximum step exceeds the per-session maximum")


@dataclass(frozen=True)
class DoseRefusal:
    code: str
    message: str


def dose_refusal(current_mg: int | None, new_mg: int, limits: Limits) -> DoseRefusal | None:
    """Is this dose allowed for this plan? The one place that decides, for every door a dose comes
    through (a proposal's approval, a review resolved with a dose change): never above the plan's
    per-session maximum, never more than one step from the current dose. None when allowed."""
    if new_mg > limits.max_dose_mg:
        return DoseRefusal(
            "dose_above_plan_maximum", f"{new_mg} mg is above the plan's per-session maximum of {limits.max_dose_mg} mg"
        )
    if current_mg is not None and abs(new_mg - current_mg) > limits.max_step_mg:
        return DoseRefusal(
            "dose_step_above_plan_maximum",
            f"{new_mg} mg is more than one step ({limits.max_step_mg} mg) from the current {current_mg} mg",
        )
    return None


def check_dose_change(current_mg: int | None, new_mg: int, limits: Limits) -> None:
    """A dose a clinician approves: refused (PlanRuleViolation) unless dose_refusal allows it."""
    if (refusal := dose_refusal(current_mg, new_mg, limits)) is not None:
        raise PlanRuleViolation(refusal.message)


# --- configuration -------------------------------------------------------------

CONFIG_DIR = Path(__file__).parent
CURRENT_TITRATION = "2026.12.0"


@dataclass(frozen=True)
class TitrationRules:
    version: str
    adequate_phq9_improvement: int
    no_increase_symptoms: frozenset[str]
    pre_dose_bp_window: timedelta
    pre_dose_bp_future_skew: timedelta
    pre_dose_bp_for_session: bool


def load_titration(version: str = CURRENT_TITRATION) -> TitrationRules:
    raw = tomllib.loads((CONFIG_DIR / f"titration-{version}.toml").read_text())
    if raw["version"] != version:
        raise ValueError(f"titration file for {version} declares version {raw['version']}")
    return TitrationRules(
        version=version,
        adequate_phq9_improvement=int(raw["adequate_phq9_improvement"]),
        no_increase_symptoms=frozenset(raw["no_increase_symptoms"]),
        **_pre_dose_bp(raw),
    )


def _pre_dose_bp(raw: dict[str, Any]) -> dict[str, Any]:
    """From 2026.12.0 the reading must name the session and fall within a window before it;
    earlier versions (kept for the record) took any pre-dose reading no older than a maximum age."""
    if "pre_dose_bp_window_minutes" in raw:
        return {
            "pre_dose_bp_window": timedelta(minutes=int(raw["pre_dose_bp_window_minutes"])),
            "pre_dose_bp_future_skew": timedelta(minutes=int(raw["pre_dose_bp_future_skew_minutes"])),
            "pre_dose_bp_for_session": True,
        }
    return {
        "pre_dose_bp_window": timedelta(minutes=int(raw["pre_dose_bp_max_age_minutes"])),
        "pre_dose_bp_future_skew": timedelta(0),
        "pre_dose_bp_for_session": False,
    }


# --- session authorisation -----------------------------------------------------


@dataclass(frozen=True)
class PreDoseReading:
    measured_at: datetime
    within_limits: bool
    appointment_id: uuid.UUID | None = None


def pre_dose_bp_refusal(reading: PreDoseReading | None, appointment_id: uuid.UUID, *, now: datetime, rules: TitrationRules) -> str | None:
    """Does this reading (the latest pre-dose one taken for the session) authorise the session at ``now``?

    It must name the session's appointment, be taken no earlier than the rules' window before
    ``now`` and no later than ``now`` plus a small clock skew, and be within limits."""
    if not rules.pre_dose_bp_for_session:  # titration before 2026.12.0, kept for the record
        if reading is None or now - reading.measured_at > rules.pre_dose_bp_window:
            return "no_recent_pre_dose_blood_pressure"
    elif reading is None or reading.appointment_id != appointment_id:
        return "no_pre_dose_bp_for_session"
    elif now - reading.measured_at > rules.pre_dose_bp_window:
        return "pre_dose_bp_too_old"
    elif reading.measured_at - now > rules.pre_dose_bp_future_skew:
        return "pre_dose_bp_in_future"
    return None if reading.within_limits else "blood_pressure_out_of_limits"


def authorisation_refusal(
    status: PlanStatus | None,
    approved_dose_mg: int | None,
    limits: Limits | None,
    reading: PreDoseReading | None,
    *,
    appointment_id: uuid.UUID,
    now: datetime,
    rules: TitrationRules,
) -> str | None:
    """Why a dosing session may not go ahead, or None when it may. The last line of defence."""
    if status is None or limits is None:
        return "no_active_plan"
    if status is PlanStatus.paused:
        return "plan_paused"
    if status is not PlanStatus.active:
        return "plan_not_active"
    if approved_dose_mg is None:
        return "no_approved_dose"
    if approved_dose_mg > limits.max_dose_mg:
        return "dose_above_cap"
    return pre_dose_bp_refusal(reading, appointment_id, now=now, rules=rules)


# --- titration -----------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """How the patient responded since the previous session."""

    worst_grade: int = 0
    symptoms: frozenset[str] = frozenset()
    blood_pressure_hold: bool = False
    phq9_baseline: int | None = None
    phq9_latest: int | None = None


def propose_dose(current_mg: int, limits: Limits, response: Response, rules: TitrationRules) -> tuple[int, list[str]]:
    """The next session's dose and why. Never above the cap, never beyond one step."""
    step = limits.max_step_mg
    if response.worst_grade >= 3:
        return max(current_mg - step, 1), ["grade_3_side_effect_decrease"]
    reasons = []
    if response.worst_grade == 2:
        reasons.append("grade_2_side_effect_no_increase")
    if response.blood_pressure_hold:
        reasons.append("blood_pressure_hold_no_increase")
    if response.symptoms & rules.no_increase_symptoms:
        reasons.append("tolerability_no_increase")
    if (
        response.phq9_baseline is not None
        and response.phq9_latest is not None
        and response.phq9_baseline - response.phq9_latest >= rules.adequate_phq9_improvement
    ):
        reasons.append("responding_keep_dose")
    if response.phq9_latest is None:
        reasons.append("no_mood_data_keep_dose")
    if reasons:
        return min(current_mg, limits.max_dose_mg), reasons
    if current_mg >= limits.max_dose_mg:
        return limits.max_dose_mg, ["at_maximum_dose"]
    return min(current_mg + step, limits.max_dose_mg), ["inadequate_response_increase"]
