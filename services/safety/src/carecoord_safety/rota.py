"""The on-call rota per state and clinicians' absences: what assignment.py reads to decide who takes a review.

A state has at most one shift per role at any moment (a new shift overlapping one is refused, naming it): "who is
on call now" has one answer. Shifts and absences are cancelled, never deleted, so the record of who was on call
when a review was escalated stays.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork

from .domain.assignment import CLINICAL_LEAD, ON_CALL
from .models import clinician_absences, on_call_shifts

LISTED = 200


async def add_shift(
    tx: Transaction,
    *,
    state: str,
    role: str,
    clinician_id: str,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
) -> dict[str, Any]:
    # Two overlapping inserts for one state and role must not both pass the check: serialise them.
    await tx.session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"rota:{state}:{role}"))))
    clash = (
        await tx.session.execute(
            select(on_call_shifts).where(
                on_call_shifts.c.state == state,
                on_call_shifts.c.role == role,
                on_call_shifts.c.cancelled_at.is_(None),
                on_call_shifts.c.starts_at < ends_at,
                on_call_shifts.c.ends_at > starts_at,
            )
        )
    ).first()
    if clash is not None:
        raise RuleViolation(
            f"{clash.clinician_id} is already {role} in {state} from {clash.starts_at.isoformat()} to "
            f"{clash.ends_at.isoformat()} (shift {clash.shift_id}): cancel it or choose a period that does not overlap"
        )
    row = {
        "shift_id": uuid.uuid4(),
        "state": state,
        "role": role,
        "clinician_id": clinician_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "created_by": created_by,
    }
    created = await tx.session.execute(on_call_shifts.insert().values(**row).returning(on_call_shifts))
    return created.one()._asdict()


async def cancel_shift(tx: Transaction, shift_id: uuid.UUID, *, now: datetime) -> None:
    done = await tx.session.execute(
        update(on_call_shifts)
        .where(on_call_shifts.c.shift_id == shift_id, on_call_shifts.c.cancelled_at.is_(None))
        .values(cancelled_at=now)
        .returning(on_call_shifts.c.shift_id)
    )
    if done.first() is None:
        raise NotFound(f"no shift {shift_id} on the rota (or it was cancelled already)")


async def rota_of(uow: UnitOfWork, state: str, at: datetime) -> dict[str, Any]:
    """Who is on call and who is the lead in ``state`` at ``at``, and the shifts from then on."""
    async with uow.sessions() as session:
        shifts = [
            row._asdict()
            for row in await session.execute(
                select(on_call_shifts)
                .where(
                    on_call_shifts.c.state == state,
                    on_call_shifts.c.cancelled_at.is_(None),
                    on_call_shifts.c.ends_at > at,
                )
                .order_by(on_call_shifts.c.starts_at, on_call_shifts.c.role)
                .limit(LISTED)
            )
        ]
    holding = {
        role: next((s["clinician_id"] for s in shifts if s["role"] == role and s["starts_at"] <= at), None)
        for role in (ON_CALL, CLINICAL_LEAD)
    }
    return {
        "state": state,
        "at": at,
        "on_call": holding[ON_CALL],
        "clinical_lead": holding[CLINICAL_LEAD],
        "shifts": shifts,
    }


async def add_absence(
    tx: Transaction, *, clinician_id: str, starts_at: datetime, ends_at: datetime, created_by: str
) -> dict[str, Any]:
    row = {
        "absence_id": uuid.uuid4(),
        "clinician_id": clinician_id,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "created_by": created_by,
    }
    created = await tx.session.execute(clinician_absences.insert().values(**row).returning(clinician_absences))
    return created.one()._asdict()


async def cancel_absence(tx: Transaction, clinician_id: str, absence_id: uuid.UUID, *, now: datetime) -> None:
    done = await tx.session.execute(
        update(clinician_absences)
        .where(
            clinician_absences.c.absence_id == absence_id,
            clinician_absences.c.clinician_id == clinician_id,
            clinician_absences.c.cancelled_at.is_(None),
        )
        .values(cancelled_at=now)
        .returning(clinician_absences.c.absence_id)
    )
    if done.first() is None:
        raise NotFound(f"no absence {absence_id} of {clinician_id} (or it was cancelled already)")


async def absences_of(uow: UnitOfWork, clinician_id: str, at: datetime) -> list[dict[str, Any]]:
    async with uow.sessions() as session:
        rows = await session.execute(
            select(clinician_absences)
            .where(
                clinician_absences.c.clinician_id == clinician_id,
                clinician_absences.c.cancelled_at.is_(None),
                clinician_absences.c.ends_at > at,
            )
            .order_by(clinician_absences.c.starts_at)
            .limit(LISTED)
        )
        return [row._asdict() for row in rows]
