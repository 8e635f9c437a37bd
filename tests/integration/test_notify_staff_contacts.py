"""The staff directory's contact routes in engagement: who keeps it, what a body may say, the audit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from carecoord_devstack.stack import Stack
from carecoord_engagement.models import audit
from tests.auth import clinician_token, operator_token, patient_token
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def engagement(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "engagement", database="engagement_staff_it", notify_enabled=False) as h:
        yield h


def _staff() -> str:
    return f"dr-{uuid.uuid4().hex[:8]}"


async def test_an_operator_sets_a_contact_and_reads_it_back_and_both_are_audited(engagement: ServiceHarness) -> None:
    staff, operator = _staff(), f"op-{uuid.uuid4().hex[:6]}"
    client = engagement.client(operator_token(operator))
    put = await client.put(
        f"/v1/staff/{staff}/contact", json={"email": f"{staff}@clinic.example", "phone": "+1 303 555 0101"}
    )
    assert put.status_code == 200, put.text
    assert (put.json()["email"], put.json()["phone"], put.json()["updated_by"]) == (
        f"{staff}@clinic.example",
        "+1 303 555 0101",
        operator,
    )
    # The whole contact each time: a PUT without the phone clears it.
    assert (
        await client.put(f"/v1/staff/{staff}/contact", json={"email": f"{staff}@clinic.example"})
    ).status_code == 200
    got = await client.get(f"/v1/staff/{staff}/contact")
    assert (got.status_code, got.json()["phone"]) == (200, None)
    rows = await engagement.rows(
        select(audit.c.action, audit.c.resource, audit.c.resource_id, audit.c.outcome).where(audit.c.actor == operator)
    )
    assert [tuple(r) for r in rows] == [
        ("update", "staff-contact", staff, "allowed"),
        ("update", "staff-contact", staff, "allowed"),
        ("read", "staff-contact", staff, "allowed"),
    ]


async def test_a_clinician_keeps_their_own_contact_only_and_a_patient_none(engagement: ServiceHarness) -> None:
    me, colleague = _staff(), _staff()
    mine = engagement.client(clinician_token(me, ["CO"]))
    assert (await mine.put(f"/v1/staff/{me}/contact", json={"phone": "+1 720 555 0100"})).status_code == 200
    assert (await mine.get(f"/v1/staff/{me}/contact")).status_code == 200
    refused = await mine.put(f"/v1/staff/{colleague}/contact", json={"phone": "+1 720 555 0100"})
    assert refused.status_code == 403 and "own contact" in refused.json()["detail"]
    assert (await mine.get(f"/v1/staff/{colleague}/contact")).status_code == 403
    patient = engagement.client(patient_token(uuid.uuid4()))
    assert (await patient.get(f"/v1/staff/{me}/contact")).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": None, "phone": None},
        {"email": "not-an-address"},
        {"phone": "call me"},
        {"email": "a@b.co", "pager": "1"},
    ],
    ids=["empty", "both-null", "bad-email", "bad-phone", "unknown-field"],
)
async def test_a_body_without_a_valid_address_is_refused_with_422(
    engagement: ServiceHarness, body: dict[str, object]
) -> None:
    response = await engagement.client(operator_token()).put(f"/v1/staff/{_staff()}/contact", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_unknown_staff_members_contact_is_404(engagement: ServiceHarness) -> None:
    assert (await engagement.client(operator_token()).get(f"/v1/staff/{_staff()}/contact")).status_code == 404
