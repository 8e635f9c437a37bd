"""Engagement's task decisions (pure): who gets which task, when it falls due, how each kind may end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carecoord_engagement import domain
from carecoord_engagement.domain import OUTCOMES, InvalidOutcome, Kind, Owner, OwnerRole
from carecoord_shared.errors import RuleViolation

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_a_missed_check_in_is_the_prescribers_call_and_the_clinicians_queue_before_there_is_one() -> None:
    assert domain.call_owner("dr-lee") == Owner("dr-lee", OwnerRole.clinician)
    assert domain.call_owner(None) == Owner(None, OwnerRole.clinician)


def test_an_escalation_goes_to_whom_it_names_and_to_operators_when_it_names_nobody() -> None:
    assert domain.escalation_owner("dr-on-call") == Owner("dr-on-call", OwnerRole.clinician)
    assert domain.escalation_owner(None) == Owner(None, OwnerRole.operator)


@pytest.mark.parametrize(
    ("level", "assignee", "paged"),
    [(0, "dr-prescriber", False), (1, "dr-on-call", True), (2, "dr-lead", True), (1, None, False)],
)
def test_only_an_escalation_to_someone_pages_them(level: int, assignee: str | None, paged: bool) -> None:
    assert domain.pages_for(level, assignee) is paged


def test_a_task_falls_due_after_its_cause_and_never_before_a_floor() -> None:
    assert domain.due_after(NOW, timedelta(hours=1)) == NOW + timedelta(hours=1)
    later = NOW + timedelta(hours=3)
    assert domain.due_after(NOW, timedelta(hours=1), not_before=later) == later


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_closes_with_its_own_outcomes_only(kind: Kind) -> None:
    assert OUTCOMES[kind], f"{kind} has no outcome to close with"
    for outcome in OUTCOMES[kind]:
        domain.check_close(kind, "open", outcome)
    others = set().union(*OUTCOMES.values()) - OUTCOMES[kind]
    for outcome in others:
        with pytest.raises(InvalidOutcome, match=kind.value):
            domain.check_close(kind, "open", outcome)


def test_a_closed_task_is_not_closed_again() -> None:
    with pytest.raises(RuleViolation, match="closed already"):
        domain.check_close(Kind.call_patient, "closed", "reached_patient")
