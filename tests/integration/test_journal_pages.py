"""The events a service received about a patient (every service's GET /v1/patients/{id}/received-events), a page
at a time in the order they happened, ties broken by event id; on scheduling's harness, rows as its consumer writes them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from carecoord_devstack.stack import Stack
from carecoord_scheduling.models import journal
from tests.auth import SERVICE_TOKEN
from tests.paging import all_pages, altered, assert_refused_cursor, first_cursor
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_journal_pages") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def test_received_events_page_in_the_order_they_happened(scheduling: ServiceHarness) -> None:
    patient, other = uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    # Five events, two of them at the same instant, written out of order; one about another patient.
    times = [start + timedelta(minutes=m) for m in (3, 0, 1, 1, 2)]
    rows = [
        {
            "event_id": uuid.uuid4(),
            "patient_id": patient,
            "event_type": f"E{i}",
            "producer": "safety",
            "occurred_at": at,
        }
        for i, at in enumerate(times)
    ]
    rows.append({**rows[0], "event_id": uuid.uuid4(), "patient_id": other})
    async with scheduling.uow.sessions.begin() as session:
        await session.execute(journal.insert(), rows)

    path = f"/v1/patients/{patient}/received-events"
    pages = await all_pages(scheduling.http, path)
    listed = [e for page in pages for e in page]
    mine = sorted((r for r in rows if r["patient_id"] == patient), key=lambda r: (r["occurred_at"], r["event_id"]))
    assert [e["event_id"] for e in listed] == [str(r["event_id"]) for r in mine], "each once, oldest first"
    assert [len(p) for p in pages] == [2, 2, 1]
    await assert_refused_cursor(scheduling.http, path, altered(await first_cursor(scheduling.http, path)))
