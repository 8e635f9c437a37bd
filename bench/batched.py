"""A4b: a prototype of the next fix, to size it; not the services' code path.

The same work as A4 per event (validation, a span, the inbox claim, a state
row, an outbox row, the relay publishing), but one PostgreSQL transaction and
one offset commit per fetched batch instead of per event. The gap between A4
and A4b is what batching the database work in EventConsumer could buy; what
it would have to keep (per-message retry and dead-lettering, by falling back
to one transaction per message when the batch's fails) is not built here.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from carecoord_shared.contracts import CATALOG, upcast
from carecoord_shared.contracts.safety import SideEffectReported
from carecoord_shared.messaging.relay import OutboxRelay
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_sessions
from carecoord_shared.telemetry import tracer

from .hop import REPORTS, TABLES, reset_tables

if TYPE_CHECKING:
    from .arms import Clock, Context

MAX_BATCH = 200


async def a4b_batched_hop(ctx: Context, n: int) -> Clock:
    from .arms import TIMEOUT_S, Clock, broker, raw_consumer, validate

    clock = Clock(n)
    ctx.telemetry()
    engine = await ctx.engine()
    await reset_tables(engine)
    sessions = create_sessions(engine)
    kafka = broker(ctx, telemetry=True)

    async def publish(topic: str, value: bytes, key: bytes, headers: dict[str, str]) -> asyncio.Future:
        future = await kafka.publish(value, topic, key=key, headers=headers, no_confirm=True)
        future.add_done_callback(lambda f: f.exception() or clock.tick())
        return future

    relay = OutboxRelay(sessions, TABLES, publish, service="safety")
    uow = UnitOfWork(sessions, TABLES, "safety", on_commit=relay.wake)
    consumer = raw_consumer(ctx.bootstrap, "a4b")
    await kafka.start()
    await consumer.start()
    relay_task = asyncio.create_task(relay.run())

    async def loop() -> None:
        while not clock.finished.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                continue
            clock.start(len(records))
            async with uow.transaction() as tx:
                for record in records:
                    with tracer().start_as_current_span(f"handle {record.topic}"):
                        envelope = validate(record)
                        event = CATALOG[envelope.type].model_validate(upcast(envelope.type, envelope.version, envelope.payload))
                        tx.cause = envelope
                        if not await tx.claim_inbox(envelope, record.topic):
                            continue
                        await tx.session.execute(
                            REPORTS.insert().values(
                                report_id=event.report_id, patient_id=envelope.patient_id, grade=event.grade,
                                first_symptom=event.symptoms[0],
                            )
                        )
                        tx.emit(
                            SideEffectReported(
                                report_id=event.report_id, symptoms=event.symptoms, grade=event.grade,
                                escalated=event.grade >= 3, rule_version="bench",
                            ),
                            patient_id=envelope.patient_id,
                        )
            await consumer.commit()

    consume = asyncio.create_task(loop())
    try:
        await asyncio.wait_for(clock.finished.wait(), TIMEOUT_S)
    finally:
        consume.cancel()
        relay.stop()
        await asyncio.wait_for(relay_task, 10)
        await consumer.stop()
        await kafka.stop()
    return clock
