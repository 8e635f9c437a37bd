"""The consumer policy every service runs its Kafka handlers under.

FastStream's default commits the offset before the handler runs, so a crash
loses the message. Here the consumer takes what the broker has (a batch of up
to ``max_batch`` records, one record when it is caught up) and handles it so:

1. Each envelope and payload is validated; an invalid message goes to the
   service's dead-letter topic, with the reason and its origin.
2. An event type the service has no handler for (or that no one knows yet) is
   skipped: producers may add events without breaking consumers.
3. The handlers run inside a transaction that first claims the event ids in
   the inbox: a redelivered event changes nothing. Several events share one
   transaction (one inbox insert, one outbox insert, one commit); each event's
   handlers still see only their own cause and emit under their own span.
4. If that shared transaction fails, it is rolled back and every event of it is
   handled again alone, under the per-event policy: transient failures
   (serialization conflicts, deadlocks) are retried with exponential backoff a
   bounded number of times; after that, and at once for any other error, the
   message is dead-lettered. While the database is unreachable the retries go
   on without bound: the message is not at fault. So one bad event costs its
   batch a second pass but never takes the others down with it.
5. Only then is the offset committed, once for the batch. If the process dies
   anywhere before, the batch is delivered again and the inbox makes the second
   delivery a no-op. If dead-lettering itself fails, the consumer seeks each
   partition back to its first record without an outcome and tries again from
   there.

Records of one partition are handled in offset order, in one task, so events
about one patient (one key, one partition) take effect in the order sent.

Why batches: a commit of the database (a WAL flush) and of the offset (a
broker round trip) cost far more than an event's own work. A caught-up
consumer still handles and commits each event as it comes (latency is one
event's), and under a backlog those costs are shared by up to ``max_batch``
events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain
from typing import Any, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from ..contracts import CATALOG, Envelope, Event, Topic, UnsupportedVersion, upcast
from ..faults import FailurePoints
from ..telemetry import meter
from .deadletter import DeadLetterer
from .errors import is_transient, is_unavailable, validation_errors
from .tracing import consume_span
from .unit_of_work import Transaction, UnitOfWork

E = TypeVar("E", bound=Event)
Handler = Callable[[Any, Transaction], Awaitable[None]]

log = structlog.get_logger("carecoord.consumer")

# How long one poll waits for records before it returns empty and polls again.
POLL_TIMEOUT_MS = 500


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


@dataclass
class Delivery:
    """One record on its way through the policy."""

    record: ConsumerRecord
    # The API's non-recording span until _open starts a real one (a skipped event never gets one).
    span: trace.Span = trace.INVALID_SPAN
    started: float = field(default_factory=time.perf_counter)
    envelope: Envelope | None = None
    event: Event | None = None
    handlers: list[Handler] = field(default_factory=list)
    # Why it goes to the dead-letter topic, decided before any handler ran.
    rejected: tuple[str, dict[str, Any]] | None = None
    outcome: Outcome | None = None

    @property
    def event_type(self) -> str:
        return self.envelope.type if self.envelope and self.envelope.type in CATALOG else "unknown"


class EventConsumer:
    def __init__(
        self,
        service: str,
        uow: UnitOfWork,
        dead_letters: DeadLetterer,
        *,
        retry: RetryPolicy | None = None,
        failure_points: FailurePoints | None = None,
        max_batch: int = 200,
    ) -> None:
        self.service = service
        self.group = service
        self.max_batch = max_batch
        self._uow = uow
        self._dead_letters = dead_letters
        self._retry = retry or RetryPolicy()
        self._failure_points = failure_points or FailurePoints()
        self._handlers: dict[str, list[Handler]] = {}
        self.subscriber: Any = None
        # After handle_batch raised: each partition's first record with no outcome (where to resume).
        self.unfinished: dict[TopicPartition, int] | None = None
        self._consumed = meter().create_counter(
            "carecoord.events.consumed", description="Events consumed, by type and outcome"
        )
        self._duration = meter().create_histogram(
            "carecoord.handler.duration", unit="s", description="Time to handle one event, by type and outcome"
        )
        self._batch_size = meter().create_histogram(
            "carecoord.consumer.batch_size", description="Events handled in one database transaction"
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
        self.group = group_id
        self.subscriber = broker.subscriber(
            *(t.name for t in topics),
            group_id=group_id,
            batch=True,
            max_records=self.max_batch,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            title=f"{self.service}.consumer",
            decoder=_raw_bodies,
            **consumer_options,
        )
        # FastStream's batch poll sleeps its whole timeout after an empty poll, and a
        # message arriving meanwhile waits that long. aiokafka's getmany already waits
        # for the first record and returns at once with it, so poll with that alone.
        self.subscriber.get_msg = self._poll

        @self.subscriber
        async def consume(message: KafkaMessage) -> None:
            try:
                await self.handle_batch(message.raw_message)
            except BaseException:
                if self.unfinished is None:
                    # Failed before any record had an outcome: rewind every partition to the batch's start.
                    await message.nack()
                else:
                    # Rewind each partition to its first record without an outcome, so nothing is
                    # skipped and what was done (a dead letter sent, say) is not done again.
                    for tp, offset in self.unfinished.items():
                        _seek(message.consumer, tp, offset)
                raise
            await message.ack()  # commits the position of every partition: the whole batch, handled

    async def _poll(self, consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord, ...]:
        batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=self.max_batch)
        return tuple(_readable_headers(record) for record in chain.from_iterable(batches.values()))

    async def handle(self, record: ConsumerRecord) -> Outcome:
        """Handle one record (a batch of one)."""
        [outcome] = await self.handle_batch([record])
        return outcome

    async def handle_batch(self, records: Sequence[ConsumerRecord]) -> list[Outcome]:
        """Handle records under the policy above; returns each one's outcome, in order."""
        self.unfinished = None
        deliveries = [self._open(record) for record in records]
        try:
            ready = [d for d in deliveries if d.outcome is None and d.rejected is None]
            if len(ready) > 1:
                await self._process_together(ready)
            for d in deliveries:
                if d.outcome is None:
                    with self._scope(d):
                        d.outcome = await self._handle_alone(d)
        except BaseException as exc:
            self.unfinished = _first_unfinished(deliveries)
            for d in deliveries:
                if d.outcome is None:
                    d.span.record_exception(exc)
                    d.span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            for d in deliveries:
                self._close(d)
        return [d.outcome for d in deliveries]  # type: ignore[misc]

    def _open(self, record: ConsumerRecord) -> Delivery:
        """Validate the record and start its span: what can be decided before any database work.

        An event the service has no handler for gets no span and no log line, only
        its count: each report passes through about fourteen of those across the
        services, and a span each (most of an event's CPU here) would say nothing.
        """
        d = Delivery(record)
        try:
            d.envelope = Envelope.model_validate_json(record.value or b"")
        except ValidationError as exc:
            d.span = consume_span(record, self.group)
            d.rejected = ("invalid_envelope", {"errors": validation_errors(exc)})
            return d
        envelope = d.envelope
        d.handlers = self._handlers.get(envelope.type, [])
        if not d.handlers:
            d.outcome = Outcome.skipped
            return d
        d.span = consume_span(record, self.group)
        d.span.set_attributes({"carecoord.event.type": envelope.type, "messaging.message.id": str(envelope.event_id)})
        try:
            d.event = CATALOG[envelope.type].model_validate(upcast(envelope.type, envelope.version, envelope.payload))
        except ValidationError as exc:
            d.rejected = ("invalid_payload", {"errors": validation_errors(exc)})
        except UnsupportedVersion as exc:
            d.rejected = ("unsupported_version", {"error": str(exc)})
        except Exception as exc:  # an upcaster's own error on an old payload it did not expect
            d.rejected = ("invalid_payload", _describe(exc))
        return d

    def _close(self, d: Delivery) -> None:
        outcome = d.outcome.value if d.outcome else "failed"
        d.span.set_attribute("carecoord.outcome", outcome)
        d.span.end()
        labels = {"event_type": d.event_type, "outcome": outcome}
        self._consumed.add(1, labels)
        self._duration.record(time.perf_counter() - d.started, labels)

    @contextmanager
    def _scope(self, d: Delivery) -> Iterator[None]:
        """The delivery's span current and its ids on every log line."""
        envelope = d.envelope
        with (
            # Not recorded on the span: a handler's exception text can quote row values, and the
            # event may yet succeed alone. Its outcome says what happened in the end.
            trace.use_span(d.span, end_on_exit=False, record_exception=False, set_status_on_exception=False),
            structlog.contextvars.bound_contextvars(
                event_id=str(envelope.event_id) if envelope else None,
                correlation_id=str(envelope.correlation_id) if envelope else None,
                event_type=envelope.type if envelope else None,
            ),
        ):
            yield

    async def _process_together(self, ready: list[Delivery]) -> None:
        """All of ``ready`` in one transaction; on any failure, nothing of it (the caller goes one by one)."""
        outcomes: list[Outcome] = []  # one per event of ``ready``, in order
        try:
            async with self._uow.batch() as batch:
                claimed = await batch.claim_inbox([(d.envelope, d.record.topic) for d in ready])  # type: ignore[misc]
                for d in ready:
                    assert d.envelope is not None
                    if d.envelope.event_id not in claimed:
                        outcomes.append(Outcome.duplicate)
                        continue
                    claimed.discard(d.envelope.event_id)  # the same event twice in one batch runs once
                    with self._scope(d):
                        tx = batch.transaction(d.envelope)
                        for handler in d.handlers:
                            await handler(d.event, tx)
                        batch.stage(tx)
                        self._failure_points.reach("consumer.before_commit", d.envelope.type)
                    outcomes.append(Outcome.processed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Rolled back. Which event failed, and whether it would again, is for the
            # per-event policy to find out: each is handled alone next.
            log.warning("event.batch_rolled_back", size=len(ready), error=type(exc).__name__)
            return
        self._batch_size.record(len(ready))
        for d, outcome in zip(ready, outcomes, strict=True):
            with self._scope(d):
                d.outcome = self._committed(d, outcome)

    def _committed(self, d: Delivery, outcome: Outcome) -> Outcome:
        assert d.envelope is not None
        if outcome is Outcome.duplicate:
            log.info("event.duplicate", event_type=d.envelope.type, event_id=str(d.envelope.event_id))
            return outcome
        # Committed in the database, offset not yet committed: the redelivery must be a no-op.
        self._failure_points.reach("consumer.after_commit_before_ack", d.envelope.type)
        log.info("event.processed", event_type=d.envelope.type, event_id=str(d.envelope.event_id))
        return outcome

    async def _handle_alone(self, d: Delivery) -> Outcome:
        """One event in a transaction of its own, retried and dead-lettered as the policy says."""
        if d.rejected is not None:
            reason, detail = d.rejected
            return await self._dead_letter(d, reason, detail)
        envelope = d.envelope
        assert envelope is not None
        bound = log.bind(event_type=envelope.type, event_id=str(envelope.event_id))
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._process(d)
            except Exception as exc:
                if not is_transient(exc):
                    bound.error("event.handler_failed", error=type(exc).__name__, attempt=attempt)
                    return await self._dead_letter(d, "handler_error", _describe(exc))
                if is_unavailable(exc):
                    # The database is away, the message is not at fault: wait for the database
                    # however long it takes (at the last attempt's backoff), rather than dead-letter
                    # every message in flight during a restart.
                    attempt = min(attempt, self._retry.max_attempts - 1)
                elif attempt >= self._retry.max_attempts:
                    bound.error("event.retries_exhausted", error=type(exc).__name__, attempts=attempt)
                    return await self._dead_letter(d, "retries_exhausted", _describe(exc))
                delay = self._retry.delay(attempt)
                bound.warning("event.retrying", error=type(exc).__name__, attempt=attempt, delay_s=round(delay, 3))
                await asyncio.sleep(delay)

    async def _process(self, d: Delivery) -> Outcome:
        envelope = d.envelope
        assert envelope is not None
        async with self._uow.transaction(cause=envelope) as tx:
            if not await tx.claim_inbox(envelope, d.record.topic):
                outcome = Outcome.duplicate
            else:
                for handler in d.handlers:
                    await handler(d.event, tx)
                self._failure_points.reach("consumer.before_commit", envelope.type)
                outcome = Outcome.processed
        return self._committed(d, outcome)

    async def _dead_letter(self, d: Delivery, reason: str, detail: dict[str, Any]) -> Outcome:
        await self._dead_letters.send(d.record, reason=reason, detail=detail, envelope=d.envelope)
        return Outcome.dead_lettered


def _describe(exc: BaseException) -> dict[str, Any]:
    # The class name only: database error messages can quote row values.
    return {"error": type(exc).__name__}


def _first_unfinished(deliveries: list[Delivery]) -> dict[TopicPartition, int]:
    first: dict[TopicPartition, int] = {}
    for d in deliveries:
        if d.outcome is None:
            tp = TopicPartition(d.record.topic, d.record.partition)
            first[tp] = min(first.get(tp, d.record.offset), d.record.offset)
    return first


def _seek(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
    try:
        consumer.seek(tp, offset)
    except (AssertionError, IllegalStateError):
        pass  # revoked meanwhile: its next owner starts from the committed offset, before this record


def _readable_headers(record: ConsumerRecord) -> ConsumerRecord:
    """The record, with any header value that is not UTF-8 text (or is null) replaced.

    FastStream decodes every header value of a batch before the handler runs;
    one it cannot decode drops the whole batch unhandled, with the positions
    already past it, and the next commit would skip it. Header values are
    routing metadata only (the body is what is validated and dead-lettered), so
    an unreadable one is replaced rather than allowed to cost valid events.
    """
    try:
        for _key, value in record.headers:
            value.decode()
        return record
    except (AttributeError, UnicodeDecodeError):
        headers = tuple((key, value.decode(errors="replace").encode() if value is not None else b"") for key, value in record.headers)
        return dataclasses.replace(record, headers=headers)


def _raw_bodies(message: Any) -> list[bytes]:
    """Leave the bodies undecoded: ``handle_batch`` validates the raw records itself.

    FastStream's default decoder parses JSON before the handler is called, so a
    body it cannot parse (10,000 nested arrays raise RecursionError) never
    reached the handler: no dead letter, no ack, the message silently lost.
    """
    return message.body  # type: ignore[no-any-return]
