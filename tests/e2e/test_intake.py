"""Intake over HTTP with every service as its own process: scoring, eligibility, PHI at rest, the internal API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from carecoord_devstack.stack import Stack
from tests.auth import SERVICE_TOKEN, api_client, clinician_token
from tests.conftest import eventually
from tests.e2e import intake_journeys as intake
from tests.e2e import journeys
from tests.e2e.journeys import url
from tests.kafka_io import events_for

pytestmark = pytest.mark.e2e

INTERNAL_TOKEN = SERVICE_TOKEN  # billing calls the internal API as a service
PATIENT_TABLES = ("assessments", "medical_screenings", "blood_pressure_readings", "coverages", "eligibility_decisions")


async def test_a_full_eligible_registration_publishes_eligibility_determined(services: Stack) -> None:
    body = intake.registration()
    patient_id = await intake.complete_intake(services, body)

    decision = (await intake.status(services, patient_id))["decision"]
    assert decision["outcome"] == "eligible" and decision["reasons"] == ["phq9_threshold_met"]

    [determined] = await eventually(
        lambda: events_for(
            services.kafka.bootstrap, "intake.screening", uuid.UUID(patient_id), "EligibilityDetermined"
        ),
        what="EligibilityDetermined published to intake.screening",
    )
    payload = determined["payload"]
    assert payload["outcome"] == "eligible"
    assert (payload["state_of_residence"], payload["time_zone"]) == ("CO", "America/Denver")
    assert payload["rule_version"] == decision["rule_version"] and payload["decision_id"] == decision["decision_id"]
    assert payload["reasons"] == ["phq9_threshold_met"] and payload["overridden_by"] is None

    screening = await events_for(services.kafka.bootstrap, "intake.screening", uuid.UUID(patient_id))
    scored = {e["payload"]["instrument"]: e["payload"] for e in screening if e["type"] == "AssessmentScored"}
    assert {i: (s["total"], s["severity_band"]) for i, s in scored.items()} == {
        "phq9": (12, "moderate"),
        "gad7": (5, "mild"),
        "pcl5": (20, "below_threshold"),
    }
    assert scored["phq9"]["item9_positive"] is False and scored["pcl5"]["provisional_ptsd"] is False
    assert [e["type"] for e in screening].count("MedicalScreeningCompleted") == 1

    patients = await eventually(
        lambda: _types_at_least(services, "intake.patients", patient_id, {"PatientRegistered", "CoverageDeclared"}),
        what="PatientRegistered and CoverageDeclared published",
    )
    coverage = next(e["payload"] for e in patients if e["type"] == "CoverageDeclared")
    assert (coverage["kind"], coverage["payer_id"], coverage["state_of_residence"]) == ("insurance", "BCBSCO", "CO")

    # Minimum necessary: not one identifying value in any event about this patient.
    everything = json.dumps(screening + patients)
    for phi in (
        body["first_name"],
        body["last_name"],
        body["date_of_birth"],
        body["email"],
        body["phone"],
        body["address"]["line1"],
        "XQZ-99817",
        body["external_id"],
    ):
        assert phi not in everything


async def test_a_clinician_re_evaluates_after_a_move_to_a_served_state_and_scheduling_books_the_evaluation(
    services: Stack,
) -> None:
    await journeys.clinician(services, "psychiatric_clinician", "CO", "America/Denver")
    patient_id = await intake.complete_intake(
        services, intake.registration(state_of_residence="AK", time_zone="America/Anchorage")
    )
    first = (await intake.status(services, patient_id))["decision"]
    assert (first["outcome"], first["sequence"], first["basis"]) == ("ineligible", 1, "rules")

    # Staff put dr-re on the ineligible patient's team (the therapist: the evaluation booked after the move
    # names the prescriber), so that they may re-evaluate.
    await journeys.clinician(
        services, "therapist", "AK", "America/Anchorage", clinician_id="dr-re", also_licensed_in=("CO",)
    )
    await journeys.join_care_team(services, patient_id, "intake", therapist_id="dr-re")
    re_evaluation = url(services, "intake", f"/v1/patients/{patient_id}/eligibility/re-evaluation")
    moved = {"state_of_residence": "CO", "time_zone": "America/Denver"}
    body = {"clinician_id": "dr-re", "reason": "moved to Denver in November", "residence": moved}
    both = clinician_token("dr-re", ["AK", "CO"])
    async with api_client(both, timeout=10) as http:
        for bad in (
            {**body, "reason": ""},
            {k: v for k, v in body.items() if k != "reason"},
            {**body, "residence": {**moved, "time_zone": "Mars/Olympus"}},
            {
                **body,
                "blood_pressure": {"systolic": 400, "diastolic": 80, "measured_at": datetime.now(UTC).isoformat()},
            },
            {**body, "outcome": "eligible"},
        ):
            refused = await http.post(re_evaluation, json=bad)
            assert refused.status_code == 422, (bad, refused.text)
        assert (await http.post(re_evaluation, json={**body, "clinician_id": "dr-other"})).status_code == 403, (
            "own name only"
        )
    async with api_client(clinician_token("dr-re", ["AK"]), timeout=10) as http:
        assert (await http.post(re_evaluation, json=body)).status_code == 403, "not licensed in the new state"
    async with api_client(timeout=10) as http:
        assert (await http.post(re_evaluation, json=body)).status_code == 403, "a clinician's act: no service"
    async with api_client(both, timeout=10) as http:
        done = await http.post(re_evaluation, json=body)
        assert done.status_code == 200, done.text
    decision = done.json()
    assert (decision["outcome"], decision["sequence"], decision["basis"]) == ("eligible", 2, "clinician_re_evaluation")
    assert decision["overrides_decision_id"] == first["decision_id"] and decision["overridden_by"] == "dr-re"
    status = await intake.status(services, patient_id)
    assert status["decision"] == decision and status["state_of_residence"] == "CO"

    async with api_client(clinician_token("dr-re", ["CO"]), timeout=10) as http:
        history = await http.get(url(services, "intake", f"/v1/patients/{patient_id}/eligibility/decisions"))
    assert history.status_code == 200, history.text
    assert [(d["sequence"], d["outcome"], d["clinician_reason"]) for d in history.json()["items"]] == [
        (1, "ineligible", None),
        (2, "eligible", "moved to Denver in November"),
    ]

    determined = await eventually(
        lambda: _n_events(services, "intake.screening", patient_id, "EligibilityDetermined", 2),
        what="both decisions published",
    )
    assert [(e["payload"]["outcome"], e["payload"]["sequence"]) for e in determined] == [
        ("ineligible", 1),
        ("eligible", 2),
    ]
    assert "Denver in November" not in json.dumps(determined), "the clinician's free text stays in intake"
    booked = await eventually(
        lambda: _evaluation(services, patient_id), what="scheduling booked the evaluation on the superseding decision"
    )
    assert booked["status"] == "booked"

    # Safety learnt the move: the care team's dr-re, with a licence in the new state only, reaches the patient
    # there; with one in the old state only, no longer.
    async def safety_admits(token: str) -> int:
        async with api_client(token, timeout=10) as http:
            answer = await http.get(url(services, "safety", f"/v1/patients/{patient_id}/vitals"))
        return answer.status_code

    await eventually(
        lambda: _true_or_none(safety_admits(clinician_token("dr-re", ["CO"])), 200),
        what="safety knows the patient moved to CO",
    )
    assert await safety_admits(clinician_token("dr-re", ["AK"])) == 403

    conn = await asyncpg.connect(services.postgres.dsn("intake"))
    try:
        audited = await conn.fetch(
            "SELECT actor, action, outcome FROM audit_log WHERE patient_id = $1 AND resource = 'eligibility' ORDER BY id",
            uuid.UUID(patient_id),
        )
    finally:
        await conn.close()
    assert ("dr-re", "re-evaluate", "allowed") in [tuple(r) for r in audited]


async def _true_or_none(status: Any, wanted: int) -> bool | None:
    return True if await status == wanted else None


async def _evaluation(stack: Stack, patient_id: str) -> dict[str, Any] | None:
    return next(
        (a for a in await journeys.appointments(stack, patient_id) if a["appointment_type"] == "initial_evaluation"),
        None,
    )


async def test_registration_is_idempotent_on_the_external_id(services: Stack) -> None:
    body = intake.registration()
    first = await intake.register(services, body)
    again = await intake.register(services, {**body, "first_name": "Someone", "state_of_residence": "NY"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    patient_id = uuid.UUID(first.json()["patient_id"])
    await eventually(
        lambda: events_for(services.kafka.bootstrap, "intake.patients", patient_id, "PatientRegistered"),
        what="PatientRegistered published",
    )
    assert len(await events_for(services.kafka.bootstrap, "intake.patients", patient_id, "PatientRegistered")) == 1


async def test_an_unserved_state_is_ineligible_with_its_reason(services: Stack) -> None:
    patient_id = await intake.complete_intake(
        services, intake.registration(state_of_residence="AK", time_zone="America/Anchorage")
    )
    decision = (await intake.status(services, patient_id))["decision"]
    assert (decision["outcome"], decision["reasons"]) == ("ineligible", ["state_not_served"])


async def test_a_needs_review_decision_is_overridden_by_a_clinician_who_says_why(services: Stack) -> None:
    phq9_item9 = ("POST", "/assessments", {"instrument": "phq9", "answers": [2, 2, 1, 2, 1, 1, 2, 1, 1]})
    patient_id = await intake.complete_intake(services, phq9=phq9_item9)
    first = (await intake.status(services, patient_id))["decision"]
    assert (first["outcome"], first["reasons"]) == ("needs_review", ["phq9_item9_positive"])

    # Screening answers are frozen once decided.
    late = await intake.step(services, patient_id, *intake.eligible_steps()[1])
    assert late.status_code == 409, late.text

    why = "C-SSRS done on video call: passive ideation only, safety plan in place"
    override_url = url(services, "intake", f"/v1/patients/{patient_id}/eligibility/override")
    async with api_client(timeout=10) as http:
        done = await http.post(override_url, json={"clinician_id": "dr-lee", "outcome": "eligible", "reason": why})
        assert done.status_code == 200, done.text
        again = await http.post(override_url, json={"clinician_id": "dr-lee", "outcome": "ineligible", "reason": "x"})
        assert again.status_code == 409, "only a needs_review decision can be overridden"
    decision = done.json()
    assert decision["outcome"] == "eligible" and decision["overridden_by"] == "dr-lee"
    assert decision["overrides_decision_id"] == first["decision_id"]
    assert decision["reasons"] == ["phq9_item9_positive", "clinician_override"]
    assert (await intake.status(services, patient_id))["decision"] == decision

    determined = await eventually(
        lambda: _n_events(services, "intake.screening", patient_id, "EligibilityDetermined", 2),
        what="both decisions published",
    )
    assert [(e["payload"]["outcome"], e["payload"]["overridden_by"]) for e in determined] == [
        ("needs_review", None),
        ("eligible", "dr-lee"),
    ]
    assert "safety plan" not in json.dumps(determined), "the clinician's free text stays in intake"

    conn = await asyncpg.connect(services.postgres.dsn("intake"))
    try:
        stored = await conn.fetchrow(
            "SELECT * FROM eligibility_decisions WHERE decision_id = $1", uuid.UUID(decision["decision_id"])
        )
    finally:
        await conn.close()
    assert stored["overridden_by"] == "dr-lee" and stored["override_reason_enc"]
    assert "safety plan" not in json.dumps(dict(stored), default=str)


def _bad_requests() -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path under the patient, body, field the 422 must name)."""
    now = datetime.now(UTC)
    steps = {path + body.get("instrument", ""): (method, path, body) for method, path, body in intake.eligible_steps()}
    screening = steps["/medical-screening"][2]
    return [
        ("POST", "/assessments", {"instrument": "phq9", "answers": [1] * 8}, "phq9.answers"),
        ("POST", "/assessments", {"instrument": "phq9", "answers": [1] * 10}, "phq9.answers"),
        ("POST", "/assessments", {"instrument": "gad7", "answers": [0, 0, 0, 4, 0, 0, 0]}, "gad7.answers.3"),
        ("POST", "/assessments", {"instrument": "pcl5", "answers": [0] * 19 + [5]}, "pcl5.answers.19"),
        ("POST", "/assessments", {"instrument": "pcl5", "answers": [-1] + [0] * 19}, "pcl5.answers.0"),
        ("POST", "/assessments", {"instrument": "phq9", "answers": ["1"] * 9}, "phq9.answers.0"),
        ("POST", "/assessments", {"instrument": "bdi", "answers": [1] * 9}, "body"),
        ("POST", "/medical-screening", {"answers": {**screening["answers"], "pregnant": None}}, "answers.pregnant"),
        (
            "POST",
            "/medical-screening",
            {"answers": {k: v for k, v in screening["answers"].items() if k != "pregnant"}},
            "answers.pregnant",
        ),
        ("POST", "/medical-screening", {"answers": {**screening["answers"], "feels_fine": True}}, "answers.feels_fine"),
        ("POST", "/medical-screening", {**screening, "notes": "x" * 2001}, "notes"),
        ("POST", "/blood-pressure", {"systolic": 400, "diastolic": 80, "measured_at": now.isoformat()}, "systolic"),
        (
            "POST",
            "/blood-pressure",
            {"systolic": 120, "diastolic": 80, "measured_at": (now + timedelta(days=1)).isoformat()},
            "measured_at",
        ),
        ("PUT", "/coverage", {"kind": "insurance", "payer_id": "BCBSCO"}, "member_id"),
        ("PUT", "/coverage", {"kind": "self_pay", "plan": "p" * 129}, "plan"),
    ]


def _bad_registrations() -> list[tuple[dict[str, Any], str]]:
    address = intake.registration()["address"]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    return [
        (intake.registration(date_of_birth=tomorrow), "date_of_birth"),
        (intake.registration(state_of_residence="XX"), "state_of_residence"),
        (intake.registration(address={**address, "state": "ZZ"}), "address.state"),
        (intake.registration(first_name="A" * 65), "first_name"),
        (intake.registration(last_name="Drop\x00Tables"), "last_name"),
        (intake.registration(time_zone="Mars/Olympus_Mons"), "time_zone"),
        (intake.registration(sex="female"), "sex"),
        (intake.registration(email="not-an-email"), "email"),
        (intake.registration(address={**address, "postal_code": "8020"}), "address.postal_code"),
        (intake.registration(ssn="123-45-6789"), "ssn"),
    ]


async def test_invalid_submissions_get_a_422_naming_the_field_and_write_nothing(services: Stack) -> None:
    registered = await intake.register(services, intake.registration())
    patient_id = uuid.UUID(registered.json()["patient_id"])
    conn = await asyncpg.connect(services.postgres.dsn("intake"))
    try:
        outbox_before = await conn.fetchval("SELECT count(*) FROM outbox")
        for method, path, body, field in _bad_requests():
            response = await intake.step(services, str(patient_id), method, path, body)
            _assert_422_naming(response, field, body)
        for body, field in _bad_registrations():
            _assert_422_naming(await intake.register(services, body), field, body)
            assert await conn.fetchval("SELECT count(*) FROM patients WHERE external_id = $1", body["external_id"]) == 0

        for table in PATIENT_TABLES:
            assert await conn.fetchval(f"SELECT count(*) FROM {table} WHERE patient_id = $1", patient_id) == 0, table
        assert await conn.fetchval("SELECT count(*) FROM outbox") == outbox_before
    finally:
        await conn.close()

    # Valid steps for a patient who does not exist: 404, and nothing written either.
    response = await intake.step(services, str(uuid.uuid4()), *intake.eligible_steps()[0])
    assert response.status_code == 404


async def test_the_raw_database_rows_hold_no_plaintext_phi(services: Stack) -> None:
    body = intake.registration(first_name="Perpetua", last_name="Zwingli-Oyelaran", date_of_birth="1979-03-14")
    notes = (
        "POST",
        "/medical-screening",
        {"answers": intake.NO_CONDITIONS, "notes": "my neighbour Perpetua drives me"},
    )
    patient_id = uuid.UUID(await intake.complete_intake(services, body, screening=notes))
    conn = await asyncpg.connect(services.postgres.dsn("intake"))
    try:
        rows = [await conn.fetchrow("SELECT * FROM patients WHERE patient_id = $1", patient_id)]
        for table in PATIENT_TABLES:
            rows += await conn.fetch(f"SELECT * FROM {table} WHERE patient_id = $1", patient_id)
        # Dumped as text, the way a backup or a support query would show them.
        dumped = " ".join(str(v) for row in rows for v in row.values())
    finally:
        await conn.close()
    assert rows[0]["first_name_enc"] and rows[0]["date_of_birth_enc"]
    for plaintext in (
        "Perpetua",
        "Zwingli",
        "1979-03-14",
        "1979",
        body["email"],
        "555 0142",
        "Evergreen",
        "80202",
        "XQZ-99817",
        "neighbour",
    ):
        assert plaintext not in dumped, plaintext
    assert "BCBSCO" in dumped and "CO" in dumped, "payer and state are not PHI and stay readable"

    # Nor does intake's log (DEBUG level in the test stack).
    log = services.services["intake"].log_file.read_text()
    assert str(patient_id) in log, "the log does record the pseudonymous id"
    for plaintext in ("Perpetua", "Zwingli", "1979-03-14", body["email"], "Evergreen", "XQZ-99817", "neighbour"):
        assert plaintext not in log, plaintext


async def test_claim_demographics_for_the_right_token_only(services: Stack) -> None:
    body = intake.registration()
    patient_id = await intake.complete_intake(services, body)
    endpoint = url(services, "intake", f"/v1/internal/patients/{patient_id}/claim-demographics")
    async with httpx.AsyncClient(timeout=10) as http:  # no default token: each request says its own
        ok = await http.get(endpoint, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"})
        refused = [
            await http.get(endpoint),
            await http.get(endpoint, headers={"Authorization": "Bearer wrong-token"}),
            await http.get(endpoint, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}x"}),
            await http.get(endpoint, headers={"Authorization": f"Basic {INTERNAL_TOKEN}"}),
            await http.get(endpoint, headers={"Authorization": INTERNAL_TOKEN}),
        ]
        unknown = url(services, "intake", f"/v1/internal/patients/{uuid.uuid4()}/claim-demographics")
        missing = await http.get(unknown, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"})
        missing_unauthenticated = await http.get(unknown)

    assert ok.status_code == 200, ok.text
    assert ok.json() == {
        "patient_id": patient_id,
        "first_name": body["first_name"],
        "last_name": body["last_name"],
        "date_of_birth": body["date_of_birth"],
        "sex": "F",
        "address": {"line1": "742 Evergreen Terrace", "city": "Denver", "state": "CO", "postal_code": "80202"},
        "coverage": {"payer_id": "BCBSCO", "member_id": "XQZ-99817", "plan": "Silver PPO"},
    }
    for response in refused:
        assert response.status_code == 401, response.text
        assert body["last_name"] not in response.text
    assert missing.status_code == 404
    assert missing_unauthenticated.status_code == 401, "no token, no hint whether the patient exists"


async def test_self_pay_claim_demographics_have_no_coverage(services: Stack) -> None:
    self_pay = ("PUT", "/coverage", {"kind": "self_pay"})
    patient_id = await intake.complete_intake(services, coverage=self_pay)
    async with api_client(timeout=10) as http:
        response = await http.get(
            url(services, "intake", f"/v1/internal/patients/{patient_id}/claim-demographics"),
            headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
        )
    assert response.status_code == 200 and response.json()["coverage"] is None


def _assert_422_naming(response: httpx.Response, field: str, body: dict[str, Any]) -> None:
    assert response.status_code == 422, (field, response.text)
    problem = response.json()
    named = {e["field"] for e in problem["errors"]}
    assert field in named or (field == "body" and named), (field, problem)
    for value in (body.get("first_name"), body.get("last_name")):
        if value:
            assert value not in response.text, "a 422 never echoes submitted PHI"


async def _types_at_least(stack: Stack, topic: str, patient_id: str, wanted: set[str]) -> list[dict[str, Any]] | None:
    got = await events_for(stack.kafka.bootstrap, topic, uuid.UUID(patient_id))
    return got if wanted <= {e["type"] for e in got} else None


async def _n_events(stack: Stack, topic: str, patient_id: str, event_type: str, n: int) -> list[dict[str, Any]] | None:
    got = await events_for(stack.kafka.bootstrap, topic, uuid.UUID(patient_id), event_type)
    return got if len(got) >= n else None
