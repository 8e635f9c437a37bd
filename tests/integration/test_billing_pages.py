"""Billing's lists a page at a time from a live billing service: a patient's charges, claims and invoices
oldest first and the denial work queue by reason code then oldest, each row exactly once across pages (rows
created in the same instant included: the id decides), and a cursor the list did not issue refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from carecoord_billing.models import charges, claims, denials, interchanges, invoices
from carecoord_devstack.stack import Stack
from tests.auth import SERVICE_TOKEN, patient_token
from tests.paging import all_pages, altered, assert_refused_cursor, first_cursor
from tests.service_harness import ServiceHarness

START = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
async def billing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "billing", database="billing_pages_it") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


def _at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


async def _insured_history(billing: ServiceHarness, patient_id: uuid.UUID, n: int) -> list[dict[str, Any]]:
    """``n`` charges, each claimed, created out of order with several in one instant (as a batch is):
    the rows inserted, oldest first as the lists must answer them."""
    minutes = [(i * 7) % 3 for i in range(n)]  # 0, 1, 2, 0, 1, ...: three instants, ties in each
    rows = [
        {"charge_id": uuid.uuid4(), "claim_id": uuid.uuid4(), "created_at": _at(m), "claim_created_at": _at(10 - m)}
        for m in minutes
    ]
    async with billing.uow.sessions.begin() as session:
        control = (
            await session.execute(
                insert(interchanges).values(transaction="837P").returning(interchanges.c.control_number)
            )
        ).scalar_one()
        for r in rows:
            await session.execute(
                insert(charges).values(
                    charge_id=r["charge_id"],
                    appointment_id=uuid.uuid4(),
                    patient_id=patient_id,
                    appointment_type="follow_up",
                    service_date=date(2026, 11, 2),
                    place_of_service="02",
                    modifiers=["95"],
                    lines=[{"cpt": "99214", "cents": 22000}],
                    amount_cents=22000,
                    self_pay=False,
                    payer_id="ACME1",
                    fee_schedule_version="test",
                    status="claimed",
                    created_at=r["created_at"],
                )
            )
            await session.execute(
                insert(claims).values(
                    claim_id=r["claim_id"],
                    claim_number=uuid.uuid4().hex[:20],
                    charge_id=r["charge_id"],
                    patient_id=patient_id,
                    payer_id="ACME1",
                    interchange_control_number=control,
                    total_cents=22000,
                    status="denied",
                    created_at=r["claim_created_at"],
                )
            )
    return rows


async def test_a_patients_charges_and_claims_page_oldest_first_every_row_once(billing: ServiceHarness) -> None:
    patient_id, other = uuid.uuid4(), uuid.uuid4()
    rows = await _insured_history(billing, patient_id, 7)
    await _insured_history(billing, other, 2)
    reader = billing.client(patient_token(patient_id))

    pages = await all_pages(reader, f"/v1/patients/{patient_id}/charges")
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    listed = [c["charge_id"] for p in pages for c in p]
    oldest_first = sorted(rows, key=lambda r: (r["created_at"], r["charge_id"]))
    assert listed == [str(r["charge_id"]) for r in oldest_first], "every charge once, oldest first, the id in a tie"
    assert [c["created_at"] for p in pages for c in p] == sorted(c["created_at"] for p in pages for c in p)

    claimed = [c["claim_id"] for p in await all_pages(reader, f"/v1/patients/{patient_id}/claims") for c in p]
    by_claim_time = sorted(rows, key=lambda r: (r["claim_created_at"], r["claim_id"]))
    assert claimed == [str(r["claim_id"]) for r in by_claim_time], "the claims in their own creation order"

    cursor = await first_cursor(reader, f"/v1/patients/{patient_id}/charges")
    await assert_refused_cursor(reader, f"/v1/patients/{patient_id}/charges", altered(cursor))
    await assert_refused_cursor(reader, f"/v1/patients/{patient_id}/claims", cursor)  # another list's cursor


async def test_a_patients_invoices_page_oldest_issued_first(billing: ServiceHarness) -> None:
    patient_id = uuid.uuid4()
    issued = [_at(m) for m in (30, 10, 20, 10, 30)]
    made = [{"invoice_id": uuid.uuid4(), "issued_at": at} for at in issued]
    async with billing.uow.sessions.begin() as session:
        await session.execute(
            insert(invoices),
            [
                {**m, "patient_id": patient_id, "kind": "visit", "amount_cents": 32000, "due_on": date(2026, 12, 2)}
                for m in made
            ],
        )
    pages = await all_pages(billing.http, f"/v1/patients/{patient_id}/invoices")
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [i["invoice_id"] for p in pages for i in p]
    assert listed == [str(m["invoice_id"]) for m in sorted(made, key=lambda m: (m["issued_at"], m["invoice_id"]))]
    cursor = await first_cursor(billing.http, f"/v1/patients/{patient_id}/invoices")
    await assert_refused_cursor(billing.http, f"/v1/patients/{patient_id}/invoices", altered(cursor))


async def test_the_denial_queue_pages_by_reason_code_then_oldest_open_denials_only(billing: ServiceHarness) -> None:
    patient_id = uuid.uuid4()
    rows = await _insured_history(billing, patient_id, 6)
    queued = [
        {"reason_code": code, "denied_at": _at(m), "status": status}
        for code, m, status in (
            ("50", 5, "open"),
            ("16", 9, "open"),
            ("50", 1, "open"),
            ("16", 9, "open"),
            ("16", 2, "worked"),
            ("50", 3, "open"),
        )
    ]
    made = [
        {
            **q,
            "denial_id": uuid.uuid4(),
            "claim_id": r["claim_id"],
            "patient_id": patient_id,
            "group_code": "CO",
            "amount_cents": 22000,
        }
        for q, r in zip(queued, rows, strict=True)
    ]
    async with billing.uow.sessions.begin() as session:
        await session.execute(insert(denials), made)

    pages = await all_pages(billing.http, "/v1/denials")
    listed = [d for p in pages for d in p]
    assert [len(p) for p in pages] == [2, 2, 1]
    expected = sorted(
        (m for m in made if m["status"] == "open"), key=lambda m: (m["reason_code"], m["denied_at"], m["denial_id"])
    )
    assert [d["denial_id"] for d in listed] == [str(m["denial_id"]) for m in expected], "open ones once, in order"

    cursor = await first_cursor(billing.http, "/v1/denials")
    await assert_refused_cursor(billing.http, "/v1/denials", altered(cursor))
    charges_cursor = await first_cursor(billing.http, f"/v1/patients/{patient_id}/charges")
    await assert_refused_cursor(billing.http, "/v1/denials", charges_cursor)
