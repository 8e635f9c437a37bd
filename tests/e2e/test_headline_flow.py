"""The headline promise, with every service as its own process on real Kafka and PostgreSQL:
a severe side-effect report opens a clinician review and pauses the treatment plan."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import events_for, group_caught_up, publish_envelope, publish_event

pytestmark = pytest.mark.e2e


async def test_severe_report_opens_review_and_pauses_plan(services: Stack) -> None:
    patient = uuid.uuid4()
    plan = await journeys.active_plan(services, patient)

    response = await journeys.report(services, patient, symptoms=["nausea"], grade=3, onset_minutes_after_dose=40)
    assert response.status_code == 201, response.text
    outcome = response.json()
    assert outcome["escalated"] is True and outcome["hold_requested"] is True

    [review] = await journeys.reviews(services, patient)
    assert review["review_id"] == outcome["review_id"]
    assert (review["status"], review["priority"], review["reason"]) == ("open", "urgent", "severe_side_effect")
    assert review["triggers"] == ["grade_3"]

    paused = await eventually(lambda: _status_is(services, patient, "paused"), what="plan paused after a severe report")
    assert paused["plan_id"] == plan["plan_id"]
    assert [(t["from_status"], t["to_status"]) for t in paused["transitions"]] == [
        ("draft", "active"),
        ("active", "paused"),
    ]
    assert len(paused["open_hold_ids"]) == 1

    # Scheduling and billing heard about the review and the pause.
    for service in ("scheduling", "billing"):
        got = await eventually(
            lambda s=service: _received_includes(
                services, s, patient, {"ClinicianReviewOpened", "TreatmentPlanPaused"}
            ),
            what=f"{service} received the review and the pause",
        )
        assert got.count("TreatmentPlanPaused") == 1


async def test_resolving_the_review_with_resume_reactivates_the_plan(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    outcome = (await journeys.report(services, patient, symptoms=["chest_pain"], grade=1)).json()
    assert outcome["escalated"], "chest pain is a red flag at any grade"
    await eventually(lambda: _status_is(services, patient, "paused"), what="plan paused")

    async with api_client(timeout=10) as http:
        resolved = await http.post(
            journeys.url(services, "safety", f"/v1/reviews/{outcome['review_id']}/resolve"),
            json={"clinician_id": "dr-lee", "decision": "resume"},
        )
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["status"] == "resolved"
        again = await http.post(
            journeys.url(services, "safety", f"/v1/reviews/{outcome['review_id']}/resolve"),
            json={"clinician_id": "dr-lee", "decision": "resume"},
        )
        assert again.status_code == 409, "a resolved review cannot be resolved twice"

    resumed = await eventually(lambda: _status_is(services, patient, "active"), what="plan resumed")
    assert resumed["open_hold_ids"] == []
    assert [t["to_status"] for t in resumed["transitions"]] == ["active", "paused", "active"]


async def test_mild_report_is_recorded_without_review_or_pause(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    response = await journeys.report(services, patient, symptoms=["nausea"], grade=1)
    assert response.status_code == 201
    assert response.json() == {**response.json(), "escalated": False, "review_id": None, "hold_requested": False}
    reported = await eventually(
        lambda: events_for(services.kafka.bootstrap, "safety.reports", patient, "SideEffectReported"),
        what="SideEffectReported published",
    )
    assert reported[0]["payload"]["escalated"] is False
    assert await journeys.reviews(services, patient) == []
    assert (await journeys.plan(services, patient))["status"] == "active"


async def test_the_same_report_event_delivered_twice_yields_one_review(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    report = SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["breathing_difficulty"], grade=3)
    envelope = await publish_event(services.kafka.bootstrap, "patient-app.reports", report, patient)
    await publish_envelope(services.kafka.bootstrap, "patient-app.reports", envelope)  # same event id again
    # The app retrying with a new event id but the same report id is also one report.
    retry = Envelope.wrap(report, patient_id=patient, producer="patient-app")
    await publish_envelope(services.kafka.bootstrap, "patient-app.reports", retry)

    await eventually(lambda: _status_is(services, patient, "paused"), what="plan paused")
    # Let every delivery be consumed before counting.
    await eventually(
        lambda: group_caught_up(services.kafka.bootstrap, "carecoord.safety", "patient-app.reports"),
        what="safety consumed every delivery",
    )
    assert len(await journeys.reviews(services, patient)) == 1
    holds = await events_for(services.kafka.bootstrap, "safety.holds", patient, "TreatmentHoldRequested")
    assert len(holds) == 1
    pauses = await events_for(services.kafka.bootstrap, "dosing.plans", patient, "TreatmentPlanPaused")
    assert len(pauses) == 1


async def test_malformed_http_report_gets_a_readable_422_and_writes_nothing(services: Stack) -> None:
    patient = uuid.uuid4()
    bad_bodies = [
        {"symptoms": ["nausea"], "grade": 7},
        {"symptoms": [], "grade": 3},
        {"symptoms": ["nausea"], "grade": "severe"},
        {"symptoms": ["Nausea; DROP TABLE side_effect_reports"], "grade": 3},
        {"symptoms": ["nausea"], "grade": 3, "note": "x" * 2001},
        {"symptoms": ["nausea"], "grade": 3, "onset_minutes_after_dose": -5},
        {"symptoms": ["nausea"], "grade": 3, "unexpected": True},
    ]
    for body in bad_bodies:
        response = await journeys.report(services, patient, **body)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["code"] == "invalid_request" and problem["errors"], problem
        assert problem["detail"].startswith("The request was not accepted: ")
    async with api_client(timeout=10) as http:
        not_json = await http.post(
            journeys.url(services, "safety", "/v1/side-effect-reports"),
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
    assert not_json.status_code == 422

    conn = await asyncpg.connect(services.postgres.dsn("safety"))
    try:
        for table in ("side_effect_reports", "clinician_reviews", "treatment_holds"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE patient_id = $1", patient) == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(patient)) == 0
    finally:
        await conn.close()


async def _status_is(stack: Stack, patient: uuid.UUID, status: str) -> dict | None:
    current = await journeys.plan(stack, patient)
    return current if current["status"] == status else None


async def _received_includes(stack: Stack, service: str, patient: uuid.UUID, wanted: set[str]) -> list[str] | None:
    got = await journeys.received(stack, service, patient)
    return got if wanted <= set(got) else None
