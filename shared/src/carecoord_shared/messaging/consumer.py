"""The consumer policy every service runs its Kafka handlers under.

FastStream's default commits the offset before the handler runs, so a crash
loses the message. Here each message is handled like this:

1. The envelope and the payload are validated; an invalid message goes to the
   service's dead-letter topic at once, with the reason and its origin.
2. An event type the service has no handler for (or that no one knows yet) is
   skipped: producers may add events without breaking consumers.
3. The handler runs inside one transaction that first claims the event id in
   the inbox: a redelivered event changes nothing.
4. Transient failures (serialization conflicts, deadlocks) are retried with
   exponential backoff, a bounded number of times; after that, and at once
   for any other error, the message is dead-lettered. While the database is
   unreachable the retries go on without bound: the message is not at fault.
5. Only then is the offset committed. If the process dies anywhere before, the
   message is delivered again and the inbox makes the second delivery a no-op.
   If dead-lettering itself fails, the consumer seeks back and tries again.

Offsets are committed once per run of messages, not per message: while the
partition has more records waiting (the broker's high-water mark is beyond the
message just handled), the commit waits, at most ``commit_every`` messages or
``commit_interval_s``. A commit covers only messages already handled, because
messages are handled one at a time and the commit runs after the handler, so
the guarantee above holds; a crash redelivers at most that run, which the inbox
drops. A caught-up consumer commits after every message, as before: latency is
unchanged, and the broker round trip per message (~7 ms here, most of a hop's
time) is only saved when there is a backlog to save it on.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import structlog
from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from ..contracts import CATALOG, Envelope, Event, Topic, UnsupportedVersion, upcast
from ..faults import FailurePoints
from ..telemetry import meter, tracer
from .deadletter import DeadLetterer
from .errors import is_transient, is_unavailable, validation_errors
from .unit_of_work import Transaction, UnitOfWork

E = TypeVar("E", bound=Event)
Handler = Callable[[Any, Transaction], Awaitable[None]]

log = structlog.get_logger("carecoord.consumer")


class Outcome(StrEnum):
    processed = "processed"
    duplicate = "duplicate"
    skipped = "skipped"
    dead_lettered = "dead_lettered"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        base = min(self.backoff_initial_s * 2 ** (attempt - 1), self.backoff_max_s)
        return base * random.uniform(0.5, 1.0)


class EventConsumer:
    def __init__(
        self,
        service: str,
        uow: UnitOfWork,
        dead_letters: DeadLetterer,
        *,
        retry: RetryPolicy | None = None,
        failure_points: FailurePoints | None = None,
        commit_every: int = 100,
        commit_interval_s: float = 1.0,
    ) -> None:
        self.service = service
        self._commit_every = commit_every
        self._commit_interval_s = commit_interval_s
        self._handled_since_commit = 0
        self._last_commit = time.monotonic()
        self._uow = uow
        self._dead_letters = dead_letters
        self._retry = retry or RetryPolicy()
        self._failure_points = failure_points or FailurePoints()
        self._handlers: dict[str, list[Handler]] = {}
        self.subscriber: Any = None
        self._consumed = meter().create_counter(
            "carecoord.events.consumed", description="Events consumed, by type and outcome"
        )
        self._duration = meter().create_histogram(
            "carecoord.handler.duration", unit="s", description="Time to handle one event, by type and outcome"
        )

    def on(self, event_cls: type[E]) -> Callable[[Callable[[E, Transaction], Awaitable[None]]], Handler]:
        """Register a handler of one event type: ``async def h(event, tx) -> None``.

        An event may have several handlers; they run in registration order in
        one transaction, so they succeed or fail together.
        """

        def register(fn: Callable[[E, Transaction], Awaitable[None]]) -> Handler:
            self._handlers.setdefault(event_cls.event_type, []).append(fn)
            return fn

        return register

    @property
    def handled_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def subscribe(self, broker: KafkaBroker, topics: tuple[Topic, ...], *, group_id: str, **consumer_options: Any) -> None:
        """Attach one Kafka consumer (one group per service) for all the service's topics."""

        self.subscriber = broker.subscriber(
            *(t.name for t in topics),
            group_id=group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            title=f"{self.service}.consumer",
            decoder=_raw_body,
            **consumer_options,
        )

        @self.subscriber
        async def consume(message: KafkaMessage) -> None:
            try:
                await self.handle(message.raw_message)
            except BaseException:
                # Not handled: rewind so this message is read again, not skipped. Earlier ones
                # handled but not yet committed stay behind the position and go with the next commit.
                await message.nack()
                raise
            self._handled_since_commit += 1
            if self._commit_due(message.raw_message):
                await message.ack()  # commits the position of every partition: all handled, this one included
                self._handled_since_commit = 0
                self._last_commit = time.monotonic()

    def _commit_due(self, record: ConsumerRecord) -> bool:
        """Commit now unless more of this partition is waiting and the run is still short."""
        if self._handled_since_commit >= self._commit_every:
            return True
        if time.monotonic() - self._last_commit >= self._commit_interval_s:
            return True
        consumer = getattr(self.subscriber, "consumer", None)
        try:
            highwater = consumer.highwater(TopicPartition(record.topic, record.partition)) if consumer else None
        except AssertionError:  # the partition was revoked meanwhile: commit what is still ours
            return True
        return highwater is None or record.offset + 1 >= highwater

    async def handle(self, record: ConsumerRecord) -> Outcome:
        """Handle one record under the policy above; a span and log context cover all of it."""
        started = time.perf_counter()
        event_type = "unknown"
        with tracer().start_as_current_span(f"handle {record.topic}") as span:
            invalid: ValidationError | None = None
            try:
                envelope: Envelope | None = Envelope.model_validate_json(record.value or b"")
            except ValidationError as exc:
                envelope, invalid = None, exc
            if envelope is not None:
                event_type = envelope.type if envelope.type in CATALOG else "unknown"
                span.set_attributes({"carecoord.event.type": envelope.type, "carecoord.event.id": str(envelope.event_id)})
            with structlog.contextvars.bound_contextvars(
                event_id=str(envelope.event_id) if envelope else None,
                correlation_id=str(envelope.correlation_id) if envelope else None,
                event_type=envelope.type if envelope else None,
            ):
                outcome = await self._handle(record, envelope, invalid)
            span.set_attribute("carecoord.outcome", outcome.value)
        labels = {"event_type": event_type, "outcome": outcome.value}
        self._consumed.add(1, labels)
        self._duration.record(time.perf_counter() - started, labels)
        return outcome

    async def _handle(self, record: ConsumerRecord, envelope: Envelope | None, invalid: ValidationError | None) -> Outcome:
        if envelope is None:
            assert invalid is not None
            return await self._dead_letter(record, "invalid_envelope", {"errors": validation_errors(invalid)})

        handlers = self._handlers.get(envelope.type)
        if not handlers:
            log.debug("event.skipped", event_type=envelope.type, event_id=str(envelope.event_id))
            return Outcome.skipped
        model = CATALOG[envelope.type]
        try:
            event = model.model_validate(upcast(envelope.type, envelope.version, envelope.payload))
        except ValidationError as exc:
            return await self._dead_letter(record, "invalid_payload", {"errors": validation_errors(exc)}, envelope)
        except UnsupportedVersion as exc:
            return await self._dead_letter(record, "unsupported_version", {"error": str(exc)}, envelope)

        bound = log.bind(event_type=envelope.type, event_id=str(envelope.event_id))
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._process(handlers, event, envelope, record.topic)
            except Exception as exc:
                if not is_transient(exc):
                    bound.error("event.handler_failed", error=type(exc).__name__, attempt=attempt)
                    return await self._dead_letter(record, "handler_error", _describe(exc), envelope)
                if is_unavailable(exc):
                    # The database is away, the message is not at fault: wait for the database
                    # however long it takes (at the last attempt's backoff), rather than dead-letter
                    # every message in flight during a restart.
                    attempt = min(attempt, self._retry.max_attempts - 1)
                elif attempt >= self._retry.max_attempts:
                    bound.error("event.retries_exhausted", error=type(exc).__name__, attempts=attempt)
                    return await self._dead_letter(record, "retries_exhausted", _describe(exc), envelope)
                delay = self._retry.delay(attempt)
                bound.warning("event.retrying", error=type(exc).__name__, attempt=attempt, delay_s=round(delay, 3))
                await asyncio.sleep(delay)

    async def _process(self, handlers: list[Handler], event: Event, envelope: Envelope, topic: str) -> Outcome:
        async with self._uow.transaction(cause=envelope) as tx:
            if not await tx.claim_inbox(envelope, topic):
                log.info("event.duplicate", event_type=envelope.type, event_id=str(envelope.event_id))
                return Outcome.duplicate
            for handler in handlers:
                await handler(event, tx)
            self._failure_points.reach("consumer.before_commit", envelope.type)
        # Committed in the database, offset not yet committed: the redelivery must be a no-op.
        self._failure_points.reach("consumer.after_commit_before_ack", envelope.type)
        log.info("event.processed", event_type=envelope.type, event_id=str(envelope.event_id))
        return Outcome.processed

    async def _dead_letter(
        self, record: ConsumerRecord, reason: str, detail: dict[str, Any], envelope: Envelope | None = None
    ) -> Outcome:
        await self._dead_letters.send(record, reason=reason, detail=detail, envelope=envelope)
        return Outcome.dead_lettered


def _describe(exc: BaseException) -> dict[str, Any]:
    # The class name only: database error messages can quote row values.
    return {"error": type(exc).__name__}


def _raw_body(message: Any) -> bytes:
    """Leave the body undecoded: ``handle`` validates the raw record itself.

    FastStream's default decoder parses JSON before the handler is called, so a
    body it cannot parse (10,000 nested arrays raise RecursionError) never
    reached ``handle``: no dead letter, no ack, the message silently lost.
    """
    return message.body  # type: ignore[no-any-return]
