"""Claim demographics (PHI) from intake, fetched only when a file to a payer is written.

``DemographicsSource`` is the port; ``IntakeDemographics`` calls intake's
internal endpoint as a service (a bearer JWT with the role service). What comes back is used to write the X12 file and nothing
else: never logged, stored or put on an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from carecoord_shared.http.intake_client import (
    IntakeClient,
    IntakeUnavailable,
    PatientUnknown,
    TokenSource,
)
from carecoord_shared.http.intake_client import development_token as shared_development_token

from .x12.parties import Subscriber

# Who billing is to intake when it mints its own development token.
BILLING_SUBJECT = "carecoord-billing"

Text = Annotated[str, Field(min_length=1, max_length=100, repr=False)]


class Address(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line1: Text
    city: Text
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    postal_code: Annotated[str, Field(pattern=r"^\d{5}(\d{4})?$", repr=False)]


class MemberCoverage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    payer_id: Annotated[str, Field(min_length=1, max_length=32)]
    member_id: Text
    plan: Annotated[str | None, Field(max_length=100, repr=False)] = None


class ClaimDemographics(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    patient_id: uuid.UUID
    first_name: Text
    last_name: Text
    date_of_birth: Annotated[date, Field(repr=False)]
    sex: Literal["F", "M", "U"]
    address: Annotated[Address, Field(repr=False)]
    coverage: MemberCoverage | None

    def subscriber(self) -> Subscriber | None:
        """The patient as the subscriber of their plan; None without a member id."""
        if self.coverage is None:
            return None
        return Subscriber(
            first_name=self.first_name,
            last_name=self.last_name,
            date_of_birth=self.date_of_birth,
            sex=self.sex,
            line1=self.address.line1,
            city=self.address.city,
            state=self.address.state,
            postal_code=self.address.postal_code,
            member_id=self.coverage.member_id,
        )


# Intake's answers are read by the one client in carecoord_shared (down: try later; unknown: no retry helps).
DemographicsUnavailable = IntakeUnavailable


class DemographicsSource(Protocol):
    async def claim_demographics(self, patient_id: uuid.UUID) -> ClaimDemographics: ...


def development_token(secret: str, *, issuer: str, audience: str, ttl_s: int = 300) -> Callable[[], SecretStr]:
    """Local runs and tests: a fresh service token per request, signed with the development secret."""
    return shared_development_token(BILLING_SUBJECT, secret, issuer=issuer, audience=audience, ttl_s=ttl_s)


class IntakeDemographics:
    """GET {intake}/v1/internal/patients/{id}/claim-demographics with a service's bearer token:
    a fixed one (production: issued by the identity provider) or one minted per request (development)."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._intake = IntakeClient(base_url, token, timeout_s=timeout_s, transport=transport)

    async def claim_demographics(self, patient_id: uuid.UUID) -> ClaimDemographics:
        return await self._intake.fetch(
            "/v1/internal/patients/{patient_id}/claim-demographics", patient_id, ClaimDemographics
        )


async def subscriber_for(source: DemographicsSource, patient_id: uuid.UUID, log: Any) -> Subscriber | None:
    """The patient as subscriber for one file, or None (logged by reason, without PHI) when not available now."""
    bound = log.bind(patient_id=str(patient_id))
    try:
        demographics = await source.claim_demographics(patient_id)
    except PatientUnknown:
        bound.warning("demographics.patient_unknown_to_intake")
        return None
    except DemographicsUnavailable as exc:
        bound.warning("demographics.unavailable", problem=str(exc))
        return None
    subscriber = demographics.subscriber()
    if subscriber is None:
        bound.warning("demographics.no_member_id")
    return subscriber
