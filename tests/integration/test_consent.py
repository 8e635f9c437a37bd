"""Consent (ADR 0016), each service in-process on real PostgreSQL (tests/service_harness.py):

intake publishes versioned consent texts, records signatures and withdrawals and announces them;
dosing authorises no session without a standing ketamine treatment consent and holds the plan when it
is withdrawn; safety opens a clinician review with a hold on that withdrawal; scheduling and billing,
declared consumers of the topic, skip the new events.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carecoord_contracts.common import ConsentDocument, ReviewDecision
from carecoord_contracts.intake import ConsentSigned, ConsentWithdrawn
from carecoord_contracts.safety import TreatmentHoldReleased, TreatmentHoldRequested, VitalsRecorded
from carecoord_devstack.stack import Stack
from carecoord_dosing.models import treatment_plans
from carecoord_intake.models import patient_consents
from carecoord_safety.models import clinician_reviews
from carecoord_safety.models import treatment_holds as safety_holds
from carecoord_shared.messaging.consumer import Outcome
from tests.auth import SERVICE_TOKEN, clinician_token, patient_token
from tests.care import join_care_team
from tests.e2e.intake_journeys import registration
from tests.plans import COURSE, TREATMENT_CONSENT_VERSION, treatment_consent_signed
from tests.service_harness import ServiceHarness

CURRENT = TREATMENT_CONSENT_VERSION


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "intake", database="intake_consent_it") as harness:
        harness.client(SERVICE_TOKEN)  # harness.http: the suite's service account
        yield harness


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_consent_it") as harness:
        harness.client(SERVICE_TOKEN)  # harness.http: the suite's service account
        yield harness


@pytest.fixture(scope="module")
async def safety(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "safety", database="safety_consent_it") as harness:
        harness.client(SERVICE_TOKEN)  # harness.http: the suite's service account
        yield harness


# --- intake: the texts, signing, withdrawing ------------------------------------------------------


async def _registered(intake: ServiceHarness) -> uuid.UUID:
    response = await intake.http.post("/v1/patients", json=registration())
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["patient_id"])


def _sign(document: str = "ketamine_treatment", version: str = CURRENT) -> dict[str, str]:
    return {"document": document, "document_version": version}


async def test_the_current_texts_are_published_with_their_versions_and_an_old_one_stays_readable(
    intake: ServiceHarness,
) -> None:
    as_patient = intake.client(patient_token(uuid.uuid4()))
    listed = await as_patient.get("/v1/consent-documents")
    assert listed.status_code == 200, listed.text
    by_document = {d["document"]: d for d in listed.json()}
    assert set(by_document) == {"ketamine_treatment", "telehealth", "sms_contact"}
    treatment = by_document["ketamine_treatment"]
    assert (treatment["version"], treatment["current"]) == (CURRENT, True)
    for risk in ("Dissociation", "Blood pressure", "Bladder", "Misuse", "driving", "sitter", "alcohol"):
        assert risk.lower() in treatment["text"].lower(), f"the treatment consent names {risk}"

    one = await as_patient.get(f"/v1/consent-documents/ketamine_treatment/{CURRENT}")
    assert one.status_code == 200 and one.json()["text"] == treatment["text"]
    missing = await as_patient.get("/v1/consent-documents/ketamine_treatment/1999.1.0")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


async def test_signing_an_outdated_version_is_refused_with_the_current_one_and_records_nothing(
    intake: ServiceHarness,
) -> None:
    patient = await _registered(intake)
    as_patient = intake.client(patient_token(patient))

    refused = await as_patient.post(f"/v1/patients/{patient}/consents", json=_sign(version="2026.11.0"))
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert (problem["code"], problem["current_version"]) == ("version_not_current", CURRENT)
    assert CURRENT in problem["detail"]
    assert await intake.emitted("ConsentSigned", patient_id=patient) == []
    assert await intake.rows(select(patient_consents).where(patient_consents.c.patient_id == patient)) == []


async def test_the_patient_signs_once_and_withdraws_each_announced_keyed_by_the_patient(
    intake: ServiceHarness,
) -> None:
    patient = await _registered(intake)
    as_patient = intake.client(patient_token(patient, subject="app-account-7"))
    before = await as_patient.get(f"/v1/patients/{patient}/consents")
    assert {c["document"]: c["status"] for c in before.json()["consents"]} == {
        "ketamine_treatment": "never_signed",
        "telehealth": "never_signed",
        "sms_contact": "never_signed",
    }

    signed = await as_patient.post(f"/v1/patients/{patient}/consents", json=_sign())
    assert signed.status_code == 201, signed.text
    assert (signed.json()["status"], signed.json()["document_version"]) == ("signed", CURRENT)
    assert signed.json()["signed_version_is_current"] is True
    again = await as_patient.post(f"/v1/patients/{patient}/consents", json=_sign())
    assert (again.status_code, again.json()["signed_at"]) == (200, signed.json()["signed_at"]), "it stands already"
    [announced] = await intake.emitted("ConsentSigned", patient_id=patient)
    assert (announced["document"], announced["document_version"]) == ("ketamine_treatment", CURRENT)

    withdrawn = await as_patient.post(f"/v1/patients/{patient}/consents/ketamine_treatment/withdrawal")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn" and withdrawn.json()["withdrawn_at"] is not None
    [gone] = await intake.emitted("ConsentWithdrawn", patient_id=patient)
    assert (gone["document"], gone["document_version"]) == ("ketamine_treatment", CURRENT)
    twice = await as_patient.post(f"/v1/patients/{patient}/consents/ketamine_treatment/withdrawal")
    assert (twice.status_code, twice.json()["code"]) == (409, "rule_violation"), "nothing stands to withdraw"
    never = await as_patient.post(f"/v1/patients/{patient}/consents/telehealth/withdrawal")
    assert never.status_code == 409

    rows = await intake.rows(
        select(patient_consents.c.action, patient_consents.c.actor_role, patient_consents.c.actor)
        .where(patient_consents.c.patient_id == patient)
        .order_by(patient_consents.c.at)
    )
    assert [tuple(r) for r in rows] == [
        ("signed", "patient", "app-account-7"),
        ("withdrawn", "patient", "app-account-7"),
    ], "who signed: the token's subject"
    audit = intake.definition.audit
    audited = await intake.rows(
        select(audit.c.action, audit.c.outcome).where(audit.c.patient_id == patient, audit.c.resource == "consent")
    )
    assert {tuple(r) for r in audited} == {("sign", "allowed"), ("withdraw", "allowed")}


async def test_only_the_patient_signs_and_a_licensed_clinician_may_record_a_withdrawal(
    intake: ServiceHarness,
) -> None:
    patient = await _registered(intake)  # in Colorado
    as_patient = intake.client(patient_token(patient))
    for caller in (intake.http, intake.client(clinician_token("dr-co", ["CO"]))):
        refused = await caller.post(f"/v1/patients/{patient}/consents", json=_sign())
        assert refused.status_code == 403, refused.text
    someone_else = intake.client(patient_token(uuid.uuid4()))
    assert (await someone_else.post(f"/v1/patients/{patient}/consents", json=_sign())).status_code == 403
    assert (await as_patient.post(f"/v1/patients/{patient}/consents", json=_sign())).status_code == 201

    elsewhere = intake.client(clinician_token("dr-ny", ["NY"]))
    assert (await elsewhere.post(f"/v1/patients/{patient}/consents/ketamine_treatment/withdrawal")).status_code == 403
    assert (await intake.http.post(f"/v1/patients/{patient}/consents/ketamine_treatment/withdrawal")).status_code == 403
    await join_care_team(intake, patient, "dr-co")  # ADR 0015: licensed and on the patient's care team
    told = intake.client(clinician_token("dr-co", ["CO"]))
    recorded = await told.post(f"/v1/patients/{patient}/consents/ketamine_treatment/withdrawal")
    assert recorded.status_code == 200, recorded.text
    [row] = await intake.rows(
        select(patient_consents.c.actor_role, patient_consents.c.actor).where(
            patient_consents.c.patient_id == patient, patient_consents.c.action == "withdrawn"
        )
    )
    assert tuple(row) == ("clinician", "dr-co"), "recorded in the clinician's own name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**_sign(), "signed_by": "someone"}, "signed_by"),
        ({"document": "everything", "document_version": CURRENT}, "document"),
        ({"document": "ketamine_treatment", "document_version": "x" * 41}, "document_version"),
        ({"document": "ketamine_treatment", "document_version": "2026.12.0; drop"}, "document_version"),
        ({"document": "ketamine_treatment"}, "document_version"),
        ({"document": ["ketamine_treatment"], "document_version": CURRENT}, "document"),
    ],
)
async def test_a_hostile_body_gets_a_422_naming_the_field_and_records_nothing(
    intake: ServiceHarness, body: dict[str, Any], field: str
) -> None:
    patient = await _registered(intake)
    as_patient = intake.client(patient_token(patient))
    response = await as_patient.post(f"/v1/patients/{patient}/consents", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert any(e["field"].endswith(field) for e in response.json()["errors"]), response.json()["errors"]
    assert await intake.rows(select(patient_consents).where(patient_consents.c.patient_id == patient)) == []


async def test_malformed_json_an_unknown_document_in_the_path_and_an_unknown_patient_are_clear_4xx(
    intake: ServiceHarness,
) -> None:
    patient = await _registered(intake)
    as_patient = intake.client(patient_token(patient))
    broken = await as_patient.post(
        f"/v1/patients/{patient}/consents", content=b'{"document": ', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_request"
    unknown = await as_patient.post(f"/v1/patients/{patient}/consents/everything/withdrawal")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"].endswith("document")
    bad_version = await as_patient.get("/v1/consent-documents/ketamine_treatment/..%2F..%2Fetc")
    assert bad_version.status_code in (404, 422)
    nobody = uuid.uuid4()
    absent = await intake.client(patient_token(nobody)).post(f"/v1/patients/{nobody}/consents", json=_sign())
    assert absent.status_code == 404


# --- dosing: no session without consent; a withdrawal holds the plan -----------------------------------


async def _active_plan(dosing: ServiceHarness, patient: uuid.UUID) -> str:
    created = await dosing.http.post("/v1/plans", json={"patient_id": str(patient), "clinician_id": "dr-a", **COURSE})
    assert created.status_code == 201, created.text
    plan_id: str = created.json()["plan_id"]
    activated = await dosing.http.post(f"/v1/plans/{plan_id}/activate", json={"clinician_id": "dr-a"})
    assert activated.status_code == 200, activated.text
    return plan_id


async def _ready_session(dosing: ServiceHarness, patient: uuid.UUID) -> uuid.UUID:
    """A session with a good pre-dose reading taken for it."""
    session = uuid.uuid4()
    reading = VitalsRecorded(
        reading_id=uuid.uuid4(),
        systolic=120,
        diastolic=80,
        measured_at=datetime.now(UTC) - timedelta(minutes=5),
        context="pre_dose",
        appointment_id=session,
        within_limits=True,
        rule_version="2026.12.0",
    )
    await dosing.deliver(reading, patient_id=patient, producer="safety")
    return session


async def _authorise(dosing: ServiceHarness, patient: uuid.UUID, session: uuid.UUID) -> dict[str, Any]:
    response = await dosing.http.post(f"/v1/dosing-sessions/{session}/authorise", json={"patient_id": str(patient)})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _status(dosing: ServiceHarness, plan_id: str) -> str:
    [status] = await dosing.rows(select(treatment_plans.c.status).where(treatment_plans.c.plan_id == plan_id))
    return str(status[0])


def _withdrawn(document: ConsentDocument = ConsentDocument.ketamine_treatment) -> ConsentWithdrawn:
    return ConsentWithdrawn(document=document, document_version=CURRENT, withdrawn_at=datetime.now(UTC))


async def test_a_session_without_a_signed_treatment_consent_is_refused_with_consent_missing(
    dosing: ServiceHarness,
) -> None:
    patient = uuid.uuid4()
    await _active_plan(dosing, patient)
    session = await _ready_session(dosing, patient)

    refused = await _authorise(dosing, patient, session)
    assert (refused["authorised"], refused["reason"]) == (False, "consent_missing")
    [announced] = await dosing.emitted("DosingSessionRefused", patient_id=patient)
    assert announced["reason"] == "consent_missing"
    telehealth = ConsentSigned(
        document=ConsentDocument.telehealth, document_version=CURRENT, signed_at=datetime.now(UTC)
    )
    await dosing.deliver(telehealth, patient_id=patient, producer="intake")
    assert (await _authorise(dosing, patient, session))["reason"] == "consent_missing", "only the treatment consent"

    await dosing.deliver(treatment_consent_signed(), patient_id=patient, producer="intake")
    granted = await _authorise(dosing, patient, session)
    assert (granted["authorised"], granted["dose_mg"]) == (True, 100)


async def test_a_withdrawal_holds_the_plan_until_the_patient_signs_again_and_a_clinician_resumes(
    dosing: ServiceHarness,
) -> None:
    patient = uuid.uuid4()
    plan_id = await _active_plan(dosing, patient)
    await dosing.deliver(treatment_consent_signed(), patient_id=patient, producer="intake")
    first = await _ready_session(dosing, patient)
    assert (await _authorise(dosing, patient, first))["authorised"]

    withdrawal = await dosing.deliver(_withdrawn(), patient_id=patient, producer="intake")
    assert await _status(dosing, plan_id) == "paused"
    [paused] = await dosing.emitted("TreatmentPlanPaused", patient_id=patient)
    assert paused["reason"] == "consent_withdrawn" and paused["hold_ids"] == [str(withdrawal.event_id)]
    assert (await _authorise(dosing, patient, first))["reason"] == "consent_missing", "the earlier grant lapses"
    second = await _ready_session(dosing, patient)
    assert (await _authorise(dosing, patient, second))["reason"] == "consent_missing"
    await dosing.deliver_envelope(withdrawal, expect=Outcome.duplicate)

    # Safety's review of the withdrawal requests its hold (as consent.py does); the patient signs again.
    hold_id, review_id = uuid.uuid4(), uuid.uuid4()
    requested = TreatmentHoldRequested(
        hold_id=hold_id, review_id=review_id, reason="consent_withdrawn", rule_version="t"
    )
    await dosing.deliver(requested, patient_id=patient, producer="safety")
    await dosing.deliver(treatment_consent_signed(), patient_id=patient, producer="intake")
    assert await _status(dosing, plan_id) == "paused", "a signature alone does not resume: the review holds it"
    assert (await _authorise(dosing, patient, second))["reason"] == "plan_paused"

    released = TreatmentHoldReleased(
        hold_id=hold_id, review_id=review_id, decision=ReviewDecision.resume, decided_by="dr-lee"
    )
    await dosing.deliver(released, patient_id=patient, producer="safety")
    assert await _status(dosing, plan_id) == "active"
    assert (await _authorise(dosing, patient, second))["authorised"]


async def test_a_late_older_consent_act_never_undoes_a_newer_one(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    await _active_plan(dosing, patient)
    now = datetime.now(UTC)
    await dosing.deliver(_withdrawn(), patient_id=patient, producer="intake")
    await dosing.deliver(treatment_consent_signed(now - timedelta(hours=1)), patient_id=patient, producer="intake")
    session = await _ready_session(dosing, patient)
    assert (await _authorise(dosing, patient, session))["reason"] == "consent_missing"


async def test_withdrawing_telehealth_or_text_message_consent_does_not_touch_dosing(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    plan_id = await _active_plan(dosing, patient)
    await dosing.deliver(treatment_consent_signed(), patient_id=patient, producer="intake")
    for document in (ConsentDocument.telehealth, ConsentDocument.sms_contact):
        await dosing.deliver(_withdrawn(document), patient_id=patient, producer="intake")
    assert await _status(dosing, plan_id) == "active"
    assert (await _authorise(dosing, patient, await _ready_session(dosing, patient)))["authorised"]


# --- safety: a review with a hold ----------------------------------------------------------------------------


async def test_a_withdrawn_treatment_consent_opens_a_high_priority_review_with_a_hold_once(
    safety: ServiceHarness,
) -> None:
    patient = uuid.uuid4()
    withdrawal = await safety.deliver(_withdrawn(), patient_id=patient, producer="intake")
    [opened] = await safety.emitted("ClinicianReviewOpened", patient_id=patient)
    assert (opened["reason"], opened["priority"], opened["triggers"]) == (
        "consent_withdrawn",
        "high",
        ["consent_withdrawn"],
    )
    [hold] = await safety.emitted("TreatmentHoldRequested", patient_id=patient)
    assert (hold["review_id"], hold["reason"]) == (opened["review_id"], "consent_withdrawn")
    await safety.deliver_envelope(withdrawal, expect=Outcome.duplicate)
    reviews = await safety.rows(select(clinician_reviews.c.review_id).where(clinician_reviews.c.patient_id == patient))
    assert len(reviews) == 1
    holds = await safety.rows(select(safety_holds.c.hold_id).where(safety_holds.c.patient_id == patient))
    assert len(holds) == 1


async def test_other_documents_open_no_review(safety: ServiceHarness) -> None:
    patient = uuid.uuid4()
    for document in (ConsentDocument.telehealth, ConsentDocument.sms_contact):
        await safety.deliver(_withdrawn(document), patient_id=patient, producer="intake")
    assert await safety.emitted("ClinicianReviewOpened", patient_id=patient) == []


# --- the other declared consumers skip the new events ----------------------------------------------------------


@pytest.mark.parametrize("service", ["scheduling", "billing"])
async def test_scheduling_and_billing_skip_consent_events(stack: Stack, service: str) -> None:
    async with ServiceHarness.running(stack, service, database=f"{service}_consent_it") as harness:
        patient = uuid.uuid4()
        await harness.deliver(treatment_consent_signed(), patient_id=patient, producer="intake", expect=Outcome.skipped)
        await harness.deliver(_withdrawn(), patient_id=patient, producer="intake", expect=Outcome.skipped)
