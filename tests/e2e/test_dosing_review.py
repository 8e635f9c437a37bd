"""Dosing review end to end: session authorisation as the last line of defence, and
dose proposals that take effect only on a clinician's approval."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carecoord_contracts.common import AppointmentType
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import events_for, group_caught_up, publish_event

pytestmark = pytest.mark.e2e


async def test_sessions_are_refused_while_paused_and_authorised_after_resume(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    first, second = uuid.uuid4(), uuid.uuid4()

    assert (await journeys.authorise(services, patient, first))["reason"] == "no_pre_dose_bp_for_session"
    await journeys.pre_dose_reading(services, patient, first)
    granted = await journeys.authorise(services, patient, first)
    assert granted["authorised"] and granted["dose_mg"] == 100
    assert (await journeys.authorise(services, patient, first))["authorisation_id"] == granted["authorisation_id"], (
        "one per session"
    )

    outcome = (await journeys.report(services, patient, symptoms=["hallucinations_persisting"], grade=2)).json()
    await eventually(lambda: _status_is(services, patient, "paused"), what="paused")
    for _ in range(2):
        refused = await journeys.authorise(services, patient, second)
        assert (refused["authorised"], refused["reason"]) == (False, "plan_paused")

    async with api_client(timeout=10) as http:
        severe = next(r for r in await journeys.reviews(services, patient) if r["reason"] == "severe_side_effect")
        assert severe["review_id"] in outcome["review_ids"]
        await http.post(
            journeys.url(services, "safety", f"/v1/reviews/{severe['review_id']}/resolve"),
            json={"clinician_id": "dr-lee", "decision": "resume"},
        )
    await eventually(lambda: _status_is(services, patient, "active"), what="resumed")
    await journeys.pre_dose_reading(services, patient, second)
    assert (await journeys.authorise(services, patient, second))["authorised"]

    sessions = await eventually(
        lambda: _at_least(events_for(services.kafka.bootstrap, "dosing.sessions", patient), 5), what="session events"
    )
    assert [e["type"] for e in sessions] == [
        "DosingSessionRefused",
        "DosingSessionAuthorised",
        "DosingSessionRefused",
        "DosingSessionRefused",
        "DosingSessionAuthorised",
    ]
    assert [e["payload"].get("reason") for e in sessions if e["type"] == "DosingSessionRefused"] == [
        "no_pre_dose_bp_for_session",
        "plan_paused",
        "plan_paused",
    ]


async def test_a_completed_session_proposes_the_next_dose_which_needs_approval(services: Stack) -> None:
    patient = uuid.uuid4()
    plan = await journeys.active_plan(services, patient)
    await journeys.report(services, patient, symptoms=["nausea"], grade=2)  # no increase after grade 2
    await eventually(
        lambda: group_caught_up(services.kafka.bootstrap, "carecoord.dosing", "safety.reports"), what="dosing heard it"
    )
    completed = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-lee",
        started_at=datetime.now(UTC) - timedelta(hours=3),
        ended_at=datetime.now(UTC) - timedelta(hours=1),
        plan_id=plan["plan_id"],
    )
    await publish_event(services.kafka.bootstrap, "scheduling.appointments", completed, patient, producer="scheduling")

    proposed = await eventually(lambda: _pending(services, patient), what="a dose proposed")
    assert (proposed["previous_dose_mg"], proposed["proposed_dose_mg"]) == (100, 100)
    assert "grade_2_side_effect_no_increase" in proposed["rationale"]
    assert (await journeys.plan(services, patient))["approved_dose_mg"] is None, "the old approval lapsed"
    next_session = uuid.uuid4()
    await journeys.pre_dose_reading(services, patient, next_session)
    assert (await journeys.authorise(services, patient, next_session))["reason"] == "no_approved_dose"

    async with api_client(timeout=10) as http:
        url = journeys.url(services, "dosing", f"/v1/dose-proposals/{proposed['proposal_id']}/approve")
        too_far = await http.post(url, json={"clinician_id": "dr-lee", "dose_mg": 200})
        assert too_far.status_code == 422 and "more than one step" in too_far.json()["detail"]
        assert too_far.json()["reason"] == "dose_step_above_plan_maximum"
        approved = await http.post(url, json={"clinician_id": "dr-lee", "dose_mg": 90})
        assert approved.status_code == 200 and approved.json()["approved_dose_mg"] == 90
    granted = await journeys.authorise(services, patient, next_session)
    assert granted["authorised"] and granted["dose_mg"] == 90
    [approval] = [
        e
        for e in await events_for(services.kafka.bootstrap, "dosing.plans", patient, "DoseApproved")
        if e["payload"]["proposal_id"] == proposed["proposal_id"]
    ]
    assert approval["payload"]["approved_by"] == "dr-lee"


async def test_a_review_resolved_with_a_dose_change_resumes_the_plan_at_that_dose(services: Stack) -> None:
    patient = uuid.uuid4()
    plan = await journeys.active_plan(services, patient)  # 100 mg; maximum 300, step 50
    outcome = (await journeys.report(services, patient, symptoms=["hallucinations_persisting"], grade=2)).json()
    await eventually(lambda: _status_is(services, patient, "paused"), what="paused")
    await eventually(lambda: _safety_knows_the_plan(services), what="safety heard the plan's events")
    review_id = next(
        r["review_id"] for r in await journeys.reviews(services, patient) if r["reason"] == "severe_side_effect"
    )
    assert review_id in outcome["review_ids"]
    resolve = journeys.url(services, "safety", f"/v1/reviews/{review_id}/resolve")

    async with api_client(timeout=10) as http:
        no_dose = await http.post(resolve, json={"clinician_id": "dr-lee", "decision": "resume_with_dose_change"})
        assert no_dose.status_code == 422 and "needs dose_mg" in no_dose.text
        stray = await http.post(resolve, json={"clinician_id": "dr-lee", "decision": "resume", "dose_mg": 75})
        assert stray.status_code == 422 and "only with resume_with_dose_change" in stray.text
        too_far = await http.post(
            resolve, json={"clinician_id": "dr-lee", "decision": "resume_with_dose_change", "dose_mg": 49}
        )
        assert too_far.status_code == 422, too_far.text
        assert [(e["field"], e["type"]) for e in too_far.json()["errors"]] == [
            ("dose_mg", "dose_step_above_plan_maximum")
        ]
        assert (await _review_status(services, review_id)) == "open", "a refused resolution records nothing"
        resolved = await http.post(
            resolve, json={"clinician_id": "dr-lee", "decision": "resume_with_dose_change", "dose_mg": 50}
        )
        assert resolved.status_code == 200, resolved.text

    await eventually(lambda: _status_is(services, patient, "active"), what="resumed")
    resumed = await journeys.plan(services, patient)
    assert resumed["approved_dose_mg"] == 50 and not any(p["status"] == "proposed" for p in resumed["proposals"]), (
        "no round trip"
    )
    [approval] = [
        e
        for e in await events_for(services.kafka.bootstrap, "dosing.plans", patient, "DoseApproved")
        if e["payload"]["approved_dose_mg"] == 50
    ]
    assert (approval["payload"]["approved_by"], approval["payload"]["review_id"]) == ("dr-lee", review_id)
    assert approval["payload"]["plan_id"] == plan["plan_id"]
    session = uuid.uuid4()
    await journeys.pre_dose_reading(services, patient, session)
    granted = await journeys.authorise(services, patient, session)
    assert granted["authorised"] and granted["dose_mg"] == 50


async def test_only_a_recent_reading_for_the_session_authorises_it(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    session, other = uuid.uuid4(), uuid.uuid4()
    await journeys.pre_dose_reading(services, patient, other)
    assert (await journeys.authorise(services, patient, session))["reason"] == "no_pre_dose_bp_for_session"
    await journeys.pre_dose_reading(services, patient, session, minutes_ago=61)
    assert (await journeys.authorise(services, patient, session))["reason"] == "pre_dose_bp_too_old"
    await journeys.pre_dose_reading(services, patient, session, minutes_ago=2)
    assert (await journeys.authorise(services, patient, session))["authorised"]


async def _safety_knows_the_plan(stack: Stack) -> bool:
    return await group_caught_up(stack.kafka.bootstrap, "carecoord.safety", "dosing.plans")  # type: ignore[no-any-return]


async def _review_status(stack: Stack, review_id: str) -> str:
    async with api_client(timeout=10) as http:
        response = await http.get(journeys.url(stack, "safety", f"/v1/reviews/{review_id}"))
    assert response.status_code == 200, response.text
    return response.json()["status"]  # type: ignore[no-any-return]


async def _status_is(stack: Stack, patient: uuid.UUID, status: str) -> bool:
    return (await journeys.plan(stack, patient))["status"] == status


async def _pending(stack: Stack, patient: uuid.UUID) -> dict[str, Any] | None:
    proposals = (await journeys.plan(stack, patient))["proposals"]
    return next((p for p in proposals if p["status"] == "proposed"), None)


async def _at_least(found: Any, n: int) -> list[Any] | None:
    items = await found
    return items if len(items) >= n else None


async def test_a_plan_announces_its_cadence_for_scheduling(services: Stack) -> None:
    patient = uuid.uuid4()
    async with api_client(timeout=10) as http:
        created = await http.post(
            journeys.url(services, "dosing", "/v1/plans"),
            json={
                "patient_id": str(patient),
                "clinician_id": "dr-lee",
                "starting_dose_mg": 100,
                "max_dose_mg": 300,
                "max_step_mg": 50,
                "planned_sessions": 4,
                "cadence_days": 10,
                "indication": "depression",
                "diagnosis_codes": ["F33.1"],
            },
        )
    assert created.status_code == 201 and created.json()["cadence_days"] == 10
    [announced] = await eventually(
        lambda: events_for(services.kafka.bootstrap, "dosing.plans", patient, "TreatmentPlanCreated"),
        what="plan created",
    )
    assert announced["payload"]["cadence_days"] == 10


PLAN = {
    "clinician_id": "dr-lee",
    "starting_dose_mg": 100,
    "max_dose_mg": 300,
    "max_step_mg": 50,
    "planned_sessions": 4,
    "indication": "ptsd",
    "diagnosis_codes": ["F43.10", "F33.1"],
}


async def test_a_plan_beyond_the_program_caps_is_refused_with_a_reason_and_a_recorded_one_announces_its_diagnosis(
    services: Stack,
) -> None:
    patient = uuid.uuid4()
    plans_url = journeys.url(services, "dosing", "/v1/plans")
    async with api_client(timeout=10) as http:
        too_high = await http.post(plans_url, json={**PLAN, "patient_id": str(patient), "max_dose_mg": 301})
        step_too_big = await http.post(plans_url, json={**PLAN, "patient_id": str(patient), "max_step_mg": 300})
        no_diagnosis = await http.post(plans_url, json={**PLAN, "patient_id": str(patient), "diagnosis_codes": []})
        bad_code = await http.post(plans_url, json={**PLAN, "patient_id": str(patient), "diagnosis_codes": ["F4.310"]})
        created = await http.post(plans_url, json={**PLAN, "patient_id": str(patient)})
    assert too_high.status_code == 422, too_high.text
    assert too_high.json()["reason"] == "max_dose_above_program_maximum"
    assert "300 mg" in too_high.json()["detail"] and "2026.12.0" in too_high.json()["detail"]
    assert step_too_big.status_code == 422 and step_too_big.json()["reason"] == "max_step_above_program_maximum"
    assert no_diagnosis.status_code == 422 and no_diagnosis.json()["code"] == "invalid_request"
    assert bad_code.status_code == 422 and bad_code.json()["code"] == "invalid_request"
    assert created.status_code == 201, created.text
    assert (created.json()["indication"], created.json()["diagnosis_codes"]) == ("ptsd", ["F4310", "F331"])
    [announced] = await eventually(
        lambda: events_for(services.kafka.bootstrap, "dosing.plans", patient, "TreatmentPlanCreated"),
        what="plan created",
    )
    assert announced["payload"]["indication"] == "ptsd" and announced["payload"]["diagnosis_codes"] == ["F4310", "F331"]
