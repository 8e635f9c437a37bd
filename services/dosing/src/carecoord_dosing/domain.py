"""The treatment-plan status machine, as plain rules with no I/O.

    draft -> active -> paused <-> active -> completed | discontinued

A plan is paused while *any* treatment hold is open and resumes only when
every hold has been released by a clinician's decision.
"""

from __future__ import annotations

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


def check_dosing_limits(starting_dose_mg: int, max_dose_mg: int, max_step_mg: int) -> None:
    if starting_dose_mg > max_dose_mg:
        raise PlanRuleViolation("the starting dose exceeds the per-session maximum")
    if max_step_mg > max_dose_mg:
        raise PlanRuleViolation("the maximum step exceeds the per-session maximum")
