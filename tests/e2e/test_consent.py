"""Consent end to end (ADR 0016), every service its own process over real Kafka and PostgreSQL: the patient
registers and signs through intake's API; dosing refuses a session until the signature reaches it; a
withdrawal holds the plan and safety opens a clinician review of it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from carecoord_devstack.stack import Stack
from tests.auth import api_client, patient_token
from tests.conftest import eventually
from tests.e2e import journeys
from tests.e2e.intake_journeys import register, registration
from tests.kafka_io import events_for, group_caught_up

pytestmark = pytest.mark.e2e


async def _dosing_heard(stack: Stack, patient: uuid.UUID, event_type: str) -> None:
    """Intake's relay published the event, and dosing's consumer group has read past it."""

    async def published() -> bool:
        return event_type in [e["type"] for e in await events_for(stack.kafka.bootstrap, "intake.patients", patient)]

    await eventually(published, what=f"intake published {event_type}")
    await eventually(
        lambda: group_caught_up(stack.kafka.bootstrap, "carecoord.dosing", "intake.patients"),
        what="dosing heard intake's patients topic",
    )


async def _consent_review(stack: Stack, patient: uuid.UUID) -> dict[str, Any] | None:
    return next((r for r in await journeys.reviews(stack, patient) if r["reason"] == "consent_withdrawn"), None)


async def _paused(stack: Stack, patient: uuid.UUID) -> bool:
    return (await journeys.plan(stack, patient))["status"] == "paused"


async def test_no_session_without_the_signed_treatment_consent_and_a_withdrawal_holds_the_plan_for_a_review(
    services: Stack,
) -> None:
    registered = await register(services, registration())
    assert registered.status_code == 201, registered.text
    patient = uuid.UUID(registered.json()["patient_id"])
    await journeys.active_plan(services, patient, consent=False)
    session = uuid.uuid4()
    await journeys.pre_dose_reading(services, patient, session)

    refused = await journeys.authorise(services, patient, session)
    assert (refused["authorised"], refused["reason"]) == (False, "consent_missing")

    async with api_client(patient_token(patient), timeout=10) as app:
        documents = await app.get(journeys.url(services, "intake", "/v1/consent-documents"))
        treatment = next(d for d in documents.json() if d["document"] == "ketamine_treatment")
        consents = journeys.url(services, "intake", f"/v1/patients/{patient}/consents")
        outdated = await app.post(consents, json={"document": "ketamine_treatment", "document_version": "2025.1.0"})
        assert (outdated.status_code, outdated.json()["current_version"]) == (409, treatment["version"])
        signed = await app.post(
            consents, json={"document": "ketamine_treatment", "document_version": treatment["version"]}
        )
        assert signed.status_code == 201, signed.text
        await _dosing_heard(services, patient, "ConsentSigned")
        granted = await journeys.authorise(services, patient, session)
        assert (granted["authorised"], granted["dose_mg"]) == (True, 100)

        withdrawn = await app.post(f"{consents}/ketamine_treatment/withdrawal")
        assert withdrawn.status_code == 200, withdrawn.text

    await eventually(lambda: _paused(services, patient), what="the plan held on the withdrawal")
    review = await eventually(lambda: _consent_review(services, patient), what="safety opened a consent review")
    assert (review["priority"], review["status"]) == ("high", "open")
    later = uuid.uuid4()
    await journeys.pre_dose_reading(services, patient, later)
    assert (await journeys.authorise(services, patient, later))["reason"] == "consent_missing"
