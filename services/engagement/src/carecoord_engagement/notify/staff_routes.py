"""The staff directory's contact routes: where engagement pages a clinician or reaches a staff member.

| route                           | patient | clinician | operator | service | audited as           |
|---------------------------------|---------|-----------|----------|---------|----------------------|
| PUT /v1/staff/{staff_id}/contact | -      | own only  | yes      | yes     | update staff-contact |
| GET /v1/staff/{staff_id}/contact | -      | own only  | yes      | yes     | read staff-contact   |

Operators keep the directory (staff routing is operational); a clinician may keep their own pager
number current. A staff contact is not PHI, but it is personal: audited, never logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from carecoord_contracts.common import ActorId
from carecoord_shared.auth import Access, Role
from carecoord_shared.errors import Forbidden, NotFound
from carecoord_shared.http import UowDep, allow

from .tables import NotifyTables

DirectoryKeepers = Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)]

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE = r"^\+?[0-9][0-9 ().-]{6,18}$"


class StaffContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(
        default=None, max_length=254, pattern=EMAIL, repr=False, description="where pages and task mail go"
    )
    phone: str | None = Field(default=None, pattern=PHONE, repr=False, description="where SMS pages go")

    @model_validator(mode="after")
    def _one_at_least(self) -> StaffContactIn:
        if self.email is None and self.phone is None:
            raise ValueError("give an email, a phone or both")
        return self


class StaffContactOut(BaseModel):
    staff_id: str
    email: str | None
    phone: str | None
    updated_at: datetime
    updated_by: str


def _own_or_keeper(access: Access, staff_id: str) -> None:
    if access.principal.role is Role.CLINICIAN and access.principal.subject != staff_id:
        raise Forbidden("a clinician keeps their own contact only (the path's staff id must be the token's subject)")


def build_staff_router(tables: NotifyTables) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["staff"])
    table = tables.staff_contacts

    @router.put(
        "/staff/{staff_id}/contact",
        response_model=StaffContactOut,
        summary="Set where a staff member is paged and mailed (the whole contact: a field left out is cleared)",
    )
    async def put_contact(staff_id: ActorId, body: StaffContactIn, uow: UowDep, access: DirectoryKeepers) -> Any:
        _own_or_keeper(access, staff_id)
        values = {**body.model_dump(), "updated_by": access.principal.subject}
        statement = insert(table).values(staff_id=staff_id, **values)
        async with uow.transaction() as tx:
            row = (
                await tx.session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[table.c.staff_id], set_={**values, "updated_at": func.now()}
                    ).returning(*table.c)
                )
            ).one()
        await access.record("update", "staff-contact", staff_id)
        return row._asdict()

    @router.get(
        "/staff/{staff_id}/contact",
        response_model=StaffContactOut,
        summary="Where a staff member is paged and mailed",
        responses={404: {"description": "No contact recorded for this staff member."}},
    )
    async def get_contact(staff_id: ActorId, uow: UowDep, access: DirectoryKeepers) -> Any:
        _own_or_keeper(access, staff_id)
        async with uow.sessions() as session:
            row = (await session.execute(select(*table.c).where(table.c.staff_id == staff_id))).one_or_none()
        await access.record("read", "staff-contact", staff_id)
        if row is None:
            raise NotFound(f"no contact recorded for staff member {staff_id}")
        return row._asdict()

    return router
