"""HTTP API for the patient app: registration."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from carecoord_shared.contracts.common import US_STATES, StateCode
from carecoord_shared.contracts.intake import PatientRegistered
from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from .models import patients

router = APIRouter(prefix="/v1", tags=["patients"])
_TIME_ZONES = frozenset(available_timezones())


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
    state_of_residence: StateCode
    time_zone: Annotated[str, Field(max_length=64)]

    @field_validator("state_of_residence")
    @classmethod
    def known_state(cls, value: str) -> str:
        if value not in US_STATES:
            raise ValueError(f"{value} is not a US state code")
        return value

    @field_validator("time_zone")
    @classmethod
    def known_zone(cls, value: str) -> str:
        if value not in _TIME_ZONES:
            raise ValueError("not an IANA time zone (for example America/Chicago)")
        return value


class Patient(BaseModel):
    patient_id: uuid.UUID
    state_of_residence: str
    time_zone: str


@router.post(
    "/patients",
    status_code=status.HTTP_201_CREATED,
    response_model=Patient,
    responses={200: {"description": "Already registered under this external id."}},
)
async def register(body: Registration, uow: UowDep, response: Response) -> Any:
    async with uow.transaction() as tx:
        patient_id = uuid.uuid4()
        created = (
            await tx.session.execute(
                insert(patients)
                .values(patient_id=patient_id, **body.model_dump())
                .on_conflict_do_nothing(index_elements=[patients.c.external_id])
                .returning(patients.c.patient_id)
            )
        ).first()
        if created:
            tx.emit(
                PatientRegistered(state_of_residence=body.state_of_residence, time_zone=body.time_zone),
                patient_id=patient_id,
            )
        else:
            response.status_code = status.HTTP_200_OK
        row = (await tx.session.execute(select(patients).where(patients.c.external_id == body.external_id))).one()
    return row._asdict()


@router.get("/patients/{patient_id}", response_model=Patient)
async def get_patient(patient_id: uuid.UUID, uow: UowDep) -> Any:
    async with uow.sessions() as session:
        row = (await session.execute(select(patients).where(patients.c.patient_id == patient_id))).first()
    if row is None:
        raise NotFound(f"no patient {patient_id}")
    return row._asdict()
