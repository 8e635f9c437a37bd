"""The consumer policy every service runs its Kafka handlers under.

FastStream's default commits the offset before the handler runs, so a crash
loses the message. Here the consumer takes what the broker has (a batch of up
to ``max_batch`` records, one record when it is caught up) and handles it so:

1. Each envelope and payload is validated; an invalid message goes to the
   service's dead-letter topic, with the reason and its origin.
2. An event type the service has no handler for (or that no one knows yet) is
   skipped: producers may add events without breaking consumers.
3. The handlers run inside a transaction that first claims the event ids in
   the inbox: a redelivered event changes nothing. The same statement finds
   which of the events' patients are parked (:mod:`.parking`): their events
   are not claimed but parked behind. Several events share one transaction
   (one claim, one outbox insert, one commit); each event's handlers still see
   only their own cause and emit under their own span. Around its handlers'
   own statements an event handled alone costs three round trips (BEGIN, the
   claim, COMMIT; the session's check-out pings nothing, ``persistence`` says
   why), a batch the same three for all its events, plus the outbox insert.
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
   there. The next poll does not wait for that commit (a broker round trip):
   it runs while the commit is in flight, and the next commit waits for it, so
   one is in flight at a time and they land in order. What a commit covers is
   unchanged (records with an outcome); only a crash in that window delivers
   them again, which the inbox makes a no-op, as before the commit.
6. Commits are coalesced: at most one per ``commit_interval_s`` while records
   keep coming, and at once when the consumer goes idle or is stopped. A
   caught-up consumer used to commit after every fetch, and a report makes six
   consumers fetch about 22 times between them (most of it events they only
   skip): the broker's CPU for those commits was a large part of what a
   report costs it. Coalescing moves no offset past a record without an
   outcome; what a crash or a rebalance now delivers again (at most an
   interval's records) the inbox makes a no-op, and a skipped event is
   skipped again.

Records of one partition are handled in offset order, in one task, so events
about one patient (one key, one partition) take effect in the order sent.

The consumer is aiokafka's, driven here rather than through FastStream's
subscriber: a record aiokafka cannot decode must cost nothing but itself
(:mod:`.fetch`), offsets are committed exactly as far as records have an
outcome, and the poll interval it promises the group is sized from the retry
policy. FastStream stays the services' broker for everything they publish.

Why batches: a commit of the database (a WAL flush) and of the offset (a
broker round trip) cost far more than an event's own work. A caught-up
consumer still handles and commits each event as it comes (latency is one
event's), and under a backlog those costs are shared by up to ``max_batch``
events.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts import CATALOG, Envelope, Event, UnsupportedVersion, upcast
from carecoord_records.fetch import Fetched, SafeFetch, Undecodable
from carecoord_records.raw_records import RawFetcher

from ..faults import FailurePoints
from ..telemetry import meter
from .clock_skew import note_clock_skew
from .deadletter import DeadLetterer
from .errors import is_transient, is_unavailable, validation_errors
from .parking import BEHIND_PARKED, HANDLER_ERROR, RETRIES_EXHAUSTED, Parked, ParkedEvent, Parking
from .tracing import consume_span
from .unit_of_work import HandlerTransaction, UnitOfWork

E = TypeVar("E", bound=Event)
# A handler gets the event and its transaction, whose cause is the event's envelope.
Handler = Callable[[Any, HandlerTransaction], Awaitable[None]]

log = structlog.get_logger("carecoord.consumer")

# How long one poll waits for records before it returns empty and polls again.
POLL_TIMEOUT_MS = 500
# At most one offset commit per interval while records keep coming (policy, point 6).
COMMIT_INTERVAL_S = 1.0
# How long a stopping consumer gives its last commit.
FINAL_COMMIT_TIMEOUT_S = 2.0


class Released(TypedDict):
    """What a release did: events applied, whether the patient is free again, the class of the error that stopped it."""

    released: int
    done: bool
    error: str | None


class Outcome(StrEnum):
    processed = "processed"
    duplicate = "duplicate"
    skipped = "skipped"
    dead_lettered = "dead_lettered"
    # Held back behind an earlier event of the same patient that failed (messaging.parking).
    parked = "parked"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        base = min(self.backoff_initial_s * 2.0 ** (attempt - 1), self.backoff_max_s)
        return base * random.uniform(0.5, 1.0)

    def longest_wait_s(self) -> float:
        """The most one event can sleep between its attempts before it is given up on."""
        return sum(
            (min(self.backoff_initial_s * 2.0 ** (a - 1), self.backoff_max_s) for a in range(1, self.max_attempts)), 0.0
        )


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
    rejected: tuple[str, dict[str, object]] | None = None
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
        parking: Parking | None = None,
        commit_interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        self.service = service
        self.group = service
        self.max_batch = max_batch
        self._uow = uow
        self._dead_letters = dead_letters
        self.parking = parking or Parking(uow.sessions, uow.tables)
        self._retry = retry or RetryPolicy()
        self._failure_points = failure_points or FailurePoints()
        self._handlers: dict[str, list[Handler]] = {}
        # After handle_batch raised: each partition's first record with no outcome (where to resume).
        self.unfinished: dict[TopicPartition, int] | None = None
        # Records given up on undecoded, since the process started (readiness shows it).
        self.undecodable_skipped = 0
        # The offset commit still in flight (policy, point 5): at most one.
        self._committing: asyncio.Task[None] | None = None
        # Offsets just past records with an outcome, not committed yet (point 6), and when the last commit began.
        self._pending: dict[TopicPartition, int] = {}
        self._commit_interval_s = commit_interval_s
        self._last_commit = -commit_interval_s
        self._consumed = meter().create_counter(
            "carecoord.events.consumed", description="Events consumed, by type and outcome"
        )
        self._duration = meter().create_histogram(
            "carecoord.handler.duration", unit="s", description="Time to handle one event, by type and outcome"
        )
        self._undecodable = meter().create_counter(
            "carecoord.consumer.undecodable_records",
            description="Records that could not be decoded at all, dead-lettered by their coordinates",
        )
        self._batch_size = meter().create_histogram(
            "carecoord.consumer.batch_size", description="Events handled in one database transaction"
        )

    def on(self, event_cls: type[E]) -> Callable[[Callable[[E, HandlerTransaction], Awaitable[None]]], Handler]:
        """Register a handler of one event type: ``async def h(event, tx) -> None``.

        An event may have several handlers; they run in registration order in
        one transaction, so they succeed or fail together.
        """

        def register(fn: Callable[[E, HandlerTransaction], Awaitable[None]]) -> Handler:
            self._handlers.setdefault(event_cls.event_type, []).append(fn)
            return fn

        return register

    @property
    def handled_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def max_poll_interval_ms(self, margin_s: float = 60.0) -> int:
        """What to promise the group: a whole batch retried to the end, and a margin.

        aiokafka expels a member that does not poll within this interval, and two
        consumers would then work the same records; a batch whose every event
        retries transient failures to the last attempt must still fit.
        """
        worst_s = self.max_batch * self._retry.longest_wait_s() + margin_s
        return int(max(worst_s, 300.0) * 1000)

    async def run(self, kafka: AIOKafkaConsumer, raw: RawFetcher) -> None:
        """Poll, handle, commit, until the consumer is stopped (the service's consume loop).

        ``raw`` reads what aiokafka cannot decode (:mod:`.fetch`); give it the same
        connection options as ``kafka``.
        """
        fetch = SafeFetch(kafka, raw, max_records=self.max_batch)
        try:
            await self._loop(kafka, fetch)
        except asyncio.CancelledError:
            await self._final_commit(kafka)  # the service stopping: what has an outcome is not delivered again
            raise
        finally:
            self._abandon_commit()
            await fetch.close()

    async def _loop(self, kafka: AIOKafkaConsumer, fetch: SafeFetch) -> None:
        backoff = 0.5
        while True:
            try:
                fetched = await fetch.getmany(timeout_ms=self._poll_timeout_ms())
            except ConsumerStoppedError:
                return
            except KafkaError as exc:  # the broker or the connection, not a record: try again
                log.warning("consumer.fetch_failed", error=type(exc).__name__, retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            if fetched.records or fetched.undecodable:
                await self._settle(kafka, fetched)
            # Idle (nothing fetched) commits what is pending at once; busy, once per interval.
            await self._commit_pending(kafka, due=not (fetched.records or fetched.undecodable))

    def _poll_timeout_ms(self) -> int:
        """The poll's wait: shorter while offsets are pending, so an idle consumer commits them when due."""
        if not self._pending:
            return POLL_TIMEOUT_MS
        left = self._last_commit + self._commit_interval_s - time.monotonic()
        return max(0, min(POLL_TIMEOUT_MS, int(left * 1000)))

    async def _commit_pending(self, kafka: AIOKafkaConsumer, *, due: bool = False) -> None:
        """Start a commit of the pending offsets when one is due (after the one in flight: in order)."""
        if not self._pending:
            return
        if not due and time.monotonic() - self._last_commit < self._commit_interval_s:
            return
        await self._committed_offsets()
        offsets, self._pending = self._pending, {}
        self._last_commit = time.monotonic()
        self._committing = asyncio.create_task(
            self._commit(kafka, {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}),
            name="consumer-commit",
        )

    async def _final_commit(self, kafka: AIOKafkaConsumer) -> None:
        """The commit in flight and then the pending offsets, within a bound: a broker that does not answer
        costs the stop no more than that (what stays uncommitted is delivered again, a no-op)."""
        try:
            async with asyncio.timeout(FINAL_COMMIT_TIMEOUT_S):
                await self._commit_pending(kafka, due=True)
                await self._committed_offsets()
        except (TimeoutError, KafkaError, IllegalStateError, ConsumerStoppedError) as exc:
            log.warning("consumer.final_commit_failed", error=type(exc).__name__)

    async def _settle(self, kafka: AIOKafkaConsumer, fetched: Fetched) -> None:
        """Give every fetched record an outcome, then commit just past them; else rewind."""
        done: dict[TopicPartition, int] = {}
        self.unfinished = None
        try:
            for bad in fetched.undecodable:
                await self._dead_letter_undecodable(bad)
                done[TopicPartition(bad.topic, bad.partition)] = bad.last_offset + 1
            await self.handle_batch(fetched.records)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("consumer.batch_failed", error=type(exc).__name__, size=len(fetched.records))
            for tp, offset in self._resume_points(fetched, done).items():
                _seek(kafka, tp, offset)
            await asyncio.sleep(self._retry.backoff_initial_s)
            return
        for record in fetched.records:
            done[TopicPartition(record.topic, record.partition)] = record.offset + 1
        # Committed when due (point 6): after the previous commit (in order, one in flight), and not
        # awaited: the next poll runs meanwhile.
        self._pending.update(done)

    async def _commit(self, kafka: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await kafka.commit(offsets)
        except KafkaError as exc:
            # Rebalanced meanwhile, or the coordinator moved: the next owner gets these again
            # from the last commit, and every inbox makes the second delivery a no-op.
            log.warning("consumer.commit_failed", error=type(exc).__name__, partitions=len(offsets))

    def _abandon_commit(self) -> None:
        """The loop is ending (stopped, cancelled, failed): a commit still in flight is no longer waited for.
        Cancelling our task does not stop aiokafka's request (it shields it), so it may still land, after a
        later commit even; either way it can only leave the committed offset at or behind where it would
        be, and what it covered is delivered again and made a no-op by every inbox."""
        committing, self._committing = self._committing, None
        if committing is None:
            return
        if not committing.done():
            committing.cancel()
        elif not committing.cancelled() and (exc := committing.exception()) is not None:
            log.warning("consumer.commit_failed", error=type(exc).__name__)

    async def _committed_offsets(self) -> None:
        """Until the commit in flight, if any, is done (it logs its own failure)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    def _resume_points(self, fetched: Fetched, done: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Where each partition starts again after a failed batch: its first record without an outcome."""
        points: dict[TopicPartition, int] = {}
        for bad in fetched.undecodable:
            tp = TopicPartition(bad.topic, bad.partition)
            if tp not in done:
                points[tp] = bad.offset  # its dead letter was not sent: find it again
        unfinished = self.unfinished
        if unfinished is None:  # failed before any record had an outcome
            unfinished = {}
            for record in fetched.records:
                unfinished.setdefault(TopicPartition(record.topic, record.partition), record.offset)
        for tp, offset in unfinished.items():
            points.setdefault(tp, offset)
        return points

    async def _dead_letter_undecodable(self, bad: Undecodable) -> None:
        await self._dead_letters.send_undecodable(
            bad.topic,
            bad.partition,
            bad.offset,
            raw=bad.raw,
            detail={"error": bad.error, "attempts": bad.attempts, "last_offset": bad.last_offset},
        )
        self._undecodable.add(1, {"topic": bad.topic})
        self.undecodable_skipped += 1

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
        return [_outcome_of(d) for d in deliveries]

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
        # A producer whose clock runs ahead is flagged (under the event's span, like every line
        # about an event), never a reason to refuse its events.
        with trace.use_span(d.span, end_on_exit=False):
            note_clock_skew(envelope, record.topic)
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
        to_release: set[uuid.UUID] = set()
        try:
            async with self._uow.batch() as batch:
                envelopes = [(d, _envelope_of(d)) for d in ready]
                # One statement: the parked patients among these, and the others' events claimed.
                claim = await batch.claim_inbox_unless_parked([(env, d.record.topic) for d, env in envelopes])
                parked, claimed = claim.parked, claim.claimed
                for d, envelope in envelopes:
                    if envelope.patient_id in parked:
                        if await self._park_behind(batch.session, d, parked[envelope.patient_id]):
                            to_release.add(envelope.patient_id)
                        outcomes.append(Outcome.parked)
                        continue
                    if envelope.event_id not in claimed:
                        outcomes.append(Outcome.duplicate)
                        continue
                    claimed.discard(envelope.event_id)  # the same event twice in one batch runs once
                    with self._scope(d):
                        tx = batch.transaction(envelope)
                        for handler in d.handlers:
                            await handler(d.event, tx)
                        batch.stage(tx)
                        self._failure_points.reach("consumer.before_commit", envelope.type)
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
        for patient_id in to_release:
            await self.release(patient_id)

    def _committed(self, d: Delivery, outcome: Outcome) -> Outcome:
        assert d.envelope is not None
        if outcome is Outcome.parked:
            log.warning(
                "event.parked", event_type=d.envelope.type, event_id=str(d.envelope.event_id), reason=BEHIND_PARKED
            )
            return outcome
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
                    return await self._park_and_dead_letter(d, HANDLER_ERROR, exc)
                if is_unavailable(exc):
                    # The database is away, the message is not at fault: wait for the database
                    # however long it takes (at the last attempt's backoff), rather than dead-letter
                    # every message in flight during a restart.
                    attempt = min(attempt, self._retry.max_attempts - 1)
                elif attempt >= self._retry.max_attempts:
                    bound.error("event.retries_exhausted", error=type(exc).__name__, attempts=attempt)
                    return await self._park_and_dead_letter(d, RETRIES_EXHAUSTED, exc)
                delay = self._retry.delay(attempt)
                bound.warning("event.retrying", error=type(exc).__name__, attempt=attempt, delay_s=round(delay, 3))
                await asyncio.sleep(delay)

    async def _process(self, d: Delivery) -> Outcome:
        envelope = d.envelope
        assert envelope is not None
        release = False
        async with self._uow.handling(envelope) as tx:
            claim = await tx.claim_inbox_unless_parked(envelope, d.record.topic)
            if parked := claim.parked.get(envelope.patient_id):
                release = await self._park_behind(tx.session, d, parked)
                outcome = Outcome.parked
            elif envelope.event_id not in claim.claimed:
                outcome = Outcome.duplicate
            else:
                for handler in d.handlers:
                    await handler(d.event, tx)
                self._failure_points.reach("consumer.before_commit", envelope.type)
                outcome = Outcome.processed
        outcome = self._committed(d, outcome)
        if release:
            await self.release(envelope.patient_id)
        return outcome

    async def _park_behind(self, session: AsyncSession, d: Delivery, parked: Parked) -> bool:
        """Park the event behind the patient's parked ones (once); True when it is the one that holds
        them arriving again (a replay after a fix): then the patient is released after this commit."""
        assert d.envelope is not None
        if d.envelope.event_id not in parked.events:
            await self.parking.park(session, d.envelope, d.record, BEHIND_PARKED)
        return d.envelope.event_id == parked.head

    async def _park_and_dead_letter(self, d: Delivery, reason: str, exc: Exception) -> Outcome:
        """The patient's later events wait behind this one (parked first: the durable part), and the
        operator sees it among the dead letters."""
        assert d.envelope is not None
        async with self._uow.transaction() as tx:
            await self.parking.park(tx.session, d.envelope, d.record, reason, type(exc).__name__)
        return await self._dead_letter(d, reason, {**_describe(exc), "parked": True})

    async def release(self, patient_id: uuid.UUID) -> Released:
        """Apply the patient's parked events in order, each in its own transaction; stop at one that fails."""
        released = 0
        while True:
            try:
                head = await self._release_head(patient_id)
            except Exception as exc:
                log.warning("parked.release_stopped", error=type(exc).__name__, released=released)
                return {"released": released, "done": False, "error": type(exc).__name__}
            if head is None:
                if released:
                    log.info("parked.released", released=released)
                return {"released": released, "done": True, "error": None}
            released += 1

    async def _release_head(self, patient_id: uuid.UUID) -> ParkedEvent | None:
        head: ParkedEvent | None = None
        try:
            async with self._uow.transaction() as tx:
                head = await self.parking.head(tx.session, patient_id)
                if head is None:
                    return None
                envelope = Envelope.model_validate_json(head.value)
                handled = tx.caused_by(envelope)
                with structlog.contextvars.bound_contextvars(event_id=str(envelope.event_id), event_type=envelope.type):
                    if await tx.claim_inbox(envelope, head.topic):
                        event = CATALOG[envelope.type].model_validate(
                            upcast(envelope.type, envelope.version, envelope.payload)
                        )
                        for handler in self._handlers.get(envelope.type, []):
                            await handler(event, handled)
                await self.parking.unpark(tx.session, head)
        except Exception as exc:
            if head is not None:
                await self.parking.failed_again(head, type(exc).__name__)
            raise
        return head

    async def _dead_letter(self, d: Delivery, reason: str, detail: dict[str, object]) -> Outcome:
        await self._dead_letters.send(d.record, reason=reason, detail=detail, envelope=d.envelope)
        return Outcome.dead_lettered


def _envelope_of(d: Delivery) -> Envelope:
    """The envelope of a delivery ``_open`` neither rejected nor skipped (it always has one)."""
    if d.envelope is None:
        raise AssertionError("a delivery without an envelope was never ready")
    return d.envelope


def _outcome_of(d: Delivery) -> Outcome:
    """A delivery's outcome once handle_batch returns normally (each one has been given one)."""
    if d.outcome is None:
        raise AssertionError("a delivery left without an outcome")
    return d.outcome


def _describe(exc: BaseException) -> dict[str, object]:
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
