"""The load: patient journeys over the real input paths, robust to the faults.

Each journey registers a patient at intake and completes the intake steps
(eligibility books the initial evaluation in scheduling; the declared coverage
reaches billing), creates and activates a treatment plan in dosing (scheduling
books the course), sends its scenario's side-effect reports to safety — over
HTTP for even patients, on the patient-app.reports topic for odd ones — and
has one visit completed twice (a redelivery) for billing to charge and claim.

While services, the broker and the database die under it, a step is retried
until it gets an answer; every retry carries the same client id (external id,
report id, event id), so a retry after a crash is never a second fact.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from carecoord_contracts import Envelope, Event
from carecoord_contracts.common import AppointmentType
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.stack import Stack
from tests.auth import service_client
from tests.e2e.intake_journeys import eligible_steps, registration

from .expectations import SCENARIOS
from .history import History, Journey, SentReport

STEP_DEADLINE_S = 120.0
RETRY_PAUSE_S = 0.3
SEND_TIMEOUT_S = 10.0


class Load:
    def __init__(self, stack: Stack, history: History, rng: random.Random) -> None:
        self.stack = stack
        self.history = history
        self.rng = rng
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Load:
        # Not idempotent, like the services' producers (see carecoord_shared.service): a re-send is
        # the same envelope, and the consumers' inboxes drop a copy that landed twice.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.stack.kafka.bootstrap, acks="all", request_timeout_ms=8000
        )
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._producer is not None
        await self._producer.stop()

    async def run(
        self, patients: int, most: int, concurrency: int, start_gap_s: float, more: Callable[[], bool]
    ) -> None:
        """At least ``patients`` journeys and on while ``more()`` (``most`` at the most),
        at most ``concurrency`` at once, started ``start_gap_s`` apart."""
        gate = asyncio.Semaphore(concurrency)

        async def one(journey: Journey) -> None:
            try:
                await self.journey(journey)
                journey.done = True
            except Exception as exc:  # recorded: the test reports an unfinished journey
                journey.error = f"{type(exc).__name__}: {exc}"
            finally:
                gate.release()

        tasks = []
        while len(tasks) < most and (len(tasks) < patients or more()):
            await gate.acquire()
            journey = Journey(index=len(tasks), external_id=f"fault-{uuid.uuid4()}")
            self.history.journeys.append(journey)
            tasks.append(asyncio.create_task(one(journey)))
            await asyncio.sleep(start_gap_s)
        await asyncio.gather(*tasks)

    async def journey(self, journey: Journey) -> None:
        body = registration(external_id=journey.external_id)
        registered = await self.call("intake", "POST", "/v1/patients", body, ok=(200, 201))
        journey.patient_id = patient = uuid.UUID(registered.json()["patient_id"])
        for method, path, step_body in eligible_steps():
            await self.call("intake", method, f"/v1/patients/{patient}{path}", step_body, ok=(201,))
        await self.plan(journey)
        scenario = SCENARIOS[journey.index % len(SCENARIOS)]
        channel = "http" if journey.index % 2 == 0 else "kafka"
        for grade, symptoms in scenario:
            sent = SentReport(report_id=uuid.uuid4(), grade=grade, symptoms=symptoms, channel=channel)
            journey.reports.append(sent)
            await (self.report_http(patient, sent) if channel == "http" else self.report_kafka(patient, sent))
        visit = uuid.uuid4()
        journey.visits.append(visit)
        for _ in range(2):  # scheduling's redelivery: a new event id, the same appointment
            await self.publish(self.completed(visit), patient, "scheduling.appointments", "scheduling")

    async def plan(self, journey: Journey) -> None:
        patient = journey.patient_id
        body = {
            "patient_id": str(patient),
            "clinician_id": "dr-lee",
            "starting_dose_mg": 100,
            "max_dose_mg": 300,
            "max_step_mg": 50,
            "planned_sessions": 6,
            "indication": "depression",
            "diagnosis_codes": ["F33.1"],
        }
        created = await self.call("dosing", "POST", "/v1/plans", body, ok=(201, 409))
        if created.status_code == 409:  # a first attempt committed before the crash: one live plan per patient
            created = await self.call("dosing", "GET", f"/v1/patients/{patient}/plan", None, ok=(200,))
        journey.plan_id = uuid.UUID(created.json()["plan_id"])
        activated = await self.call(
            "dosing", "POST", f"/v1/plans/{journey.plan_id}/activate", {"clinician_id": "dr-lee"}, ok=(200, 409)
        )
        if activated.status_code == 409:
            current = await self.call("dosing", "GET", f"/v1/plans/{journey.plan_id}", None, ok=(200,))
            assert current.json()["status"] in ("active", "paused"), current.text
        journey.plan_active = True

    async def report_http(self, patient: uuid.UUID, sent: SentReport) -> None:
        body = {
            "patient_id": str(patient),
            "report_id": str(sent.report_id),
            "symptoms": list(sent.symptoms),
            "grade": sent.grade,
        }
        await self.call("safety", "POST", "/v1/side-effect-reports", body, ok=(200, 201))
        sent.acknowledged = True
        if self.rng.random() < 0.4:  # the app resending after a lost response
            again = await self.call("safety", "POST", "/v1/side-effect-reports", body, ok=(200, 201))
            sent.resubmitted = True
            self.history.resubmissions += 1
            if again.status_code != 200:
                self.history.resubmissions_not_already.append(str(sent.report_id))

    async def report_kafka(self, patient: uuid.UUID, sent: SentReport) -> None:
        event = SideEffectReportSubmitted(report_id=sent.report_id, symptoms=list(sent.symptoms), grade=sent.grade)
        envelope = await self.publish(event, patient, "patient-app.reports", "patient-app")
        sent.event_id, sent.acknowledged = envelope.event_id, True

    @staticmethod
    def completed(appointment: uuid.UUID) -> AppointmentCompleted:
        started = datetime.now(UTC) - timedelta(days=1)
        return AppointmentCompleted(
            appointment_id=appointment,
            appointment_type=AppointmentType.follow_up,
            clinician_id="dr-lee",
            started_at=started,
            ended_at=started + timedelta(minutes=30),
        )

    async def publish(self, event: Event, patient: uuid.UUID, topic: str, producer: str) -> Envelope:
        """Publish until the broker acknowledges; a re-send is the same envelope (same event id)."""
        assert self._producer is not None
        envelope = Envelope.wrap(event, patient_id=patient, producer=producer)
        value = envelope.model_dump_json().encode()
        headers = [(k, v.encode()) for k, v in envelope.headers().items()]
        deadline = time.monotonic() + STEP_DEADLINE_S
        while True:
            try:
                await asyncio.wait_for(
                    self._producer.send_and_wait(topic, value, key=envelope.key, headers=headers), SEND_TIMEOUT_S
                )
                return envelope
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.history.kafka_retries += 1
                await asyncio.sleep(RETRY_PAUSE_S)

    async def call(self, service: str, method: str, path: str, body: Any, ok: tuple[int, ...]) -> httpx.Response:
        """One request, retried while the service or its database is away (no answer, or a 5xx)."""
        deadline = time.monotonic() + STEP_DEADLINE_S
        while True:
            try:
                async with service_client(self.stack, service) as http:
                    response = await http.request(method, path, json=body)
                if response.status_code < 500:
                    assert response.status_code in ok, (
                        f"{method} {service}{path}: {response.status_code} {response.text[:300]}"
                    )
                    return response
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {service}{path} unanswered for {STEP_DEADLINE_S:.0f}s")
            self.history.http_retries += 1
            await asyncio.sleep(RETRY_PAUSE_S)
