"""HTTP routes of the on-call rota and clinicians' absences (rota.py): staff scheduling, no patient data.

| route                                          | patient | clinician   | operator | service | audited as          |
|------------------------------------------------|---------|-------------|----------|---------|---------------------|
| POST /rota/shifts, DELETE /rota/shifts/{id}    | -       | -           | yes      | yes     | add/cancel rota-shift |
| GET /rota/{state} (now on call, shifts ahead)  | -       | yes         | yes      | yes     | not audited: no PHI |
| POST, GET /clinicians/{id}/absences,           | -       | own only    | yes      | yes     | add/cancel absence  |
|   DELETE /clinicians/{id}/absences/{absence}   |         |             |          |         |                     |

Operators keep the rota (it is the system's routing of safety work, not clinical data); a clinician enters their
own absences. None of it names a patient, so none of it needs a licence check.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from carecoord_contracts.common import ActorId, StateCode
from carecoord_shared.auth import Access, Role
from carecoord_shared.errors import Forbidden
from carecoord_shared.http import UowDep, allow

from . import rota
from .schemas import AbsenceIn, AbsenceOut, RotaOut, ShiftIn, ShiftOut
from .timers import Clock

RotaKeepers = Annotated[Access, allow(Role.OPERATOR, Role.SERVICE)]
Staff = Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)]


def _own_or_staff(access: Access, clinician_id: str) -> None:
    if access.principal.role is Role.CLINICIAN and access.principal.subject != clinician_id:
        raise Forbidden(
            "a clinician enters their own absences only (the path's clinician id must be the token's subject)"
        )


def build_router(clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["rota"])

    @router.post("/rota/shifts", status_code=201, response_model=ShiftOut, summary="Put a clinician on the rota")
    async def add_shift(body: ShiftIn, uow: UowDep, access: RotaKeepers) -> dict[str, Any]:
        async with uow.transaction() as tx:
            shift = await rota.add_shift(tx, **body.model_dump(), created_by=access.principal.subject)
        await access.record("add", "rota-shift", shift["shift_id"])
        return shift

    @router.delete("/rota/shifts/{shift_id}", status_code=204, summary="Cancel a shift (kept, as cancelled)")
    async def cancel_shift(shift_id: uuid.UUID, uow: UowDep, access: RotaKeepers) -> Response:
        async with uow.transaction() as tx:
            await rota.cancel_shift(tx, shift_id, now=clock())
        await access.record("cancel", "rota-shift", shift_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.get(
        "/rota/{state}", response_model=RotaOut, summary="Who is on call and who is the lead, and the shifts ahead"
    )
    async def rota_of(
        state: StateCode,
        uow: UowDep,
        _access: Staff,
        at: Annotated[AwareDatetime | None, Query(description="default now; with a timezone offset")] = None,
    ) -> dict[str, Any]:
        return await rota.rota_of(uow, state, at or clock())

    @router.post(
        "/clinicians/{clinician_id}/absences",
        status_code=201,
        response_model=AbsenceOut,
        summary="A clinician is away: their patients' new reviews go to on-call meanwhile",
    )
    async def add_absence(clinician_id: ActorId, body: AbsenceIn, uow: UowDep, access: Staff) -> dict[str, Any]:
        _own_or_staff(access, clinician_id)
        async with uow.transaction() as tx:
            absence = await rota.add_absence(
                tx, clinician_id=clinician_id, **body.model_dump(), created_by=access.principal.subject
            )
        await access.record("add", "absence", absence["absence_id"])
        return absence

    @router.get("/clinicians/{clinician_id}/absences", response_model=list[AbsenceOut])
    async def absences_of(clinician_id: ActorId, uow: UowDep, access: Staff) -> list[dict[str, Any]]:
        _own_or_staff(access, clinician_id)
        return await rota.absences_of(uow, clinician_id, clock())

    @router.delete("/clinicians/{clinician_id}/absences/{absence_id}", status_code=204)
    async def cancel_absence(clinician_id: ActorId, absence_id: uuid.UUID, uow: UowDep, access: Staff) -> Response:
        _own_or_staff(access, clinician_id)
        async with uow.transaction() as tx:
            await rota.cancel_absence(tx, clinician_id, absence_id, now=clock())
        await access.record("cancel", "absence", absence_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
