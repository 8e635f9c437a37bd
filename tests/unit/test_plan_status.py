from __future__ import annotations

import pytest

from carecoord_contracts.common import PlanStatus as S
from carecoord_dosing import domain

RULES = domain.load_titration()


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.draft, S.active),
        (S.active, S.paused),
        (S.paused, S.active),
        (S.active, S.completed),
        (S.paused, S.discontinued),
    ],
)
def test_allowed_transitions(current: S, target: S) -> None:
    domain.check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.draft, S.paused),
        (S.completed, S.active),
        (S.discontinued, S.active),
        (S.paused, S.completed),
        (S.active, S.draft),
    ],
)
def test_forbidden_transitions_say_why(current: S, target: S) -> None:
    with pytest.raises(domain.PlanRuleViolation, match=f"a {current.value} plan cannot become {target.value}"):
        domain.check_transition(current, target)


def test_a_plan_is_paused_exactly_while_a_hold_is_open() -> None:
    assert domain.status_with_holds(S.active, 1) is S.paused
    assert domain.status_with_holds(S.paused, 2) is S.paused
    assert domain.status_with_holds(S.paused, 0) is S.active
    assert domain.status_with_holds(S.active, 0) is S.active
    assert domain.status_with_holds(S.draft, 3) is S.draft
    assert domain.status_with_holds(S.discontinued, 0) is S.discontinued


def test_a_draft_cannot_be_activated_while_a_hold_is_open() -> None:
    with pytest.raises(domain.PlanRuleViolation, match="open treatment hold"):
        domain.check_activation(S.draft, 1)
    domain.check_activation(S.draft, 0)


def test_dosing_limits_are_consistent() -> None:
    with pytest.raises(domain.PlanRuleViolation, match="starting dose"):
        domain.check_dosing_limits(starting_dose_mg=400, max_dose_mg=300, max_step_mg=50, rules=RULES)
    with pytest.raises(domain.PlanRuleViolation, match="maximum step"):
        domain.check_dosing_limits(starting_dose_mg=100, max_dose_mg=300, max_step_mg=301, rules=RULES)
