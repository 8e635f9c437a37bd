"""Outbox and inbox pruning on real PostgreSQL: what goes, what stays, and what is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, select

from carecoord_contracts import topics_consumed_by
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.retention import Retention
from carecoord_shared.messaging.tables import messaging_tables
from carecoord_shared.persistence import create_engine, create_sessions

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def envelope_row(sent_at: datetime | None, created_at: datetime) -> dict[str, object]:
    return {
        "event_id": uuid.uuid4(),
        "topic": "safety.holds",
        "key": str(uuid.uuid4()),
        "event_type": "X",
        "envelope": {},
        "created_at": created_at,
        "sent_at": sent_at,
    }


async def test_prunes_sent_outbox_rows_and_old_inbox_rows_only(stack: Stack) -> None:
    url = await scratch_database(stack, "retentiontest", "safety")
    metadata = MetaData()
    tables = messaging_tables(metadata)
    engine = create_engine(url)
    sessions = create_sessions(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        old, recent = NOW - timedelta(days=40), NOW - timedelta(days=1)
        rows = {
            "old sent": envelope_row(old, old),
            "old unsent": envelope_row(None, old),  # stuck behind a broker outage: must still go out
            "recent sent": envelope_row(recent, recent),
        }
        inbox = {"old": uuid.uuid4(), "recent": uuid.uuid4()}
        async with sessions.begin() as s:
            await s.execute(tables.outbox.insert(), list(rows.values()))
            await s.execute(
                tables.inbox.insert(),
                [
                    {"event_id": inbox["old"], "event_type": "X", "topic": "t", "processed_at": old},
                    {"event_id": inbox["recent"], "event_type": "X", "topic": "t", "processed_at": recent},
                ],
            )

        retention = Retention(
            sessions, tables, sent_outbox_days=7, inbox_days=37, consumed=topics_consumed_by("safety"), batch_size=1
        )
        assert await retention.prune_once(NOW) == (1, 1)
        assert await retention.prune_once(NOW) == (0, 0)

        async with sessions() as s:
            left = set((await s.execute(select(tables.outbox.c.event_id))).scalars())
            inbox_left = set((await s.execute(select(tables.inbox.c.event_id))).scalars())
        assert left == {rows["old unsent"]["event_id"], rows["recent sent"]["event_id"]}
        assert inbox_left == {inbox["recent"]}
    finally:
        await engine.dispose()


def test_an_inbox_retention_shorter_than_a_consumed_topic_is_refused() -> None:
    consumed = topics_consumed_by("dosing")
    with pytest.raises(ValueError, match="could be delivered again"):
        Retention(None, None, sent_outbox_days=7, inbox_days=10, consumed=consumed)  # type: ignore[arg-type]
