"""Clinician management use cases: a clinician's record, weekly availability and time off.

Who may call them (a clinician for their own record, or a service) is checked by the routes.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.statements import upsert

from . import booking
from .models import availability_exceptions, clinicians, weekly_availability
from .schemas import ClinicianIn, ExceptionIn, Window, minutes_of


async def put_clinician(uow: UnitOfWork, clinician_id: str, body: ClinicianIn) -> None:
    """Create or replace the clinician with their weekly availability."""
    values = body.model_dump(exclude={"weekly_availability"})
    async with uow.transaction() as tx:
        # Compiled once (the dialect's upsert has no cache key and was compiled on every call).
        await upsert(
            tx.session,
            clinicians,
            "clinician_id",
            {"clinician_id": clinician_id, **values},
            on_update={"updated_at": booking.now()},
        )
        await _replace_windows(tx.session, clinician_id, body.weekly_availability)


async def replace_availability(uow: UnitOfWork, clinician_id: str, windows: list[Window]) -> None:
    async with uow.transaction() as tx:
        await _require_clinician(tx.session, clinician_id)
        await _replace_windows(tx.session, clinician_id, windows)


async def add_exception(uow: UnitOfWork, clinician_id: str, body: ExceptionIn) -> uuid.UUID:
    """Block a period (time off); returns the new exception's id."""
    exception_id = uuid.uuid4()
    async with uow.transaction() as tx:
        await _require_clinician(tx.session, clinician_id)
        await tx.session.execute(
            insert(availability_exceptions).values(
                exception_id=exception_id, clinician_id=clinician_id, **body.model_dump()
            )
        )
    return exception_id


async def remove_exception(uow: UnitOfWork, clinician_id: str, exception_id: uuid.UUID) -> None:
    async with uow.transaction() as tx:
        result = await tx.session.execute(
            delete(availability_exceptions)
            .where(
                availability_exceptions.c.clinician_id == clinician_id,
                availability_exceptions.c.exception_id == exception_id,
            )
            .returning(availability_exceptions.c.exception_id)
        )
        if result.first() is None:
            raise NotFound(f"no exception {exception_id} for clinician {clinician_id}")


async def _replace_windows(session: AsyncSession, clinician_id: str, windows: list[Window]) -> None:
    await session.execute(delete(weekly_availability).where(weekly_availability.c.clinician_id == clinician_id))
    if windows:
        await session.execute(
            insert(weekly_availability),
            [
                {
                    "clinician_id": clinician_id,
                    "weekday": w.weekday,
                    "start_minute": minutes_of(w.start),
                    "end_minute": minutes_of(w.end),
                }
                for w in windows
            ],
        )


async def _require_clinician(session: AsyncSession, clinician_id: str) -> None:
    if (
        await session.execute(select(clinicians.c.clinician_id).where(clinicians.c.clinician_id == clinician_id))
    ).first() is None:
        raise NotFound(f"no clinician {clinician_id}")
