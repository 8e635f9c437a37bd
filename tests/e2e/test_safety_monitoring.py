"""Safety monitoring end to end: every service its own process, real Kafka and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from carecoord_contracts import Envelope
from carecoord_contracts.common import AppointmentType
from carecoord_contracts.dosing import DosingSessionAuthorised, DosingSessionRefused
from carecoord_contracts.patient_app import MoodCheckInSubmitted
from carecoord_contracts.scheduling import AppointmentBooked, AppointmentNoShow
from carecoord_devstack.stack import Stack
from tests.auth import api_client, patient_token
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import events_for, group_caught_up, publish_envelope, publish_event

pytestmark = pytest.mark.e2e


async def _post(stack: Stack, path: str, body: dict[str, Any]) -> httpx.Response:
    async with api_client(timeout=10) as http:
        return await http.post(journeys.url(stack, "safety", path), json=body)


async def _status(stack: Stack, patient: uuid.UUID) -> str:
    return (await journeys.plan(stack, patient))["status"]  # type: ignore[no-any-return]


async def test_phq9_item9_above_zero_opens_an_urgent_review_and_pauses_the_plan(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    items = [1, 1, 2, 1, 0, 1, 1, 0, 1]  # item 9 (thoughts of self-harm) = 1, total 8
    checkin = MoodCheckInSubmitted(checkin_id=uuid.uuid4(), phq9_items=items, answered_at="2026-11-27T08:00:00Z")
    await publish_event(services.kafka.bootstrap, "patient-app.reports", checkin, patient)

    await eventually(lambda: _paused(services, patient), what="plan paused after PHQ-9 item 9 > 0")
    [review] = await journeys.reviews(services, patient)
    assert (review["reason"], review["priority"], review["triggers"]) == ("suicide_risk", "urgent", ["phq9_item9_1"])
    [recorded] = await events_for(services.kafka.bootstrap, "safety.reports", patient, "MoodCheckInRecorded")
    assert recorded["payload"]["phq9_total"] == 8 and recorded["payload"]["phq9_item9"] == 1


async def test_a_grade_2_report_opens_a_review_without_a_pause(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    outcome = (await journeys.report(services, patient, symptoms=["dizziness"], grade=2)).json()
    assert outcome["escalated"] and not outcome["hold_requested"]
    [review] = await journeys.reviews(services, patient)
    assert (review["reason"], review["priority"]) == ("moderate_side_effect", "routine")
    await eventually(
        lambda: events_for(services.kafka.bootstrap, "safety.reviews", patient, "ClinicianReviewOpened"),
        what="review published",
    )
    assert await events_for(services.kafka.bootstrap, "safety.holds", patient) == []
    assert await _status(services, patient) == "active"


async def test_three_grade_1_nausea_reports_within_7_days_open_one_review(services: Stack) -> None:
    patient = uuid.uuid4()
    outcomes = [(await journeys.report(services, patient, symptoms=["nausea"], grade=1)).json() for _ in range(4)]
    assert [o["escalated"] for o in outcomes] == [False, False, True, True]
    assert outcomes[2]["review_id"] == outcomes[3]["review_id"], "the fourth attaches to the open review"
    [review] = await journeys.reviews(services, patient)
    assert (review["reason"], review["triggers"]) == ("repeated_side_effect", ["nausea_x3_in_7d", "nausea_x4_in_7d"])
    async with api_client(timeout=10) as http:
        detail = (await http.get(journeys.url(services, "safety", f"/v1/reviews/{review['review_id']}"))).json()
    assert [t["source_id"] for t in detail["trigger_history"]] == [outcomes[2]["report_id"], outcomes[3]["report_id"]]


async def test_blood_pressure_crisis_pauses_and_a_pre_dose_reading_is_out_of_limits(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    pre_dose = await _post(
        services,
        "/v1/vitals",
        {
            "patient_id": str(patient),
            "systolic": 145,
            "diastolic": 85,
            "measured_at": "2026-11-27T08:00:00Z",
            "context": "pre_dose",
        },
    )
    assert pre_dose.status_code == 201, pre_dose.text
    assert pre_dose.json()["out_of_limits"] and not pre_dose.json()["escalated"]
    crisis = await _post(
        services,
        "/v1/vitals",
        {
            "patient_id": str(patient),
            "systolic": 184,
            "diastolic": 112,
            "measured_at": "2026-11-27T08:05:00Z",
            "context": "post_dose",
        },
    )
    assert crisis.json()["hold_requested"]
    await eventually(lambda: _paused(services, patient), what="plan paused by a hypertensive crisis reading")


async def test_the_worklist_orders_by_priority_then_due_time_and_reviews_move_through_their_states(
    services: Stack,
) -> None:
    routine_patient, urgent_patient = uuid.uuid4(), uuid.uuid4()
    routine = (await journeys.report(services, routine_patient, symptoms=["headache"], grade=2)).json()
    urgent = (await journeys.report(services, urgent_patient, symptoms=["nausea"], grade=3)).json()
    async with api_client(timeout=10) as http:
        worklist = await journeys.worklist(http, services)
        ids = [r["review_id"] for r in worklist]
        assert ids.index(urgent["review_id"]) < ids.index(routine["review_id"])
        priorities = [r["priority"] for r in worklist]
        assert priorities == sorted(priorities, key=["urgent", "high", "routine"].index)

        url = journeys.url(services, "safety", f"/v1/reviews/{routine['review_id']}")
        acknowledged = await http.post(f"{url}/acknowledge", json={"clinician_id": "dr-lee"})
        assert acknowledged.status_code == 200 and acknowledged.json()["status"] == "acknowledged"
        metrics = (await http.get(journeys.url(services, "safety", "/metrics"))).text
        assert any(
            line.startswith("carecoord_review_time_to_acknowledge_seconds_count{")
            and 'reason="moderate_side_effect"' in line
            for line in metrics.splitlines()
        ), "time to acknowledge is measured"
        again = await http.post(f"{url}/acknowledge", json={"clinician_id": "dr-lee"})
        assert again.status_code == 409 and "only an open review" in again.json()["detail"]
        resolved = await http.post(
            f"{url}/resolve", json={"clinician_id": "dr-lee", "decision": "resume", "note": "spoke with patient"}
        )
        assert resolved.json()["status"] == "resolved"
        missing = await http.post(
            journeys.url(services, "safety", f"/v1/reviews/{uuid.uuid4()}/acknowledge"), json={"clinician_id": "x"}
        )
        assert missing.status_code == 404
    types = [
        e["type"]
        for e in await eventually(
            lambda: _at_least(events_for(services.kafka.bootstrap, "safety.reviews", routine_patient), 4),
            what="review events",
        )
    ]
    # Opened, then said whom it is with (nobody is on call here: unassigned), acknowledged, resolved.
    assert types == [
        "ClinicianReviewOpened",
        "ClinicianReviewAssigned",
        "ClinicianReviewAcknowledged",
        "ClinicianReviewResolved",
    ]


async def test_shadow_evaluation_of_a_stricter_version_lists_differences_and_changes_nothing(services: Stack) -> None:
    patient = uuid.uuid4()
    grade_2 = (await journeys.report(services, patient, symptoms=["vomiting"], grade=2)).json()
    mild = (await journeys.report(services, patient, symptoms=["headache"], grade=1)).json()
    await eventually(
        lambda: group_caught_up(services.kafka.bootstrap, "carecoord.safety", "patient-app.reports"), what="quiet"
    )
    before = await _safety_counts(services)

    response = await _post(services, "/v1/rules/shadow", {"version": "2026.12.0"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["proposed_version"] == "2026.12.0" and report["observations_replayed"] >= 2
    differing = {d["id"]: d for d in report["differences"]}
    mine = differing[grade_2["report_id"]]
    assert mine["recorded"]["hold"] is False and mine["proposed"]["hold"] is True
    assert mine["recorded_version"] == "2026.12.1"
    assert mild["report_id"] not in differing, "a single grade-1 report decides the same under both"

    assert await _safety_counts(services) == before, "shadow evaluation acted on nothing"
    unknown = await _post(services, "/v1/rules/shadow", {"version": "1999.1.1"})
    assert unknown.status_code == 404 and "no rule file" in unknown.json()["detail"]


# --- issue #20: the blood-pressure rule's symptoms, emergency advice, the vocabulary, unknown codes ---


@pytest.mark.parametrize("symptom", ["severe_headache", "confusion", "shortness_of_breath"])
async def test_a_symptom_of_the_blood_pressure_rule_pauses_the_plan_and_tells_the_patient_to_seek_emergency_care(
    services: Stack, symptom: str
) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    answer = await journeys.report(services, patient, symptoms=[symptom], grade=1)
    assert answer.status_code == 201, answer.text
    outcome = answer.json()
    assert (
        outcome["hold_requested"] and outcome["advice"] == ["seek_emergency_care"] and outcome["unknown_symptoms"] == []
    )
    await eventually(lambda: _paused(services, patient), what=f"plan paused after {symptom}")
    [review] = await journeys.reviews(services, patient)
    assert (review["reason"], review["priority"], review["triggers"]) == (
        "severe_side_effect",
        "urgent",
        [f"red_flag_{symptom}"],
    )
    [reported] = await events_for(services.kafka.bootstrap, "safety.reports", patient, "SideEffectReported")
    assert reported["payload"]["advice"] == ["seek_emergency_care"] and reported["payload"]["escalated"]
    again = await journeys.report(services, patient, symptoms=[symptom], grade=1, report_id=outcome["report_id"])
    assert again.status_code == 200 and again.json()["advice"] == ["seek_emergency_care"], (
        "a resubmission answers the same"
    )


async def test_a_crisis_reading_answers_with_emergency_advice_and_a_high_one_without(services: Stack) -> None:
    patient = uuid.uuid4()
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    high = await _post(
        services,
        "/v1/vitals",
        {"patient_id": str(patient), "systolic": 179, "diastolic": 109, "measured_at": at, "context": "post_dose"},
    )
    crisis = await _post(
        services,
        "/v1/vitals",
        {"patient_id": str(patient), "systolic": 180, "diastolic": 80, "measured_at": at, "context": "post_dose"},
    )
    assert (high.json()["advice"], crisis.json()["advice"]) == ([], ["seek_emergency_care"])
    recorded = await eventually(
        lambda: _at_least(events_for(services.kafka.bootstrap, "safety.reports", patient, "VitalsRecorded"), 2),
        what="vitals published",
    )
    assert [e["payload"]["advice"] for e in recorded] == [[], ["seek_emergency_care"]]


async def test_the_symptom_vocabulary_is_published_under_the_rule_version_in_force(services: Stack) -> None:
    async with api_client(patient_token(uuid.uuid4()), timeout=10) as http:  # the app asks with the patient's token
        response = await http.get(journeys.url(services, "safety", "/v1/rules/symptoms"))
    assert response.status_code == 200, response.text
    body = response.json()
    by_code = {s["code"]: s for s in body["symptoms"]}
    assert body["rule_version"] == "2026.12.1"
    assert by_code["severe_headache"] == {
        "code": "severe_headache",
        "label": "Severe headache",
        "red_flag": True,
        "advice": ["seek_emergency_care"],
    }
    assert by_code["nausea"]["red_flag"] is False and by_code["blood_in_urine"]["red_flag"] is True
    assert "accepted" in body["unknown_codes"]


async def test_an_unknown_symptom_code_is_accepted_flagged_for_a_clinician_counted_and_answered(
    services: Stack,
) -> None:
    patient = uuid.uuid4()
    metric = "carecoord_safety_unknown_symptom_codes_total"
    before = await _counter(services, metric)
    answer = await journeys.report(services, patient, symptoms=["nausea", "tingling_lips", "zz_new_code"], grade=1)
    assert answer.status_code == 201, answer.text
    outcome = answer.json()
    assert (
        outcome["unknown_symptoms"] == ["tingling_lips", "zz_new_code"]
        and outcome["escalated"]
        and not outcome["hold_requested"]
    )
    [review] = await journeys.reviews(services, patient)
    assert (review["reason"], review["priority"]) == ("unrecognised_symptom", "routine")
    assert review["triggers"] == ["unknown_symptom_tingling_lips", "unknown_symptom_zz_new_code"]
    [reported] = await events_for(services.kafka.bootstrap, "safety.reports", patient, "SideEffectReported")
    assert reported["payload"]["unknown_symptoms"] == ["tingling_lips", "zz_new_code"]
    assert await _counter(services, metric) == before + 2
    async with api_client(timeout=10) as http:
        metrics = (await http.get(journeys.url(services, "safety", "/metrics"))).text
    assert "tingling_lips" not in metrics and "zz_new_code" not in metrics, "no code (outside text) as a metric label"


async def _counter(stack: Stack, name: str) -> float:
    async with api_client(timeout=10) as http:
        text = (await http.get(journeys.url(stack, "safety", "/metrics"))).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith((name + "{", name + " ")))


# --- issue #20: the post-dose timers run from the dosing service's authorisation (real topics) ---


async def _session_row(stack: Stack, appointment: uuid.UUID) -> Any:
    conn = await asyncpg.connect(stack.postgres.dsn("safety"))
    try:
        session = await conn.fetchrow("SELECT * FROM dosing_sessions WHERE appointment_id = $1", appointment)
        timers = await conn.fetch(
            "SELECT kind, due_at, cancelled_at FROM timers WHERE subject_id = $1 AND fired_at IS NULL ORDER BY kind",
            appointment,
        )
        return session, timers
    finally:
        await conn.close()


async def test_safety_hears_the_authorisation_on_dosing_sessions_and_times_the_check_in_from_it(
    services: Stack,
) -> None:
    patient, appointment, refused_appointment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    starts_at = datetime.now(UTC) + timedelta(hours=3)
    bootstrap = services.kafka.bootstrap
    for booked in (appointment, refused_appointment):
        event = AppointmentBooked(
            appointment_id=booked,
            appointment_type=AppointmentType.dosing_session,
            clinician_id="dr-lee",
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=2),
        )
        await publish_event(bootstrap, "scheduling.appointments", event, patient, producer="scheduling")
    authorisation = Envelope.wrap(
        DosingSessionAuthorised(
            authorisation_id=uuid.uuid4(), plan_id=uuid.uuid4(), appointment_id=appointment, dose_mg=100
        ),
        patient_id=patient,
        producer="dosing",
    )
    await publish_envelope(bootstrap, "dosing.sessions", authorisation)
    refusal = DosingSessionRefused(appointment_id=refused_appointment, plan_id=uuid.uuid4(), reason="blood_pressure")
    await publish_event(bootstrap, "dosing.sessions", refusal, patient, producer="dosing")

    async def handled() -> Any:
        (dosed, timers), (refused, _) = (
            await _session_row(services, appointment),
            await _session_row(services, refused_appointment),
        )
        return (
            (dosed, timers, refused) if dosed and dosed["authorised_at"] and refused and refused["refused_at"] else None
        )

    dosed, timers, refused = await eventually(handled, what="safety handled the authorisation and the refusal")
    assert dosed["authorised_at"] == authorisation.occurred_at
    assert [(t["kind"], t["due_at"] - authorisation.occurred_at, t["cancelled_at"]) for t in timers] == [
        ("checkin_missed", timedelta(hours=4), None),
        ("checkin_review", timedelta(hours=8), None),
    ], "from the dose, not from the booked start three hours later"
    assert refused["authorised_at"] is None and refused["refusal_reason"] == "blood_pressure"
    _, refused_timers = await _session_row(services, refused_appointment)
    assert refused_timers == [], "a refused session has nothing to chase"


async def test_a_dosing_session_no_show_on_scheduling_appointments_opens_a_review(services: Stack) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    starts_at = datetime.now(UTC) - timedelta(hours=1)
    no_show = AppointmentNoShow(
        appointment_id=appointment, appointment_type=AppointmentType.dosing_session, starts_at=starts_at
    )
    await publish_event(services.kafka.bootstrap, "scheduling.appointments", no_show, patient, producer="scheduling")
    [review] = await eventually(lambda: journeys.reviews(services, patient), what="no-show review")
    assert (review["reason"], review["priority"], review["rule_version"]) == (
        "dosing_session_no_show",
        "high",
        "2026.12.1",
    )


async def test_invalid_observations_get_a_422_naming_the_field(services: Stack) -> None:
    patient = str(uuid.uuid4())
    cases = {
        "systolic": {
            "patient_id": patient,
            "systolic": 400,
            "diastolic": 80,
            "measured_at": "2026-11-27T08:00:00Z",
            "context": "pre_dose",
        },
        "measured_at": {
            "patient_id": patient,
            "systolic": 120,
            "diastolic": 80,
            "measured_at": "2999-01-01T00:00:00Z",
            "context": "pre_dose",
        },
        "context": {
            "patient_id": patient,
            "systolic": 120,
            "diastolic": 80,
            "measured_at": "2026-11-27T08:00:00Z",
            "context": "sometime",
        },
    }
    for field, body in cases.items():
        response = await _post(services, "/v1/vitals", body)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field, response.text
    short = await _post(services, "/v1/mood-check-ins", {"patient_id": patient, "phq9_items": [0] * 8})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "phq9_items"
    assert await _rows_for(services, uuid.UUID(patient)) == 0


async def _paused(stack: Stack, patient: uuid.UUID) -> bool:
    return await _status(stack, patient) == "paused"


async def _at_least(found: Any, n: int) -> list[Any] | None:
    items = await found
    return items if len(items) >= n else None


async def _safety_counts(stack: Stack) -> dict[str, int]:
    conn = await asyncpg.connect(stack.postgres.dsn("safety"))
    try:
        tables = ("clinician_reviews", "treatment_holds", "review_triggers", "outbox", "timers", "side_effect_reports")
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
    finally:
        await conn.close()


async def _rows_for(stack: Stack, patient: uuid.UUID) -> int:
    conn = await asyncpg.connect(stack.postgres.dsn("safety"))
    try:
        return sum(
            [
                await conn.fetchval(f"SELECT count(*) FROM {t} WHERE patient_id = $1", patient)
                for t in ("vitals_readings", "mood_checkins", "clinician_reviews")
            ]
        )
    finally:
        await conn.close()
