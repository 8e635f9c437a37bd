"""Idempotency-Key on the POSTs that create or decide (carecoord_shared.http.idempotency, ADR 0013).

On safety's harness (its real app, routes and database): a retried create returns the first outcome and
creates nothing more; a retried decision returns its first outcome instead of a 409; the key with another
body is refused (422); two concurrent requests with one key make one change; a hostile key is refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from carecoord_devstack.stack import Stack
from carecoord_safety.models import clinician_reviews, side_effect_reports
from tests.auth import SERVICE_TOKEN
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def safety(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "safety", database="safety_idempotency") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


def report(patient: uuid.UUID) -> dict[str, Any]:
    # No report_id: the key is the only thing that makes a resend the same request.
    return {"patient_id": str(patient), "symptoms": ["chest_pain"], "grade": 3}


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"ui-{uuid.uuid4()}"}


async def reports_of(safety: ServiceHarness, patient: uuid.UUID) -> int:
    [count] = await safety.rows(
        select(func.count()).select_from(side_effect_reports).where(side_effect_reports.c.patient_id == patient)
    )
    return int(count[0])


async def test_a_create_retried_with_its_key_answers_the_first_outcome_and_creates_nothing_more(
    safety: ServiceHarness,
) -> None:
    patient, headers = uuid.uuid4(), key()
    first = await safety.http.post("/v1/side-effect-reports", json=report(patient), headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = await safety.http.post("/v1/side-effect-reports", json=report(patient), headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await reports_of(safety, patient) == 1
    assert len(await safety.emitted("SideEffectReported", patient_id=patient)) == 1
    # Without the key the same body is a new report.
    assert (await safety.http.post("/v1/side-effect-reports", json=report(patient))).status_code == 201
    assert await reports_of(safety, patient) == 2


async def test_a_decision_retried_with_its_key_answers_its_first_outcome_instead_of_a_409(
    safety: ServiceHarness,
) -> None:
    patient = uuid.uuid4()
    opened = await safety.http.post("/v1/side-effect-reports", json=report(patient))
    review_id = opened.json()["review_ids"][0]
    ack, headers = {"clinician_id": "dr-idem"}, key()
    first = await safety.http.post(f"/v1/reviews/{review_id}/acknowledge", json=ack, headers=headers)
    assert first.status_code == 200
    again = await safety.http.post(f"/v1/reviews/{review_id}/acknowledge", json=ack, headers=headers)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (200, "true")
    assert again.json() == first.json()
    # A new key is a new request: the review is no longer open.
    assert (await safety.http.post(f"/v1/reviews/{review_id}/acknowledge", json=ack, headers=key())).status_code == 409


async def test_a_refusal_is_the_first_outcome_too(safety: ServiceHarness) -> None:
    headers = key()
    missing = f"/v1/reviews/{uuid.uuid4()}/acknowledge"
    first = await safety.http.post(missing, json={"clinician_id": "dr-idem"}, headers=headers)
    again = await safety.http.post(missing, json={"clinician_id": "dr-idem"}, headers=headers)
    assert (first.status_code, again.status_code, again.headers.get("Idempotent-Replayed")) == (404, 404, "true")


async def test_the_key_with_another_request_is_refused(safety: ServiceHarness) -> None:
    patient, headers = uuid.uuid4(), key()
    assert (await safety.http.post("/v1/side-effect-reports", json=report(patient), headers=headers)).status_code == 201
    other = await safety.http.post("/v1/side-effect-reports", json=report(patient) | {"grade": 2}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await reports_of(safety, patient) == 1


async def test_the_key_is_the_callers_own(safety: ServiceHarness) -> None:
    """Scoped to the token's subject: another caller's identical key is another request."""
    from tests.auth import patient_token

    patient, headers = uuid.uuid4(), key()
    as_patient = safety.client(patient_token(patient))
    assert (await safety.http.post("/v1/side-effect-reports", json=report(patient), headers=headers)).status_code == 201
    mine = await as_patient.post("/v1/side-effect-reports", json=report(patient), headers=headers)
    assert mine.status_code == 201 and "Idempotent-Replayed" not in mine.headers
    assert await reports_of(safety, patient) == 2


async def test_two_concurrent_requests_with_one_key_make_one_change(safety: ServiceHarness) -> None:
    patient = uuid.uuid4()
    opened = await safety.http.post("/v1/side-effect-reports", json=report(patient))
    review_id = opened.json()["review_ids"][0]
    headers = key()
    answers = await asyncio.gather(
        *(
            safety.http.post(f"/v1/reviews/{review_id}/acknowledge", json={"clinician_id": "dr-race"}, headers=headers)
            for _ in range(4)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1, statuses
    # Never the rule's 409 (acknowledging an acknowledged review): the losers are told the key is in flight,
    # or get the winner's outcome replayed.
    for answer in answers:
        assert answer.status_code == 200 or answer.json()["code"] == "idempotency_in_flight", answer.json()
        if answer.status_code == 409:
            assert answer.headers["Retry-After"] == "1"
    assert sum(1 for a in answers if a.status_code == 200 and "Idempotent-Replayed" not in a.headers) == 1
    assert len(await safety.emitted("ClinicianReviewAcknowledged", patient_id=patient)) == 1
    [row] = await safety.rows(
        select(clinician_reviews.c.status).where(clinician_reviews.c.review_id == uuid.UUID(review_id))
    )
    assert row.status == "acknowledged"
    later = await safety.http.post(
        f"/v1/reviews/{review_id}/acknowledge", json={"clinician_id": "dr-race"}, headers=headers
    )
    assert (later.status_code, later.headers.get("Idempotent-Replayed")) == (200, "true")


@pytest.mark.parametrize("bad", ["", "a" * 129, "has space", "semi;colon", "ünïcode"])
async def test_a_hostile_key_is_refused_clearly(safety: ServiceHarness, bad: str) -> None:
    patient = uuid.uuid4()
    response = await safety.http.post(
        "/v1/side-effect-reports", json=report(patient), headers={"Idempotency-Key": bad.encode()}
    )
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert await reports_of(safety, patient) == 0


async def test_a_client_id_that_names_another_patients_observation_is_refused_not_taken_for_a_resend(
    safety: ServiceHarness,
) -> None:
    """The body's own id deduplicates a patient's resend; the same id for another patient is a collision (a
    buggy client): a 409, with nothing recorded and the first patient's outcome not shown."""
    first, second, report_id = uuid.uuid4(), uuid.uuid4(), str(uuid.uuid4())
    opened = await safety.http.post("/v1/side-effect-reports", json={**report(first), "report_id": report_id})
    assert opened.status_code == 201, opened.text
    taken = await safety.http.post("/v1/side-effect-reports", json={**report(second), "report_id": report_id})
    assert taken.status_code == 409 and taken.json()["code"] == "rule_violation", taken.text
    assert "review" not in taken.text and await reports_of(safety, second) == 0
    resent = await safety.http.post("/v1/side-effect-reports", json={**report(first), "report_id": report_id})
    assert resent.status_code == 200 and resent.json()["review_ids"] == opened.json()["review_ids"]

    reading = {"systolic": 120, "diastolic": 80, "measured_at": "2026-12-01T10:00:00+00:00", "context": "pre_dose"}
    reading_id = str(uuid.uuid4())
    recorded = await safety.http.post(
        "/v1/vitals", json={"patient_id": str(first), "reading_id": reading_id, **reading}
    )
    assert recorded.status_code == 201, recorded.text
    collided = await safety.http.post(
        "/v1/vitals", json={"patient_id": str(second), "reading_id": reading_id, **reading}
    )
    assert collided.status_code == 409, collided.text
