"""Engagement end to end, every service its own process and real mail into the local mailbox (a Maildir):

1. A dosing session authorised by dosing (active plan, signed consent, pre-dose reading; the booking published
   as scheduling would), no check-in, the clock moved past the
   check-in window (safety's timer set into the past): safety's CheckInMissed becomes exactly one call_patient
   task and exactly one mail to the patient, with no clinical detail, although engagement is SIGKILLed once
   after committing the task (before its offset) and once more after claiming the mail (before sending it),
   and the same CheckInMissed record is delivered again.
2. An urgent review nobody acknowledges: at its due time the state's on-call clinician is paged, then, still
   unacknowledged, the state's clinical lead: each once, by mail and by text (the email-to-SMS gateway).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from carecoord_contracts import Envelope
from carecoord_contracts.common import AppointmentType
from carecoord_contracts.patient_app import MoodCheckInSubmitted
from carecoord_contracts.scheduling import AppointmentBooked
from carecoord_devstack.stack import ServiceProcess, Stack
from tests.auth import api_client, operator_token
from tests.conftest import eventually
from tests.e2e import intake_journeys, journeys
from tests.kafka_io import events_for, group_caught_up, publish_envelope, publish_event

pytestmark = pytest.mark.e2e

# Words that would tell a reader of the message something about the patient's care.
CLINICAL = ("ketamine", "dose", "mg", "check-in", "missed", "suicid", "phq", "mood", "urgent", "symptom")


PENDING_TIMER = "SELECT 1 FROM timers WHERE subject_id = $1 AND kind = $2 AND fired_at IS NULL"


async def _fetch(stack: Stack, service: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.postgres.dsn(service, service))
    try:
        return await conn.fetch(query, *args)  # type: ignore[no-any-return]
    finally:
        await conn.close()


async def _execute(stack: Stack, service: str, query: str, *args: Any) -> str:
    conn = await asyncpg.connect(stack.postgres.dsn(service, service))
    try:
        return await conn.execute(query, *args)  # type: ignore[no-any-return]
    finally:
        await conn.close()


def _mail_to(stack: Stack, address: str) -> list[Message]:
    return [m for m in stack.mailbox.messages() if address in (m.get("X-RcptTo") or "")]


def _text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    body = payload.decode() if isinstance(payload, bytes) else str(message.get_payload())
    return f"{message.get('Subject', '')}\n{body}"


async def _patient(stack: Stack, state: str, address: dict[str, str], zone: str) -> tuple[uuid.UUID, str, str]:
    """A patient registered through intake with their own email and phone, once engagement knows them."""
    email = f"patient-{uuid.uuid4().hex[:10]}@example.org"
    phone = f"+1 303 555 {uuid.uuid4().int % 10000:04d}"
    body = intake_journeys.registration(
        email=email, phone=phone, address=address, state_of_residence=state, time_zone=zone
    )
    response = await intake_journeys.register(stack, body)
    assert response.status_code == 201, response.text
    patient_id = uuid.UUID(response.json()["patient_id"])
    for service in ("engagement", "safety"):
        table = "patients" if service == "engagement" else "patient_jurisdictions"
        await eventually(
            lambda service=service, table=table: _fetch(
                stack, service, f"SELECT 1 FROM {table} WHERE patient_id = $1", patient_id
            ),
            what=f"{service} learnt the patient",
        )
    return patient_id, email, body["first_name"]


async def _tasks(stack: Stack, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    async with api_client(timeout=10) as http:
        response = await http.get(
            journeys.url(stack, "engagement", "/v1/tasks"),
            params={"patient_id": str(patient_id), "state": ["open", "closed"]},
        )
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def _restart(service: ServiceProcess, **env: str) -> None:
    service.stop()
    service.start(**env)
    await asyncio.to_thread(service.wait_ready)


async def _killed(service: ServiceProcess) -> None:
    assert service.proc is not None
    await eventually(lambda: service.proc.poll() is not None, timeout=60, what=f"{service.name} at its failure point")
    assert service.proc.returncode == -9, f"{service.name} should have died of SIGKILL, got {service.proc.returncode}"


@pytest_asyncio.fixture
async def short_leases(services: Stack) -> AsyncIterator[ServiceProcess]:
    """Engagement with a short sending lease (a message a killed sender held is tried again in seconds);
    put back as it was afterwards."""
    engagement = services.services["engagement"]
    engagement.env["CARECOORD_NOTIFY_LEASE_S"] = "3"
    try:
        yield engagement
    finally:
        engagement.env.pop("CARECOORD_NOTIFY_LEASE_S", None)
        await _restart(engagement)


async def test_a_missed_check_in_is_one_task_and_one_mail_through_redelivery_and_two_kills(
    services: Stack, short_leases: ServiceProcess
) -> None:
    engagement = short_leases
    bootstrap = services.kafka.bootstrap
    address = {"line1": "1 Main St", "city": "Denver", "state": "CO", "postal_code": "80202"}
    patient_id, email, first_name = await _patient(services, "CO", address, "America/Denver")
    # Dies after the task and its mail are committed, before the offset; then (restarted) after claiming the mail.
    await _restart(engagement, CARECOORD_CRASH_AT="consumer.after_commit_before_ack@CheckInMissed")

    appointment = uuid.uuid4()
    starts_at = datetime.now(UTC) - timedelta(hours=5)
    booked = AppointmentBooked(
        appointment_id=appointment,
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-engagement-e2e",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
    )
    await publish_event(bootstrap, "scheduling.appointments", booked, patient_id, producer="scheduling")
    # The session authorised by dosing itself: an active plan, the signed treatment consent, a pre-dose reading.
    await journeys.active_plan(services, patient_id)
    await journeys.pre_dose_reading(services, patient_id, appointment)
    granted = await journeys.authorise(services, patient_id, appointment)
    assert granted["authorised"], granted
    checkin_timer = "SELECT timer_id FROM timers WHERE subject_id = $1 AND kind = 'checkin_missed' AND fired_at IS NULL"
    await eventually(lambda: _fetch(services, "safety", checkin_timer, appointment), what="the check-in timer set")
    # Four hours on, and no check-in.
    await _execute(
        services,
        "safety",
        "UPDATE timers SET due_at = now() - interval '1 second' WHERE subject_id = $1 AND kind = 'checkin_missed'",
        appointment,
    )
    await eventually(
        lambda: events_for(bootstrap, "safety.reports", patient_id, "CheckInMissed"), what="safety saw the miss"
    )

    await _killed(engagement)
    assert len(await _fetch(services, "engagement", "SELECT 1 FROM tasks WHERE subject_id = $1", appointment)) == 1
    # Not waited for: the sender reaches its point (the committed mail is due) before readiness may answer.
    engagement.start(CARECOORD_CRASH_AT="notify.after_claim_before_send@safety_outreach")
    await _killed(engagement)
    assert _mail_to(services, email) == [], "killed after the claim, before the send"
    await _restart(engagement)

    [mail] = await eventually(lambda: _mail_to(services, email), timeout=60, what="the mail, after its lease ran out")
    # The same CheckInMissed record once more, as Kafka may redeliver it.
    [missed] = await events_for(bootstrap, "safety.reports", patient_id, "CheckInMissed")
    await publish_envelope(bootstrap, "safety.reports", Envelope.model_validate(missed))
    await eventually(
        lambda: group_caught_up(bootstrap, "carecoord.engagement", "safety.reports"), what="engagement caught up"
    )

    # (Safety may go on to open a review of its own later; that is not this task.)
    [task] = [t for t in await _tasks(services, patient_id) if t["kind"] == "call_patient"]
    assert (task["state"], task["subject_id"]) == ("open", str(appointment))
    assert [m["Message-ID"] for m in _mail_to(services, email)] == [mail["Message-ID"]]
    rows = await _fetch(
        services, "engagement", "SELECT state, attempts FROM notifications WHERE recipient_id = $1", str(patient_id)
    )
    # The only message there is, sent: nothing is left to send again (the redelivery queued nothing).
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 2)], "claimed twice, sent once"
    text = _text(mail).lower()
    assert first_name.lower() not in text and not [w for w in CLINICAL if w in text], text


async def _shift(http: Any, stack: Stack, state: str, role: str, clinician_id: str) -> str:
    now = datetime.now(UTC)
    body = {
        "state": state,
        "role": role,
        "clinician_id": clinician_id,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
    }
    response = await http.post(journeys.url(stack, "safety", "/v1/rota/shifts"), json=body)
    assert response.status_code == 201, response.text
    return response.json()["shift_id"]  # type: ignore[no-any-return]


async def test_an_unacknowledged_urgent_review_pages_on_call_then_the_clinical_lead_each_once(services: Stack) -> None:
    state = "WA"
    address = {"line1": "400 Pine St", "city": "Seattle", "state": state, "postal_code": "98101"}
    patient_id, _email, _name = await _patient(services, state, address, "America/Los_Angeles")
    on_call, lead = f"dr-on-call-{uuid.uuid4().hex[:6]}", f"dr-lead-{uuid.uuid4().hex[:6]}"
    contacts = {on_call: ("on-call", "+12065550101"), lead: ("lead", "+12065550102")}
    operator = api_client(operator_token(f"operator-{uuid.uuid4().hex[:6]}"), timeout=10)
    shifts = []
    async with operator as http:
        for staff_id, (name, phone) in contacts.items():
            email = f"{name}-{staff_id}@clinic.example.org"
            put = await http.put(
                journeys.url(services, "engagement", f"/v1/staff/{staff_id}/contact"),
                json={"email": email, "phone": phone},
            )
            assert put.status_code == 200, put.text
        shifts = [
            await _shift(http, services, state, "on_call", on_call),
            await _shift(http, services, state, "clinical_lead", lead),
        ]
        try:
            items = [1, 1, 2, 1, 0, 1, 1, 0, 1]  # PHQ-9 item 9 = 1: an urgent review
            checkin = MoodCheckInSubmitted(
                checkin_id=uuid.uuid4(), phq9_items=items, answered_at=datetime.now(UTC).isoformat()
            )
            await publish_event(services.kafka.bootstrap, "patient-app.reports", checkin, patient_id)
            [review] = await eventually(lambda: journeys.reviews(services, patient_id), what="the urgent review")
            review_id = uuid.UUID(review["review_id"])

            for kind, paged in (("review_overdue", on_call), ("lead_escalation", lead)):
                await eventually(
                    lambda kind=kind: _fetch(services, "safety", PENDING_TIMER, review_id, kind), what=kind
                )
                await _execute(
                    services,
                    "safety",
                    "UPDATE timers SET due_at = now() - interval '1 second' WHERE subject_id = $1 AND kind = $2",
                    review_id,
                    kind,
                )
                name = contacts[paged][0]
                await eventually(
                    lambda paged=paged, name=name: (
                        len(_mail_to(services, f"{name}-{paged}@clinic.example.org")) == 1
                        and len(_mail_to(services, f"{contacts[paged][1].lstrip('+')}@sms.localhost")) == 1
                    ),
                    timeout=30,
                    what=f"{paged} paged by mail and text",
                )
            for paged, (name, phone) in contacts.items():
                # Every page queued for them is sent (none left to go out again): one by mail, one by text.
                rows = await _fetch(
                    services, "engagement", "SELECT channel, state FROM notifications WHERE recipient_id = $1", paged
                )
                assert sorted((r["channel"], r["state"]) for r in rows) == [("email", "sent"), ("sms", "sent")]
                mails = _mail_to(services, f"{name}-{paged}@clinic.example.org")
                texts = _mail_to(services, f"{phone.lstrip('+')}@sms.localhost")
                assert (len(mails), len(texts)) == (1, 1), paged
                assert not [w for w in CLINICAL if w in _text(mails[0]).lower()], _text(mails[0])
            tasks = {t["owner_id"]: t for t in await _tasks(services, patient_id) if t["kind"] == "escalated_review"}
            assert (tasks[on_call]["state"], tasks[on_call]["outcome"]) == ("closed", "superseded")
            assert (tasks[lead]["state"], tasks[lead]["reason"]) == ("open", "clinical_lead:2")
        finally:
            for shift in shifts:
                await http.delete(journeys.url(services, "safety", f"/v1/rota/shifts/{shift}"))
