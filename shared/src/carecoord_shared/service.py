"""The composition root every service shares: database, broker, outbox relay,
consumer policy, HTTP app and health endpoints, wired once per process.

A service supplies a :class:`ServiceDefinition` (its tables, migrations, HTTP
routes and event handlers) and calls :func:`serve`. Nothing here is
service-specific and there are no module-level singletons: tests build a
runtime with their own settings.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import asyncpg
import structlog
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.metrics import Observation
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import MetaData, Table, text
from sqlalchemy.exc import DBAPIError

from carecoord_contracts import topics_consumed_by
from carecoord_contracts.spec import asyncapi
from carecoord_records.raw_records import RawFetcher

from .auth import Access, Auditor, JurisdictionLookup, RelationLookup, Role, TokenVerifier
from .config import ServiceSettings
from .errors import Forbidden
from .faults import FailurePoints
from .http import AccessChecks, CarecoordApp, IdempotencyRecorder, Replay, allow
from .http.problems import (
    RETRY_AFTER_S,
    TOO_LARGE,
    UNAVAILABLE,
    domain_response,
    install_problem_handlers,
    instance_of,
    path_of,
    problem_response,
)
from .kafka_security import aiokafka_security_options, kafka_security
from .logging import configure_logging
from .messaging.consumer import EventConsumer, RetryPolicy
from .messaging.deadletter import DeadLetterer
from .messaging.errors import is_unavailable
from .messaging.progress import PartitionProgress, degraded
from .messaging.relay import OutboxRelay
from .messaging.retention import Retention
from .messaging.tables import MessagingTables
from .messaging.unit_of_work import UnitOfWork
from .persistence import create_engine, create_sessions, upgrade_to_head
from .sql_tracing import trace_sql
from .telemetry import Telemetry, meter

log = structlog.get_logger("carecoord.service")

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    title: str
    metadata: MetaData
    tables: MessagingTables
    # Append-only record of every PHI read and clinical decision (carecoord_shared.auth.audit_table).
    audit: Table
    migrations_dir: Path
    routers: tuple[APIRouter, ...] = ()
    register_handlers: Callable[[EventConsumer], None] = field(default=lambda _consumer: None)
    # The service's one lifecycle hook: its own work (timers, pollers, the clearinghouse exchange,
    # startup checks), each started after the database and the broker and cancelled before them.
    background: tuple[Callable[[Runtime], Coroutine[Any, Any, None]], ...] = ()
    # How this service knows a patient's state of residence (clinicians' licences); None: it cannot.
    jurisdiction_of: JurisdictionLookup | None = None
    # How a licensed clinician is related to a patient (care team, review assignee, on call), tried in
    # order, the first basis wins (carecoord_shared.auth.care); none: clinicians reach no patient here.
    relations: tuple[RelationLookup, ...] = ()


class Runtime:
    """Everything one service process runs on."""

    def __init__(self, definition: ServiceDefinition, settings: ServiceSettings) -> None:
        self.definition = definition
        self.settings = settings
        self.telemetry = Telemetry(definition.name, settings.traces_dir, settings.zipkin_endpoint)
        self.engine = create_engine(settings.database_url)
        trace_sql(self.engine.sync_engine, self.telemetry.tracer_provider)
        self.sessions = create_sessions(self.engine)
        self.verifier = TokenVerifier(
            secret=settings.auth_jwt_secret.get_secret_value(),
            public_key=settings.auth_jwt_public_key,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
        )
        self.auditor = Auditor(self.sessions, definition.audit)
        # Every service's models add it (carecoord_shared.http.idempotency_table); a missing one fails here.
        self.idempotency = definition.metadata.tables["idempotency_keys"]
        failure_points = FailurePoints(settings.crash_at, settings.transient_at)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=f"carecoord-{definition.name}",
            security=kafka_security(settings),
            # Not idempotent: aiokafka's idempotent producer dies for good on
            # OutOfOrderSequenceNumber, which a broker that lost its producer state
            # after a crash answers (aio-libs/aiokafka#1017; seen by the fault suite),
            # and the outbox would never drain again. Order per partition does not
            # need it (aiokafka keeps one batch per partition in flight), and a
            # retried send that did land twice is dropped by every consumer's inbox.
            enable_idempotence=False,
            acks="all",
            # FastStream's own logger writes coloured text straight to stdout;
            # this one goes through structlog like every other line.
            logger=logging.getLogger("carecoord.faststream"),
            # No FastStream telemetry middleware: the consumer and the relay make the
            # Kafka spans themselves (carecoord_shared.messaging.tracing says why).
        )
        self.relay = OutboxRelay(
            self.sessions,
            definition.tables,
            # The relay's own producer: it sends explicit record batches (relay_send says why).
            {
                "bootstrap_servers": settings.kafka_bootstrap,
                "client_id": f"carecoord-{definition.name}-relay",
                "request_timeout_ms": settings.outbox_request_timeout_ms,
                **aiokafka_security_options(settings),
            },
            service=definition.name,
            poll_interval_s=settings.outbox_poll_interval_s,
            batch_size=settings.outbox_batch_size,
            failure_points=failure_points,
        )
        self.uow = UnitOfWork(
            self.sessions,
            definition.tables,
            definition.name,
            # Committed rows go straight to the relay, which sends them from memory (relay.py).
            publish=self.relay.publish,
            failure_points=failure_points,
        )
        self.consumer = EventConsumer(
            definition.name,
            self.uow,
            DeadLetterer(definition.name, self._publish_and_wait),
            retry=RetryPolicy(
                max_attempts=settings.handler_max_attempts,
                backoff_initial_s=settings.handler_backoff_initial_s,
                backoff_max_s=settings.handler_backoff_max_s,
            ),
            failure_points=failure_points,
            max_batch=settings.consumer_max_batch,
        )
        self.retention = Retention(
            self.sessions,
            definition.tables,
            sent_outbox_days=settings.outbox_retention_days,
            inbox_days=settings.inbox_retention_days,
            consumed=topics_consumed_by(definition.name),
            idempotency=self.idempotency,
            idempotency_days=settings.idempotency_retention_days,
        )
        definition.register_handlers(self.consumer)
        self._topics = self._consumed_topics()
        self.kafka_consumer: AIOKafkaConsumer | None = None
        self._consume_task: asyncio.Task[None] | None = None
        self.progress = PartitionProgress(stall_after_s=settings.consumer_stall_after_s)
        self.parked_keys = 0
        meter().create_observable_gauge(
            "carecoord.consumer.parked_keys",
            callbacks=[lambda _o: [Observation(self.parked_keys)]],
            description="Patients whose events wait behind one of theirs that failed (carecoord parked list)",
        )
        self._relay_task: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._lag: dict[tuple[str, int], int] = {}
        meter().create_observable_gauge(
            "carecoord.consumer.lag",
            callbacks=[
                lambda _o: [Observation(lag, {"topic": t, "partition": p}) for (t, p), lag in self._lag.items()]
            ],
            description="Messages on each assigned partition not yet consumed by this service",
        )

    def _consumed_topics(self) -> tuple[str, ...]:
        topics = topics_consumed_by(self.definition.name)
        carried = {event for topic in topics for event in topic.events}
        stray = self.consumer.handled_types - carried
        if stray:
            raise RuntimeError(
                f"{self.definition.name} handles {sorted(stray)} but the topic registry "
                "subscribes it to no topic carrying them"
            )
        return tuple(t.name for t in topics)

    def _client_options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.settings.kafka_bootstrap,
            "client_id": f"carecoord-{self.definition.name}",
            **aiokafka_security_options(self.settings),
        }

    def _kafka_consumer(self) -> AIOKafkaConsumer:
        """One group member for all the service's topics; offsets are committed by EventConsumer alone."""
        settings = self.settings
        return AIOKafkaConsumer(
            *self._topics,
            **self._client_options(),
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            max_poll_interval_ms=self.consumer.max_poll_interval_ms(),
        )

    async def _consume(self, kafka: AIOKafkaConsumer) -> None:
        """The consume loop, started again if it ever fails (from the last commit: nothing skipped)."""
        while True:
            try:
                await self.consumer.run(kafka, RawFetcher(self._client_options()))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("consumer.loop_failed", error=type(exc).__name__, restart_in_s=1.0)
                # Not started again before every partition is back at the last commit: the failed
                # loop may have held records it never gave an outcome.
                while True:
                    await asyncio.sleep(1.0)
                    try:
                        await _rewind_to_committed(kafka)
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as rewind_exc:  # the broker away: ask again
                        log.error("consumer.rewind_failed", error=type(rewind_exc).__name__)

    async def _publish_and_wait(self, topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> Any:
        return await self.broker.publish(value, topic, key=key, headers=headers)

    async def start(self) -> None:
        await asyncio.to_thread(upgrade_to_head, self.settings.database_url, self.definition.migrations_dir)
        await self.broker.start()
        if self._topics:
            self.kafka_consumer = self._kafka_consumer()
            await self.kafka_consumer.start()
            self._consume_task = asyncio.create_task(self._consume(self.kafka_consumer), name="consumer")
        self._relay_task = asyncio.create_task(self.relay.run(), name="outbox-relay")
        self.start_background((*self.definition.background, _watch, _prune, _release_parked))
        if self.settings.uses_development_token_secret:
            log.warning("auth.development_secret", hint="set CARECOORD_AUTH_JWT_PUBLIC_KEY outside local runs")
        log.info("service.started", http_port=self.settings.http_port)

    async def stop(self) -> None:
        # A batch cut short rolls back and was not committed: the next owner gets it again.
        for task in [*self._background, *([self._consume_task] if self._consume_task else [])]:
            task.cancel()
        await asyncio.gather(
            *self._background, *([self._consume_task] if self._consume_task else []), return_exceptions=True
        )
        if self.kafka_consumer is not None:
            await self.kafka_consumer.stop()
        self.relay.stop()
        if self._relay_task:
            try:
                await asyncio.wait_for(self._relay_task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                self._relay_task.cancel()
        await self.broker.stop()
        await self.engine.dispose()
        self.telemetry.shutdown()
        log.info("service.stopped")

    async def refresh_gauges(self) -> None:
        """Outbox backlog, consumer lag and stalls, for the observable gauges (their callbacks cannot await)."""
        await self.relay.health()
        consumer = self.kafka_consumer
        if consumer is None:
            return
        positions = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                positions[tp] = (await consumer.position(tp), highwater)
        self._lag = {(tp.topic, tp.partition): max(end - position, 0) for tp, (position, end) in positions.items()}
        self.progress.observe(positions)
        self.parked_keys = await self.consumer.parking.count()

    def consumer_check(self) -> dict[str, Any]:
        running = self._consume_task is not None and not self._consume_task.done()
        return {
            "running": running or not self._topics,
            "stalled_partitions": self.progress.stalled(),
            "parked_keys": self.parked_keys,
            "undecodable_skipped": self.consumer.undecodable_skipped,
        }

    def start_background(self, hooks: tuple[Callable[[Runtime], Coroutine[Any, Any, None]], ...]) -> None:
        for hook in hooks:
            task = asyncio.create_task(hook(self), name=hook.__name__)
            task.add_done_callback(self._background_ended)
            self._background.append(task)

    def _background_ended(self, task: asyncio.Task[None]) -> None:
        # A hook that returns is done (a startup check); one that raised has stopped the service's own
        # work (timers, the exchange) while HTTP and the consumer go on: said at once, and by readiness.
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("background.failed", task=task.get_name(), error=type(exc).__name__)

    def background_check(self) -> dict[str, Any]:
        failed = {
            task.get_name(): type(exc).__name__
            for task in self._background
            if task.done() and not task.cancelled() and (exc := task.exception()) is not None
        }
        return {"failed": failed}

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["kafka"] = "ok" if await self.broker.ping(timeout=2) else "unavailable"
        try:
            checks["outbox"] = await self.relay.health()
        except Exception as exc:
            checks["outbox"] = f"unavailable: {type(exc).__name__}"
        checks["consumer"] = self.consumer_check()
        checks["background"] = self.background_check()
        return checks


async def _rewind_to_committed(kafka: AIOKafkaConsumer) -> None:
    """Every assigned partition back to the group's last commit: nothing the failed loop held is skipped."""
    for tp in kafka.assignment():
        committed = await kafka.committed(tp)
        if committed is None:  # never committed: from the start, as auto_offset_reset says
            await kafka.seek_to_beginning(tp)
        else:
            kafka.seek(tp, committed)


async def _watch(runtime: Runtime) -> None:
    while True:
        try:
            await runtime.refresh_gauges()
        except Exception as exc:  # a gauge going stale is no reason to stop the service
            log.debug("gauges.refresh_failed", error=type(exc).__name__)
        await asyncio.sleep(5)


async def _prune(runtime: Runtime) -> None:
    await runtime.retention.run()


async def _release_parked(runtime: Runtime) -> None:
    """Retry, without bound, the parked patients whose first event needs no fix (see messaging.parking)."""
    while True:
        await asyncio.sleep(runtime.settings.parked_retry_s)
        try:
            for patient_id in await runtime.consumer.parking.self_releasing():
                await runtime.consumer.release(patient_id)
        except Exception as exc:  # the database away: the next round tries again
            log.warning("parked.retry_failed", error=type(exc).__name__)


class ServiceApp(CarecoordApp):
    """The HTTP app of one service process, with its :class:`Runtime` as a typed attribute."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(
            AccessChecks(
                runtime.verifier,
                runtime.auditor,
                runtime.sessions,
                runtime.definition.jurisdiction_of,
                runtime.definition.relations,
            ),
            runtime.uow,
            runtime.idempotency,
            **kwargs,
        )
        self.runtime = runtime


async def get_runtime(request: Request) -> Runtime:
    # A coroutine: FastAPI would run a plain ``def`` dependency in a worker thread (http/dependencies.py).
    app = request.app
    if not isinstance(app, ServiceApp):
        raise TypeError(f"a carecoord route runs in a ServiceApp, not {type(app).__name__}")
    return app.runtime


# No carecoord request comes near this; a bigger body is refused before it is parsed.
MAX_REQUEST_BYTES = 1024 * 1024


class HeadAsGet:
    """HEAD on every GET route (RFC 9110 §9.3.2: the GET's status and headers, no body). FastAPI routes
    answer only the methods they declare, so HEAD would be a 405; here it is the GET, its body dropped on
    the way out. The GET's checks and audit run as for the GET: a HEAD tells whether a record exists."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Any) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class RequestSizeLimit:
    """413 for a request body above ``max_bytes``: at once when Content-Length says so,
    and while reading when the body is streamed without one (chunked)."""

    def __init__(self, app: Any, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(status_code=413, detail=self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        # Outside the app's exception handlers (no request is routed yet): the problem is rendered here.
        response = problem_response(TOO_LARGE, self._detail(), path_of(scope))
        await response(scope, receive, send)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# Running the system: who may look at and release parked patients.
Operators = Annotated[Access, allow(Role.OPERATOR, Role.SERVICE)]
OperatorOnly = Annotated[Access, allow(Role.OPERATOR)]


def create_app(definition: ServiceDefinition, settings: ServiceSettings) -> ServiceApp:
    runtime = Runtime(definition, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = ServiceApp(runtime, title=definition.title, version="1", lifespan=lifespan)
    # Inside the size limit: a body it refuses is never kept as an outcome.
    app.add_middleware(IdempotencyRecorder, sessions=runtime.sessions)
    app.add_middleware(RequestSizeLimit)
    app.add_middleware(HeadAsGet)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=runtime.telemetry.tracer_provider,
        meter_provider=runtime.telemetry.meter_provider,
        excluded_urls="health/live,health/ready,metrics",
        # One server span per request: the ASGI "http receive"/"http send" child spans (three per request)
        # say nothing the server span does not, and each costs a span's CPU and export.
        exclude_spans=["receive", "send"],
    )

    install_problem_handlers(app)

    async def forbidden(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Forbidden)
        principal = getattr(request.state, "principal", None)
        if principal is not None and not exc.audited:
            # A refusal by role or rule that named no patient: still on the record, by route.
            route = getattr(request.scope.get("route"), "path", "unknown")
            await runtime.auditor.record(principal, f"{request.method} refused", route[:64], outcome="denied")
        return domain_response(request, exc)

    app.add_exception_handler(Forbidden, forbidden)

    @app.exception_handler(Replay)
    async def replay(_request: Request, exc: Replay) -> Response:
        return exc.response()

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A pooled connection the server closed (a restart) fails at its first statement, now that
        # check-out does not ping (persistence.create_engine); the pool has dropped it already.
        if not is_unavailable(exc):
            raise exc  # any other database error stays a 500
        log.warning("http.database_unavailable", error=type(exc).__name__)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return problem_response(
                UNAVAILABLE,
                "The service lost its database connection; try again.",
                instance_of(request),
                headers={"Retry-After": str(RETRY_AFTER_S)},
                retry_after=RETRY_AFTER_S,
            )
        # A change: the connection may have gone during COMMIT, so whether it took effect is unknown.
        # No Retry-After (an automatic retry of a body without its own id could apply it twice).
        return problem_response(
            UNAVAILABLE,
            "The service lost its database connection; this change may or may not have been "
            "recorded. Send it again with the same id (e.g. report_id) and it is applied at most once, "
            "or read it back first.",
            instance_of(request),
        )

    for unavailable in (DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(unavailable, database_unavailable)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @app.get("/health/ready", tags=["health"])
    async def ready() -> JSONResponse:
        checks = await runtime.readiness()
        healthy = (
            checks["database"] == "ok"
            and checks["kafka"] == "ok"
            and checks["consumer"]["running"]
            and not checks["background"]["failed"]
        )
        # Still ready for HTTP, but something waits that an operator must see (`carecoord status`).
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={
                "status": "ok" if healthy else "unavailable",
                "service": definition.name,
                "checks": checks,
                "degraded": degraded(checks),
            },
        )

    @app.get("/metrics", tags=["health"], summary="Metrics in the Prometheus text format")
    async def metrics_text() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/v1/ops/parked", tags=["operations"], summary="Patients whose events wait behind one of theirs that failed"
    )
    async def parked(_access: Operators) -> dict[str, Any]:
        return {"service": definition.name, "parked": await runtime.consumer.parking.patients()}

    @app.post(
        "/v1/ops/parked/{patient_id}/release",
        tags=["operations"],
        summary="Apply a patient's parked events in order (after the fix, or the replay of its dead letter)",
    )
    async def release_parked(patient_id: uuid.UUID, access: OperatorOnly) -> dict[str, Any]:
        result = await runtime.consumer.release(patient_id)
        await runtime.auditor.record(
            access.principal,
            "release",
            "parked_events",
            patient_id=patient_id,
            outcome="allowed" if result["done"] else "incomplete",
            basis="operational",
        )
        runtime.parked_keys = await runtime.consumer.parking.count()
        return {"service": definition.name, "patient_id": str(patient_id), **result}

    asyncapi_document = asyncapi(definition.name)

    @app.get("/docs/asyncapi", tags=["docs"], summary="AsyncAPI 3.0: the events this service sends and receives")
    async def asyncapi_doc() -> dict[str, Any]:
        return asyncapi_document

    for router in definition.routers:
        app.include_router(router)
    return app


def serve(build: Callable[[SettingsT], ServiceDefinition], settings_type: type[SettingsT]) -> None:
    """Entrypoint of a service process: settings from the environment, then the service's
    composition root, then the HTTP server. Nothing is built before this is called."""
    # The name is the settings class's own (its `service` default), as before: a CARECOORD_SERVICE
    # left in a shared environment does not rename, or refuse, the process.
    settings = settings_type(service=settings_type.model_fields["service"].default)
    configure_logging(settings.service, settings.log_level, settings.log_format)
    definition = build(settings)
    if definition.name != settings.service:
        raise RuntimeError(f"{settings_type.__name__} is for {settings.service}, but build() made {definition.name}")
    app = create_app(definition, settings)
    # Named, not "auto": the loop is the setting's, and a missing httptools fails the start instead of
    # quietly falling back to h11 (pure Python).
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop=settings.event_loop,
        http="httptools",
        log_config=None,
        timeout_graceful_shutdown=10,
    )
