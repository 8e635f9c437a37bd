"""Intake's service-only contact route, read through engagement's own client (the contract both sides keep)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from carecoord_devstack.stack import Stack
from carecoord_engagement.notify.contacts import ContactUnavailable, IntakeContacts, PatientUnknown
from carecoord_intake.models import audit
from tests.auth import clinician_token, operator_token, patient_token, service_token
from tests.e2e.intake_journeys import registration
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "intake", database="intake_contact_it") as harness:
        yield harness


async def _registered(intake: ServiceHarness) -> uuid.UUID:
    response = await intake.http.post("/v1/patients", json=registration(phone="+1 720 555 0199"))
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["patient_id"])


def _contacts(intake: ServiceHarness, token: str) -> IntakeContacts:
    return IntakeContacts("http://service.test", SecretStr(token), transport=httpx.ASGITransport(app=intake.app))


async def test_engagement_reads_where_to_reach_the_patient_and_the_read_is_audited(intake: ServiceHarness) -> None:
    patient = await _registered(intake)
    subject = f"engagement-{uuid.uuid4().hex[:6]}"
    contact = await _contacts(intake, service_token(subject)).patient_contact(patient)
    assert (contact.email, contact.phone, contact.time_zone, contact.state_of_residence) == (
        "wilhelmina.q@example.org",
        "+1 720 555 0199",
        "America/Denver",
        "CO",
    )
    assert "wilhelmina" not in repr(contact) and "0199" not in repr(contact), "details stay out of reprs (logs)"
    columns = (audit.c.action, audit.c.resource, audit.c.patient_id, audit.c.outcome)
    rows = await intake.rows(select(*columns).where(audit.c.actor == subject))
    assert [tuple(r) for r in rows] == [("read", "patient-contact", patient, "allowed")]


async def test_an_unknown_patient_and_a_refused_token_are_told_apart(intake: ServiceHarness) -> None:
    with pytest.raises(PatientUnknown):
        await _contacts(intake, service_token("engagement")).patient_contact(uuid.uuid4())
    with pytest.raises(ContactUnavailable, match="401"):
        await _contacts(intake, "not-a-token").patient_contact(await _registered(intake))


async def test_no_person_reads_contact_details_here_not_even_the_patient(intake: ServiceHarness) -> None:
    patient = await _registered(intake)
    for token in (patient_token(patient), clinician_token("dr-contact", ["CO"]), operator_token()):
        response = await intake.client(token).get(f"/v1/patients/{patient}/contact")
        assert response.status_code == 403, response.text
