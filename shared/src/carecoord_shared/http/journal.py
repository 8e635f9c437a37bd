"""The journal's route: the events a consumer received about one patient (``messaging.journal``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Table, select

from ..auth import Access, Role
from ..pagination import Ordering, Page, SortKey, read_page
from .auth import allow
from .dependencies import PageDep, UowDep


class JournalEntry(BaseModel):
    event_id: uuid.UUID
    event_type: str
    producer: str
    occurred_at: datetime
    recorded_at: datetime


def journal_router(journal: Table) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["received events"])
    # In the order the events happened, the event id breaking ties: a page at a time.
    ordering = Ordering("received-events.occurred", (SortKey(journal.c.occurred_at), SortKey(journal.c.event_id)))

    @router.get("/patients/{patient_id}/received-events", response_model=Page[JournalEntry])
    async def received_events(
        patient_id: uuid.UUID,
        uow: UowDep,
        access: Annotated[Access, allow(Role.OPERATOR, Role.CLINICIAN, Role.SERVICE)],
        page: PageDep,
    ) -> Any:
        await access.patient(patient_id, "read", "received-events", operational=True)
        query = select(journal).where(journal.c.patient_id == patient_id)
        async with uow.sessions() as session:
            return await read_page(session, query, ordering, page)

    return router
