"""Whom to reach: a patient's contact details from intake at send time, a staff member's from the directory.

A patient's email and phone are PHI and stay in intake: engagement asks intake's service-only
route ``GET /v1/patients/{id}/contact`` with a service token when it sends, uses the answer for
that one message and keeps nothing (no column, no log line, no span attribute). A staff member's
contact is the practice's directory (staff_contacts), not PHI, still never logged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.http.intake_client import (
    IntakeClient,
    IntakeUnavailable,
    PatientUnknown,
    TokenSource,
)
from carecoord_shared.http.intake_client import development_token as shared_development_token

from .tables import NotifyTables

__all__ = ["ContactUnavailable", "IntakeContacts", "PatientContact", "PatientUnknown", "development_token"]

# Who engagement is to intake when it mints its own development token.
ENGAGEMENT_SUBJECT = "carecoord-engagement"


class PatientContact(BaseModel):
    """Intake's answer (carecoord_intake.schemas.PatientContact); repr hides the details."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    patient_id: uuid.UUID
    email: Annotated[str | None, Field(max_length=254, repr=False)] = None
    phone: Annotated[str | None, Field(max_length=32, repr=False)] = None
    time_zone: Annotated[str | None, Field(max_length=64)] = None
    state_of_residence: Annotated[str | None, Field(max_length=2)] = None


@dataclass(frozen=True)
class Address:
    email: str | None
    phone: str | None


# Intake's answers are read by the one client in carecoord_shared (down: try later; unknown: no retry helps).
ContactUnavailable = IntakeUnavailable


class PatientContacts(Protocol):
    async def patient_contact(self, patient_id: uuid.UUID) -> PatientContact: ...


def development_token(secret: str, *, issuer: str, audience: str, ttl_s: int = 300) -> Callable[[], SecretStr]:
    """Local runs and tests: a short-lived service token per request, signed with the development secret."""
    return shared_development_token(ENGAGEMENT_SUBJECT, secret, issuer=issuer, audience=audience, ttl_s=ttl_s)


class IntakeContacts:
    """GET {intake}/v1/patients/{id}/contact with a service's bearer token."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._intake = IntakeClient(base_url, token, timeout_s=timeout_s, transport=transport)

    async def patient_contact(self, patient_id: uuid.UUID) -> PatientContact:
        return await self._intake.fetch("/v1/patients/{patient_id}/contact", patient_id, PatientContact)


async def staff_address(session: AsyncSession, tables: NotifyTables, staff_id: str) -> Address | None:
    table = tables.staff_contacts
    row = (
        await session.execute(select(table.c.email, table.c.phone).where(table.c.staff_id == staff_id))
    ).one_or_none()
    return None if row is None else Address(email=row.email, phone=row.phone)
