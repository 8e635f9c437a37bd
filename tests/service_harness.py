"""One service's handlers and HTTP routes in-process, on a real PostgreSQL database, without Kafka:
the harness for business tests (what a service decides and emits), below the e2e suite.

What is real: the service's composition root (``build(settings)``, as ``serve`` calls it), its
migrations, the HTTP app ``create_app`` makes (routes, authorisation, audit, error mapping), the
:class:`EventConsumer` policy every consumed event goes through (envelope and payload validation,
inbox dedup, one unit of work per event, parking), and the outbox the service writes its events to.
What is not there: Kafka. The app's lifespan (which starts the runtime: broker, consume loop, outbox
relay, background work) never runs, because ``httpx.ASGITransport`` sends no lifespan events; events
go in through :meth:`ServiceHarness.deliver` (the consumer's own handling entry point, as its poll loop
calls it) and come out as outbox rows (:meth:`ServiceHarness.emitted`), never relayed.

Usage, in a test module (the ``stack`` fixture is the suite's session stack; only its PostgreSQL is used)::

    @pytest.fixture(scope="module")
    async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
        async with ServiceHarness.running(stack, "scheduling", database="scheduling_booking_it") as harness:
            yield harness

    async def test_x(scheduling: ServiceHarness) -> None:
        await scheduling.deliver(PatientRegistered(...), patient_id=patient, producer="intake")
        response = await scheduling.http.get(f"/v1/patients/{patient}/appointments")   # as the suite's service
        as_patient = scheduling.client(patient_token(patient))                         # as another caller
        [booked] = await scheduling.emitted("AppointmentBooked", patient_id=patient)    # payloads, in order

Each module gets its own scratch database (``database=``), so modules never see each other's rows;
tests of one module share it, so they keep to their own patients (and clinicians, states).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka.structs import ConsumerRecord
from sqlalchemy import Executable, event, select

from carecoord_contracts import Envelope, Event, topic_for_event
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.consumer import EventConsumer, Outcome, RetryPolicy
from carecoord_shared.messaging.deadletter import DeadLetterer
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import upgrade_to_head
from carecoord_shared.service import ServiceApp, ServiceDefinition, create_app
from tests.auth import SERVICE_TOKEN, bearer
from tests.services import built, settings_for


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    headers: dict[str, str]


@dataclass
class ServiceHarness:
    name: str
    definition: ServiceDefinition
    app: ServiceApp
    consumer: EventConsumer
    # What the consumer sent to the dead-letter topic (it has no broker to send them to).
    dead_letters: list[DeadLetter] = field(default_factory=list)
    _offsets: itertools.count[int] = field(default_factory=itertools.count)
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    @classmethod
    @asynccontextmanager
    async def running(cls, stack: Stack, name: str, *, database: str, **settings: Any) -> AsyncIterator[ServiceHarness]:
        """``name``'s service on a fresh database ``database`` (owned by the service's role, migrated to
        head), with its settings read from the environment as a deployment's are, and ``settings``
        over them (field names of the service's settings class)."""
        url = await scratch_database(stack, database, name)
        service_settings = settings_for(name).model_copy(update={"database_url": url, **settings})
        definition = built(name)
        await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
        app = create_app(definition, service_settings)
        runtime = app.runtime
        dead_letters: list[DeadLetter] = []

        async def publish_dead_letter(topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> None:
            dead_letters.append(DeadLetter(topic, headers))

        # The runtime's own consumer would dead-letter through its broker, which is never started here:
        # this one runs the same policy over the same unit of work, with the service's handlers and retry
        # settings, and keeps its dead letters for the test to read.
        consumer = EventConsumer(
            name,
            runtime.uow,
            DeadLetterer(name, publish_dead_letter),
            retry=RetryPolicy(
                max_attempts=service_settings.handler_max_attempts,
                backoff_initial_s=service_settings.handler_backoff_initial_s,
                backoff_max_s=service_settings.handler_backoff_max_s,
            ),
        )
        definition.register_handlers(consumer)
        harness = cls(name, definition, app, consumer, dead_letters)
        try:
            yield harness
        finally:
            for client in harness._clients:
                await client.aclose()
            await runtime.engine.dispose()
            runtime.telemetry.shutdown()

    @property
    def uow(self) -> UnitOfWork:
        """The unit of work the routes and handlers use (for arranging rows a test needs)."""
        return self.app.runtime.uow

    # --- events in ------------------------------------------------------------------

    async def deliver(
        self,
        event: Event,
        *,
        patient_id: uuid.UUID,
        producer: str,
        expect: Outcome | None = Outcome.processed,
    ) -> Envelope:
        """Envelope ``event`` as ``producer`` would send it about the patient and hand it to the consumer;
        its outcome must be ``expect`` (None: any). Returns the envelope (to deliver it again)."""
        envelope = Envelope.wrap(event, patient_id=patient_id, producer=producer)
        await self.deliver_envelope(envelope, expect=expect)
        return envelope

    async def deliver_envelope(self, envelope: Envelope, *, expect: Outcome | None = Outcome.processed) -> Outcome:
        """Hand one envelope to the consumer as a record of its topic, keyed as producers key it."""
        value = envelope.model_dump_json().encode()
        key = envelope.key
        record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
            topic=topic_for_event(envelope.type).name,
            partition=0,
            offset=next(self._offsets),
            timestamp=0,
            timestamp_type=0,
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=len(key or b""),
            serialized_value_size=len(value),
            headers=[],
        )
        outcome = await self.consumer.handle(record)
        if expect is not None:
            assert outcome is expect, f"{envelope.type}: {outcome} (dead letters: {self.dead_letters})"
        return outcome

    @contextmanager
    def statements(self, cache: list[tuple[str, Any]] | None = None) -> Iterator[list[str]]:
        """The SQL the service sends while it is open (and into ``cache``: each one's compiled-cache outcome)."""
        seen: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
            seen.append(" ".join(statement.split()))
            if cache is not None:
                cache.append((seen[-1], context.cache_hit))

        engine = self.app.runtime.engine.sync_engine
        event.listen(engine, "before_cursor_execute", note)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", note)

    # --- HTTP -----------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """A client of the service's app calling as the suite's service account (paths like ``/v1/...``)."""
        if not self._clients:
            self.client(SERVICE_TOKEN)
        return self._clients[0]

    def client(self, token: str) -> httpx.AsyncClient:
        """A client of the service's app calling as ``token``'s holder (closed with the harness)."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://service.test", headers=bearer(token)
        )
        self._clients.append(client)
        return client

    # --- what it wrote and emitted --------------------------------------------------

    async def emitted(self, event_type: str, *, patient_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
        """The payloads of the ``event_type`` events the service committed to its outbox, in the order
        written; only those keyed by ``patient_id`` when it is given (events about a patient are keyed by it)."""
        return [e["payload"] for e in await self.emitted_envelopes(event_type, patient_id=patient_id)]

    async def emitted_envelopes(
        self, event_type: str | None = None, *, patient_id: uuid.UUID | None = None
    ) -> list[dict[str, Any]]:
        """Whole envelopes (as JSON) from the outbox, in the order written, of one type or every one."""
        outbox = self.definition.tables.outbox
        query = select(outbox.c.envelope).order_by(outbox.c.id)
        if event_type is not None:
            query = query.where(outbox.c.event_type == event_type)
        if patient_id is not None:
            query = query.where(outbox.c.key == str(patient_id))
        return [row.envelope for row in await self.rows(query)]

    async def rows(self, query: Executable) -> list[Any]:
        """The rows of a query on the service's database (to look at its tables directly)."""
        async with self.uow.sessions() as session:
            return list((await session.execute(query)).all())
