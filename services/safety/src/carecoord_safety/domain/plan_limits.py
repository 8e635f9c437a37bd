"""Whether a review's resolution may change the dose, judged from the plan as safety last heard it from dosing
(plan_view.py keeps that read model). Pure: the plan's values in, the refusal out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from carecoord_shared.errors import RuleViolation

LIVE = ("active", "paused")


class DoseNotAllowed(RuleViolation):
    """A review resolution's dose the plan does not allow; ``code`` says which limit."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PlanView:
    plan_id: uuid.UUID
    status: str
    max_dose_mg: int
    max_step_mg: int
    current_dose_mg: int


def dose_refusal(plan: PlanView | None, dose_mg: int) -> DoseNotAllowed | None:
    """The plan's own limits, as dosing applies them (domain.dose_refusal there, the source of truth)."""
    if plan is None or plan.status not in LIVE:
        return DoseNotAllowed(
            "no_live_plan", "the patient has no active or paused treatment plan whose dose could change"
        )
    if dose_mg > plan.max_dose_mg:
        return DoseNotAllowed(
            "dose_above_plan_maximum", f"{dose_mg} mg is above the plan's per-session maximum of {plan.max_dose_mg} mg"
        )
    if abs(dose_mg - plan.current_dose_mg) > plan.max_step_mg:
        return DoseNotAllowed(
            "dose_step_above_plan_maximum",
            f"{dose_mg} mg is more than one step ({plan.max_step_mg} mg) from the current {plan.current_dose_mg} mg",
        )
    return None
