"""Paging a list on PostgreSQL: every row exactly once, in order, while rows arrive in front of the reader."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Uuid, insert, select

from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, page_of, paginate
from carecoord_shared.persistence import create_engine

metadata = MetaData()
items = Table(
    "paged_items",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
)
# The worklist's shape: highest rank first, then earliest due, the id breaking ties.
ORDER = Ordering("items", (SortKey(items.c.rank, descending=True), SortKey(items.c.due_at), SortKey(items.c.id)))


def _rows(n: int, rng: random.Random) -> list[dict[str, object]]:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    # Few distinct ranks and due times: many ties, so the later keys decide.
    return [
        {
            "id": uuid.UUID(int=rng.getrandbits(128)),
            "rank": rng.randint(1, 3),
            "due_at": start + timedelta(hours=rng.randint(0, 4)),
        }
        for _ in range(n)
    ]


def _key(row: dict[str, object]) -> tuple[object, ...]:
    return (-row["rank"], row["due_at"], row["id"])  # type: ignore[operator]


@pytest.mark.asyncio
async def test_paging_returns_every_row_once_in_order_while_rows_arrive_in_front(stack: Stack) -> None:
    engine = create_engine(await scratch_database(stack, "pagingtest", "safety"))
    rng = random.Random(23)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            first = _rows(137, rng)
            await conn.execute(insert(items), first)
        seen: list[dict[str, object]] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = PageRequest(limit=10, cursor=cursor)
            async with engine.connect() as conn:
                read = [r._asdict() for r in await conn.execute(paginate(select(items), ORDER, page))]
            body = page_of(read, ORDER, page)
            seen += body["items"]
            pages += 1
            if pages == 3:
                # Rows sorting before the reader's position (rank 4 is first): an offset would now skip
                # or repeat rows; a position does neither.
                async with engine.begin() as conn:
                    await conn.execute(insert(items), [r | {"rank": 4} for r in _rows(15, rng)])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 14
        assert [r["id"] for r in seen] == [r["id"] for r in sorted(first, key=_key)]
    finally:
        await engine.dispose()
