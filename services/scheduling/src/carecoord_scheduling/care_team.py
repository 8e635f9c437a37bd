"""The patient's care team, which scheduling owns (ADR 0015): set by the bookings that start the care and
changed by staff, each change written with its CareTeamChanged in one transaction.

Booking the initial evaluation makes its clinician the prescriber, booking the preparation session makes
its clinician the therapist (the other member is kept); a booking that names the member already there
changes nothing and says nothing. Every other service learns the team from CareTeamChanged
(carecoord_shared.auth.care.learn_care_relations); scheduling writes its own rows here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.common import AppointmentType, CareRole
from carecoord_contracts.scheduling import CareTeamChanged
from carecoord_shared.auth import replace_care_team
from carecoord_shared.errors import LimitExceeded
from carecoord_shared.messaging.unit_of_work import Transaction

from .models import care_relations, clinicians

# The booking that makes its clinician a member of the team, and the reason CareTeamChanged gives.
JOINS_BY_BOOKING = {
    AppointmentType.initial_evaluation: (CareRole.prescriber, "initial_evaluation_booked"),
    AppointmentType.preparation: (CareRole.therapist, "preparation_booked"),
}
CHANGED_BY_STAFF = "changed_by_staff"


@dataclass(frozen=True)
class CareTeam:
    prescriber_id: str | None = None
    therapist_id: str | None = None

    def member(self, role: CareRole) -> str | None:
        return self.prescriber_id if role is CareRole.prescriber else self.therapist_id

    def with_member(self, role: CareRole, clinician_id: str | None) -> CareTeam:
        return replace(self, **{f"{role.value}_id": clinician_id})


async def current(session: AsyncSession, patient_id: uuid.UUID) -> CareTeam:
    rows = await session.execute(
        select(care_relations.c.relation, care_relations.c.clinician_id).where(
            care_relations.c.patient_id == patient_id, care_relations.c.review_id.is_(None)
        )
    )
    members = {relation: who for relation, who in rows}
    return CareTeam(members.get(CareRole.prescriber.value), members.get(CareRole.therapist.value))


def role_joined_by(appointment_type: AppointmentType) -> CareRole | None:
    joined = JOINS_BY_BOOKING.get(appointment_type)
    return None if joined is None else joined[0]


async def booked(tx: Transaction, patient_id: uuid.UUID, appointment_type: AppointmentType, clinician_id: str) -> None:
    """In the booking's transaction: its clinician joins the team when the booking is one that sets a member."""
    joined = JOINS_BY_BOOKING.get(appointment_type)
    if joined is None:
        return
    role, reason = joined
    team = await current(tx.session, patient_id)
    if team.member(role) != clinician_id:
        await _write(tx, patient_id, team.with_member(role, clinician_id), reason, changed_by=None)


async def change(
    tx: Transaction, patient_id: uuid.UUID, state: str, changes: dict[CareRole, str | None], changed_by: str
) -> CareTeam:
    """Staff set members by hand (a role absent from ``changes`` keeps its member; None removes it). Each named
    clinician must be an active one in the directory, licensed in the patient's state (422 otherwise)."""
    for role, clinician_id in changes.items():
        if clinician_id is not None:
            await _require_licensed(tx.session, role, clinician_id, state)
    team = await current(tx.session, patient_id)
    changed = team
    for role, clinician_id in changes.items():
        changed = changed.with_member(role, clinician_id)
    if changed != team:
        await _write(tx, patient_id, changed, CHANGED_BY_STAFF, changed_by=changed_by)
    return changed


async def _require_licensed(session: AsyncSession, role: CareRole, clinician_id: str, state: str) -> None:
    found = (
        await session.execute(
            select(clinicians.c.licensed_states).where(clinicians.c.clinician_id == clinician_id, clinicians.c.active)
        )
    ).scalar()
    if found is None:
        raise LimitExceeded(
            "unknown_clinician", f"{role.value}_id: no active clinician {clinician_id} in scheduling's directory"
        )
    if state not in found:
        raise LimitExceeded(
            "not_licensed", f"{role.value}_id: clinician {clinician_id} is not licensed in the patient's state"
        )


async def _write(
    tx: Transaction, patient_id: uuid.UUID, team: CareTeam, reason: str, *, changed_by: str | None
) -> None:
    await replace_care_team(tx.session, care_relations, patient_id, team.prescriber_id, team.therapist_id)
    tx.emit(
        CareTeamChanged(
            prescriber_id=team.prescriber_id, therapist_id=team.therapist_id, reason=reason, changed_by=changed_by
        ),
        patient_id=patient_id,
    )
