"""Who a review is with, pure: the decisions assignment.py (the use cases) loads candidates for and saves.

The ladder, the same for every review:

- opened: the patient's prescriber, unless they are away until the review is due; then the clinician on call
  for the patient's state; nobody known: unassigned (the engagement service gives operations a task);
- no review visit could be booked in time (ReviewAppointmentUnavailable): a review still with its prescriber
  (or with nobody) goes to on-call, who can arrange care outside the calendar;
- overdue (not acknowledged by its due time): paged to on-call, escalation level 1;
- still not acknowledged ``lead_after`` later: paged to the state's clinical lead, level 2.

Each step that changes something is one ClinicianReviewAssigned; a step with nobody to give it to says
``unassigned`` once rather than pretending someone was told (at the top rung, with no clinical lead on the rota,
the review stays with on-call, who was paged).
"""

from __future__ import annotations

from dataclasses import dataclass

from carecoord_contracts.common import AssignmentBasis

ON_CALL = "on_call"
CLINICAL_LEAD = "clinical_lead"
ROTA_ROLES = (ON_CALL, CLINICAL_LEAD)


@dataclass(frozen=True)
class Candidates:
    """Who could take a review of one patient now (from the care team, the rota and the absences)."""

    prescriber: str | None
    prescriber_away_until_due: bool
    on_call: str | None
    clinical_lead: str | None


NOBODY = Candidates(None, False, None, None)


@dataclass(frozen=True)
class Assignment:
    assignee_id: str | None
    basis: AssignmentBasis
    escalation_level: int


@dataclass(frozen=True)
class Current:
    """A review's assignment as loaded."""

    assignee_id: str | None
    basis: AssignmentBasis | None
    escalation_level: int


def at_open(candidates: Candidates) -> Assignment:
    if candidates.prescriber is not None and not candidates.prescriber_away_until_due:
        return Assignment(candidates.prescriber, AssignmentBasis.prescriber, 0)
    if candidates.on_call is not None:
        return Assignment(candidates.on_call, AssignmentBasis.on_call, 0)
    return Assignment(None, AssignmentBasis.unassigned, 0)


def when_unbookable(candidates: Candidates, current: Current) -> Assignment | None:
    """No visit before it is due: on-call takes a review nobody else has taken by hand or by escalation."""
    if current.basis not in (None, AssignmentBasis.prescriber, AssignmentBasis.unassigned):
        return None
    if candidates.on_call is None or candidates.on_call == current.assignee_id:
        return None
    return Assignment(candidates.on_call, AssignmentBasis.on_call, current.escalation_level)


def escalate(candidates: Candidates, current: Current) -> Assignment | None:
    """The next rung above ``current``; None once at the top (the clinical lead was paged)."""
    if current.escalation_level == 0:
        if candidates.on_call is not None:
            return Assignment(candidates.on_call, AssignmentBasis.on_call, 1)
        # Nobody on call: straight to the lead rather than page nobody.
        if candidates.clinical_lead is not None:
            return Assignment(candidates.clinical_lead, AssignmentBasis.clinical_lead, 1)
        return Assignment(None, AssignmentBasis.unassigned, 1)
    if current.escalation_level == 1:
        if current.basis is AssignmentBasis.clinical_lead:
            return None  # the lead was paged at level 1 already
        if candidates.clinical_lead is not None:
            return Assignment(candidates.clinical_lead, AssignmentBasis.clinical_lead, 2)
        # No lead on the rota: it stays with on-call (who was paged) rather than with nobody.
        return None
    return None
