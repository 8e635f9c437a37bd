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
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.auth import Role, mint_token

from .tables import NotifyTables

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


class ContactUnavailable(RuntimeError):
    """Intake could not answer now (down, refused our token, answered nonsense): try later."""


class PatientUnknown(LookupError):
    """Intake does not know the patient: no retry helps."""


class PatientContacts(Protocol):
    async def patient_contact(self, patient_id: uuid.UUID) -> PatientContact: ...


def development_token(secret: str, *, issuer: str, audience: str, ttl_s: int = 300) -> Callable[[], SecretStr]:
    """Local runs and tests: a short-lived service token per request, signed with the development secret."""
    return lambda: SecretStr(
        mint_token(Role.SERVICE, ENGAGEMENT_SUBJECT, secret=secret, issuer=issuer, audience=audience, ttl_s=ttl_s)
    )


class IntakeContacts:
    """GET {intake}/v1/patients/{id}/contact with a service's bearer token."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr | Callable[[], SecretStr],
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_s
        self._transport = transport

    async def patient_contact(self, patient_id: uuid.UUID) -> PatientContact:
        url = f"{self._base_url}/v1/patients/{patient_id}/contact"
        token = self._token if isinstance(self._token, SecretStr) else self._token()
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as http:
                response = await http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ContactUnavailable(f"intake unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise PatientUnknown("intake does not know the patient")
        if response.status_code != 200:
            raise ContactUnavailable(f"intake answered {response.status_code}")
        try:
            contact = PatientContact.model_validate_json(response.content)
        except ValidationError:
            # Not the error itself: pydantic quotes the offending values, which are PHI.
            raise ContactUnavailable("intake's answer does not match the contract") from None
        if contact.patient_id != patient_id:
            raise ContactUnavailable("intake answered for another patient")
        return contact


async def staff_address(session: AsyncSession, tables: NotifyTables, staff_id: str) -> Address | None:
    table = tables.staff_contacts
    row = (
        await session.execute(select(table.c.email, table.c.phone).where(table.c.staff_id == staff_id))
    ).one_or_none()
    return None if row is None else Address(email=row.email, phone=row.phone)
