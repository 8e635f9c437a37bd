"""Who a review is with: the ladder in carecoord_safety.domain.assignment, decided without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carecoord_contracts.common import AssignmentBasis
from carecoord_safety.assignment import Found
from carecoord_safety.domain.assignment import (
    NOBODY,
    Assignment,
    Candidates,
    Current,
    at_open,
    escalate,
    when_unbookable,
)

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
TEAM = Candidates("dr-prescriber", False, "dr-on-call", "dr-lead")


def test_a_review_opens_with_the_prescriber() -> None:
    assert at_open(TEAM) == Assignment("dr-prescriber", AssignmentBasis.prescriber, 0)


def test_a_prescriber_away_until_it_is_due_gives_it_to_on_call() -> None:
    away = Found(TEAM, prescriber_away_until=T0 + timedelta(hours=2))
    assert at_open(away.for_due(T0 + timedelta(hours=1))) == Assignment("dr-on-call", AssignmentBasis.on_call, 0)
    # Back before it is due: still theirs.
    assert at_open(away.for_due(T0 + timedelta(hours=4))).assignee_id == "dr-prescriber"


def test_nobody_known_is_said_not_hidden() -> None:
    assert at_open(NOBODY) == Assignment(None, AssignmentBasis.unassigned, 0)
    assert at_open(Candidates(None, False, "dr-on-call", None)).basis is AssignmentBasis.on_call


def test_overdue_pages_on_call_then_the_lead_then_stops() -> None:
    opened = Current("dr-prescriber", AssignmentBasis.prescriber, 0)
    first = escalate(TEAM, opened)
    assert first == Assignment("dr-on-call", AssignmentBasis.on_call, 1)
    second = escalate(TEAM, Current(first.assignee_id, first.basis, first.escalation_level))
    assert second == Assignment("dr-lead", AssignmentBasis.clinical_lead, 2)
    assert escalate(TEAM, Current(second.assignee_id, second.basis, second.escalation_level)) is None


def test_with_nobody_on_call_the_lead_is_paged_first_and_only_once() -> None:
    no_on_call = Candidates("dr-prescriber", False, None, "dr-lead")
    first = escalate(no_on_call, Current("dr-prescriber", AssignmentBasis.prescriber, 0))
    assert first == Assignment("dr-lead", AssignmentBasis.clinical_lead, 1)
    assert escalate(no_on_call, Current(first.assignee_id, first.basis, 1)) is None


def test_with_no_lead_on_the_rota_it_stays_with_on_call() -> None:
    no_lead = Candidates("dr-prescriber", False, "dr-on-call", None)
    assert escalate(no_lead, Current("dr-on-call", AssignmentBasis.on_call, 1)) is None
    assert escalate(NOBODY, Current("dr-prescriber", AssignmentBasis.prescriber, 0)) == Assignment(
        None, AssignmentBasis.unassigned, 1
    )


def test_an_unbookable_review_goes_to_on_call_unless_someone_took_it() -> None:
    with_prescriber = Current("dr-prescriber", AssignmentBasis.prescriber, 0)
    assert when_unbookable(TEAM, with_prescriber) == Assignment("dr-on-call", AssignmentBasis.on_call, 0)
    assert when_unbookable(TEAM, Current("dr-on-call", AssignmentBasis.on_call, 0)) is None
    assert when_unbookable(TEAM, Current("dr-x", AssignmentBasis.reassigned, 0)) is None
    assert when_unbookable(Candidates("dr-prescriber", False, None, "dr-lead"), with_prescriber) is None
