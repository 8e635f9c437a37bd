"""Whom a clinician reaches in safety (ADR 0015): licensed in the patient's state AND related to the patient,
as a member of their care team (learnt from CareTeamChanged), the assignee of an open review of theirs, or
on call (or clinical lead) for their state now: the rota is safety's own, so only here does being on call
open a chart before a review is assigned. The same relations narrow the lists across patients."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.auth.care import ListScope, RelationLookup, care_relation_lookup, related_patients

from .models import care_relations, clinician_reviews, jurisdictions, on_call_shifts


def _on_call_now(clinician_id: str, now: datetime) -> Any:
    return (
        on_call_shifts.c.clinician_id == clinician_id,
        on_call_shifts.c.cancelled_at.is_(None),
        on_call_shifts.c.starts_at <= now,
        on_call_shifts.c.ends_at > now,
    )


async def on_call_basis(session: AsyncSession, patient_id: uuid.UUID, clinician_id: str, state: str) -> str | None:
    """A relation lookup (carecoord_shared.auth.care): a clinician on the rota for the patient's state now
    reaches the patient's chart here, where the safety picture is, audited as ``on_call`` (or ``clinical_lead``)."""
    found = await session.execute(
        select(on_call_shifts.c.role)
        .where(on_call_shifts.c.state == state, *_on_call_now(clinician_id, datetime.now(UTC)))
        .order_by(on_call_shifts.c.role.desc())  # on_call before clinical_lead
        .limit(1)
    )
    return found.scalar()


async def assignee_basis(session: AsyncSession, patient_id: uuid.UUID, clinician_id: str, _state: str) -> str | None:
    """A relation lookup: the assignee of an unresolved review of the patient, audited as ``assigned:<basis>``
    (other services learn the same from ClinicianReviewAssigned)."""
    found = await session.execute(
        select(clinician_reviews.c.assignment_basis)
        .where(
            clinician_reviews.c.patient_id == patient_id,
            clinician_reviews.c.assignee_id == clinician_id,
            clinician_reviews.c.status != "resolved",
        )
        .limit(1)
    )
    basis = found.scalar()
    return None if basis is None else f"assigned:{basis}"


# Tried in order, the first answer is the audit row's basis: the team outlasts a review, so it comes first.
RELATIONS: tuple[RelationLookup, ...] = (care_relation_lookup(care_relations), assignee_basis, on_call_basis)


def reachable(patient_id: ColumnElement[Any], scope: ListScope, now: datetime) -> ColumnElement[bool]:
    """For a list across patients: ``patient_id`` is one the clinician of ``scope`` reaches (see the module
    docstring), resident in a state they are licensed in."""
    mine = select(clinician_reviews.c.patient_id).where(
        clinician_reviews.c.assignee_id == scope.clinician_id, clinician_reviews.c.status != "resolved"
    )
    on_call_states = select(on_call_shifts.c.state).where(*_on_call_now(scope.clinician_id, now))
    resident = select(jurisdictions.c.patient_id).where(
        jurisdictions.c.state_of_residence.in_(scope.states),
        or_(
            jurisdictions.c.patient_id.in_(related_patients(care_relations, scope.clinician_id)),
            jurisdictions.c.patient_id.in_(mine),
            jurisdictions.c.state_of_residence.in_(on_call_states),
        ),
    )
    return patient_id.in_(resident)
