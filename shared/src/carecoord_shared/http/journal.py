"""The journal's route: the events a consumer received about one patient (``messaging.journal``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Table, select

from ..auth import Access, Role
from .auth import allow
from .dependencies import UowDep


class JournalEntry(BaseModel):
    event_id: uuid.UUID
    event_type: str
    producer: str
    occurred_at: datetime
    recorded_at: datetime


def journal_router(journal: Table) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["received events"])

    @router.get("/patients/{patient_id}/received-events", response_model=list[JournalEntry])
    async def received_events(
        patient_id: uuid.UUID,
        uow: UowDep,
        access: Annotated[Access, allow(Role.OPERATOR, Role.CLINICIAN, Role.SERVICE)],
    ) -> Any:
        await access.patient(patient_id, "read", "received-events", operational=True)
        async with uow.sessions() as session:
            rows = await session.execute(
                select(journal).where(journal.c.patient_id == patient_id).order_by(journal.c.occurred_at).limit(1000)
            )
            return [r._asdict() for r in rows]

    return router
