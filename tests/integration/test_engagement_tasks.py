"""Engagement's tasks from a live engagement service (its handlers and routes on real PostgreSQL, no Kafka):
a missed check-in becomes one call for the prescriber however often it is delivered; an escalation becomes a
task for whom it names, handed on as the review climbs and closed when it is acknowledged; people close a task
with an outcome of its kind once, and see and work only the tasks that are theirs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from carecoord_contracts.billing import ClaimDenied
from carecoord_contracts.common import AssignmentBasis, ConsentDocument, ReviewPriority
from carecoord_contracts.intake import ConsentSigned, ConsentWithdrawn, PatientRegistered
from carecoord_contracts.safety import CheckInMissed, ClinicianReviewAcknowledged, ClinicianReviewAssigned
from carecoord_contracts.scheduling import CareTeamChanged, ReviewAppointmentUnavailable
from carecoord_devstack.stack import Stack
from carecoord_engagement import notifications, queries
from carecoord_engagement.domain import Kind, Owner, OwnerRole
from carecoord_engagement.models import notify
from carecoord_engagement.tasks import open_task
from carecoord_shared.messaging.consumer import Outcome
from tests.auth import SERVICE_TOKEN, clinician_token, operator_token, patient_token
from tests.service_harness import ServiceHarness

STATE = "CO"


@pytest.fixture(scope="module")
async def engagement(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "engagement", database="engagement_tasks_it") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


def _staff(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _patient(engagement: ServiceHarness, prescriber: str | None = None) -> uuid.UUID:
    patient_id = uuid.uuid4()
    await engagement.deliver(
        PatientRegistered(state_of_residence=STATE, time_zone="America/Denver"),
        patient_id=patient_id,
        producer="intake",
    )
    if prescriber:
        team = CareTeamChanged(prescriber_id=prescriber, reason="initial_evaluation_booked")
        await engagement.deliver(team, patient_id=patient_id, producer="scheduling")
    return patient_id


async def _messages(engagement: ServiceHarness, recipient: str) -> list[dict[str, Any]]:
    """The notifications queued for ``recipient`` (a patient id or a staff id), oldest first."""
    async with engagement.uow.sessions() as session:
        rows = await session.execute(
            select(notify.notifications)
            .where(notify.notifications.c.recipient_id == recipient)
            .order_by(notify.notifications.c.created_at, notify.notifications.c.channel)
        )
        return [dict(r) for r in rows.mappings()]


async def _tasks(engagement: ServiceHarness, **params: Any) -> list[dict[str, Any]]:
    response = await engagement.http.get("/v1/tasks", params={"state": ["open", "closed"], **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _assigned(
    review_id: uuid.UUID, assignee: str | None, basis: AssignmentBasis, level: int
) -> ClinicianReviewAssigned:
    return ClinicianReviewAssigned(
        review_id=review_id,
        assignee_id=assignee,
        basis=basis,
        escalation_level=level,
        priority=ReviewPriority.urgent,
        due_at=datetime.now(UTC) - timedelta(minutes=5),
    )


async def test_a_missed_check_in_is_one_call_for_the_prescriber_however_often_it_arrives(
    engagement: ServiceHarness,
) -> None:
    prescriber = _staff("dr-prescriber")
    patient_id = await _patient(engagement, prescriber)
    missed = CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4)
    envelope = await engagement.deliver(missed, patient_id=patient_id, producer="safety")
    assert await engagement.deliver_envelope(envelope, expect=None) is Outcome.duplicate

    [task] = await _tasks(engagement, patient_id=str(patient_id))
    assert (task["kind"], task["owner_id"], task["owner_role"], task["state"], task["subject_id"]) == (
        "call_patient",
        prescriber,
        "clinician",
        "open",
        str(missed.appointment_id),
    )
    due = datetime.fromisoformat(task["due_at"]) - envelope.occurred_at
    assert due == timedelta(minutes=60)
    # And one message to the patient: safety outreach by email (no SMS consent signed).
    [message] = await _messages(engagement, str(patient_id))
    assert (message["template"], message["channel"], message["state"], message["cause_event_id"]) == (
        "safety_outreach",
        "email",
        "pending",
        envelope.event_id,
    )


async def test_a_patient_who_agreed_to_texts_is_also_texted_until_they_withdraw(engagement: ServiceHarness) -> None:
    patient_id = await _patient(engagement)
    signed = ConsentSigned(
        document=ConsentDocument.sms_contact, document_version="2026.12.0", signed_at=datetime.now(UTC)
    )
    await engagement.deliver(signed, patient_id=patient_id, producer="intake")
    await engagement.deliver(
        CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
    )
    assert sorted(m["channel"] for m in await _messages(engagement, str(patient_id))) == ["email", "sms"]

    withdrawn = ConsentWithdrawn(
        document=ConsentDocument.sms_contact,
        document_version="2026.12.0",
        withdrawn_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    await engagement.deliver(withdrawn, patient_id=patient_id, producer="intake")
    await engagement.deliver(
        CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
    )
    assert sorted(m["channel"] for m in await _messages(engagement, str(patient_id))) == ["email", "email", "sms"]


async def test_a_missed_check_in_before_the_care_team_is_known_is_in_the_clinicians_queue(
    engagement: ServiceHarness,
) -> None:
    patient_id = await _patient(engagement)
    await engagement.deliver(
        CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
    )
    [task] = await _tasks(engagement, patient_id=str(patient_id))
    assert (task["owner_id"], task["owner_role"]) == (None, "clinician")


async def test_an_escalation_is_a_task_for_whom_it_names_handed_on_as_it_climbs_and_closed_when_acknowledged(
    engagement: ServiceHarness,
) -> None:
    prescriber, on_call, lead = _staff("dr-prescriber"), _staff("dr-on-call"), _staff("dr-lead")
    patient_id = await _patient(engagement, prescriber)
    review_id = uuid.uuid4()
    await engagement.deliver(
        _assigned(review_id, prescriber, AssignmentBasis.prescriber, 0), patient_id=patient_id, producer="safety"
    )
    assert await _tasks(engagement, patient_id=str(patient_id)) == [], "the prescriber's own review: no task"
    assert await _messages(engagement, prescriber) == [], "and no page"

    await engagement.deliver(
        _assigned(review_id, on_call, AssignmentBasis.on_call, 1), patient_id=patient_id, producer="safety"
    )
    [first] = await _tasks(engagement, patient_id=str(patient_id))
    assert (first["kind"], first["owner_id"], first["reason"], first["state"]) == (
        "escalated_review",
        on_call,
        "on_call:1",
        "open",
    )

    second = await engagement.deliver(
        _assigned(review_id, lead, AssignmentBasis.clinical_lead, 2), patient_id=patient_id, producer="safety"
    )
    assert await engagement.deliver_envelope(second, expect=None) is Outcome.duplicate
    # Each was paged once, by email and SMS.
    for paged in (on_call, lead):
        assert sorted((m["template"], m["channel"]) for m in await _messages(engagement, paged)) == [
            ("review_escalated", "email"),
            ("review_escalated", "sms"),
        ]
    by_owner = {t["owner_id"]: t for t in await _tasks(engagement, patient_id=str(patient_id))}
    assert (by_owner[on_call]["state"], by_owner[on_call]["outcome"]) == ("closed", "superseded")
    assert (by_owner[lead]["state"], by_owner[lead]["reason"]) == ("open", "clinical_lead:2")

    ack = ClinicianReviewAcknowledged(review_id=review_id, acknowledged_by=lead)
    await engagement.deliver(ack, patient_id=patient_id, producer="safety")
    [closed] = [t for t in await _tasks(engagement, patient_id=str(patient_id)) if t["owner_id"] == lead]
    assert (closed["state"], closed["outcome"], closed["closed_by"]) == ("closed", "review_acknowledged", lead)


async def test_a_clinician_closes_their_task_once_with_an_outcome_of_its_kind(engagement: ServiceHarness) -> None:
    prescriber = _staff("dr-prescriber")
    patient_id = await _patient(engagement, prescriber)
    await engagement.deliver(
        CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
    )
    [task] = await _tasks(engagement, patient_id=str(patient_id))
    as_prescriber = engagement.client(clinician_token(prescriber, [STATE]))
    path = f"/v1/tasks/{task['task_id']}/close"

    wrong = await as_prescriber.post(path, json={"outcome": "claim_resubmitted"})
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["errors"][0]["field"].endswith("outcome"), wrong.text

    closed = await as_prescriber.post(path, json={"outcome": "reached_patient", "note": "spoke at 10:05"})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["state"], closed.json()["outcome"], closed.json()["closed_by"]) == (
        "closed",
        "reached_patient",
        prescriber,
    )
    again = await as_prescriber.post(path, json={"outcome": "left_message"})
    assert again.status_code == 409, again.text
    [kept] = await _tasks(engagement, patient_id=str(patient_id))
    assert kept["outcome"] == "reached_patient"


async def test_a_clinician_reaches_only_tasks_that_are_theirs(engagement: ServiceHarness) -> None:
    prescriber, stranger = _staff("dr-prescriber"), _staff("dr-stranger")
    patient_id = await _patient(engagement, prescriber)
    await engagement.deliver(
        CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
    )
    [task] = await _tasks(engagement, patient_id=str(patient_id))
    path = f"/v1/tasks/{task['task_id']}"

    as_stranger = engagement.client(clinician_token(stranger, [STATE]))
    assert (await as_stranger.get(path)).status_code == 403
    refused = await as_stranger.post(f"{path}/close", json={"outcome": "reached_patient"})
    assert refused.status_code == 403, refused.text
    # Asking for the patient's tasks is a patient check (ADR 0015): licensed, but related to them by nothing.
    listed = await as_stranger.get("/v1/tasks", params={"patient_id": str(patient_id)})
    assert listed.status_code == 403, listed.text
    assert task["task_id"] not in [t["task_id"] for t in (await as_stranger.get("/v1/tasks")).json()["items"]]

    as_prescriber = engagement.client(clinician_token(prescriber, [STATE]))
    assert (await as_prescriber.get(path)).status_code == 200
    own = await as_prescriber.get("/v1/tasks", params={"owner": "me"})
    assert [t["task_id"] for t in own.json()["items"]] == [task["task_id"]]
    elsewhere = engagement.client(clinician_token(prescriber, ["NY"]))
    assert (await elsewhere.get(path)).status_code == 403, "not licensed in the patient's state"


async def test_operators_work_their_queue_and_route_any_task_but_close_no_clinical_one(
    engagement: ServiceHarness,
) -> None:
    prescriber, colleague = _staff("dr-prescriber"), _staff("dr-colleague")
    patient_id = await _patient(engagement, prescriber)
    review_id = uuid.uuid4()
    unavailable = ReviewAppointmentUnavailable(
        review_id=review_id, due_at=datetime.now(UTC) + timedelta(hours=4), reason="no_licensed_clinician_free"
    )
    await engagement.deliver(unavailable, patient_id=patient_id, producer="scheduling")
    await engagement.deliver(
        CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
    )
    by_kind = {t["kind"]: t for t in await _tasks(engagement, patient_id=str(patient_id))}
    assert by_kind["arrange_review"]["owner_role"] == "operator"
    operator = engagement.client(operator_token(_staff("operator")))

    queue = await operator.get("/v1/tasks", params={"patient_id": str(patient_id)})
    assert [t["kind"] for t in queue.json()["items"]] == ["arrange_review"]
    call = by_kind["call_patient"]["task_id"]
    assert (await operator.post(f"/v1/tasks/{call}/close", json={"outcome": "reached_patient"})).status_code == 403

    handed = await operator.put(f"/v1/tasks/{call}/owner", json={"owner_id": colleague, "owner_role": "clinician"})
    assert handed.status_code == 200 and handed.json()["owner_id"] == colleague, handed.text
    booked = await operator.post(
        f"/v1/tasks/{by_kind['arrange_review']['task_id']}/close", json={"outcome": "review_booked"}
    )
    assert booked.status_code == 200 and booked.json()["closed_by"].startswith("operator"), booked.text


async def test_a_denied_claim_is_the_billing_offices_and_patients_have_no_task_route(
    engagement: ServiceHarness,
) -> None:
    patient_id = await _patient(engagement)
    await engagement.deliver(
        ClaimDenied(claim_id=uuid.uuid4(), reason_code="CO50"), patient_id=patient_id, producer="billing"
    )
    [task] = await _tasks(engagement, patient_id=str(patient_id), kind="denied_claim")
    assert (task["owner_role"], task["reason"]) == ("billing", "CO50")
    as_patient = engagement.client(patient_token(patient_id))
    assert (await as_patient.get(f"/v1/tasks/{task['task_id']}")).status_code == 403


async def test_a_page_that_cannot_be_delivered_becomes_an_operators_task_once(engagement: ServiceHarness) -> None:
    prescriber, on_call = _staff("dr-prescriber"), _staff("dr-on-call")
    patient_id = await _patient(engagement, prescriber)
    await engagement.deliver(
        _assigned(uuid.uuid4(), on_call, AssignmentBasis.on_call, 1), patient_id=patient_id, producer="safety"
    )
    [escalated] = await _tasks(engagement, patient_id=str(patient_id))
    table = notify.notifications
    # As the sender finishes a message for good (attempts used): in the transaction that marks it failed.
    for _ in range(2):  # a second call for the same message (a retried finish) opens nothing more
        async with engagement.uow.sessions.begin() as session:
            [row] = await session.execute(
                update(table)
                .where(table.c.recipient_id == on_call, table.c.channel == "sms")
                .values(state="failed", last_error="no_contact")
                .returning(*table.c)
            )
            await notifications.delivery_failed(session, row)
    failed = [t for t in await _tasks(engagement, patient_id=str(patient_id)) if t["kind"] == "notification_failed"]
    assert [(t["owner_role"], t["subject_id"], t["reason"], t["overdue"]) for t in failed] == [
        ("operator", escalated["task_id"], "review_escalated:sms:no_contact", True)
    ]


async def test_a_clinician_is_related_to_a_patient_through_a_task_they_own_or_one_waiting_in_their_queue(
    engagement: ServiceHarness,
) -> None:
    prescriber, stranger = _staff("dr-prescriber"), _staff("dr-stranger")
    owned, queued = await _patient(engagement, prescriber), await _patient(engagement)
    for patient_id in (owned, queued):
        await engagement.deliver(
            CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4), patient_id=patient_id, producer="safety"
        )
    async with engagement.uow.sessions() as session:
        relation = [
            await queries.task_relation(session, patient, clinician, STATE)
            for patient, clinician in ((owned, prescriber), (owned, stranger), (queued, stranger))
        ]
    assert relation == ["task_owner", None, "task_queue"]
    [task] = await _tasks(engagement, patient_id=str(owned))
    closed = await engagement.http.post(f"/v1/tasks/{task['task_id']}/close", json={"outcome": "reached_patient"})
    assert closed.status_code == 200, closed.text
    async with engagement.uow.sessions() as session:
        assert await queries.task_relation(session, owned, prescriber, STATE) is None, "a closed task relates nobody"


async def test_a_cause_opens_its_task_of_a_kind_once_and_a_second_try_says_so(engagement: ServiceHarness) -> None:
    cause, patient = uuid.uuid4(), uuid.uuid4()
    due = datetime.now(UTC) + timedelta(hours=1)
    opened = []
    for _ in range(2):
        async with engagement.uow.transaction() as tx:
            opened.append(
                await open_task(
                    tx.session,
                    patient_id=patient,
                    kind=Kind.arrange_review,
                    cause_event_id=cause,
                    subject_id=cause,
                    owner=Owner(None, OwnerRole.operator),
                    due_at=due,
                )
            )
    assert isinstance(opened[0], uuid.UUID) and opened[1] is None
