"""Minimum necessary (ADR 0015) in one service that learns its care relations from events: dosing, through its
own routes and handlers (tests/service_harness.py: no Kafka, real PostgreSQL).

A licence in the patient's state is needed and no longer enough: a clinician reaches the patient as a member
of the care team (CareTeamChanged) or as the assignee of an open review (ClinicianReviewAssigned until
ClinicianReviewResolved). Each check leaves one audit row; an allowed one says on what basis. Lists across
patients show the clinician's related patients only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carecoord_contracts.common import AssignmentBasis, ReviewDecision, ReviewPriority
from carecoord_contracts.safety import ClinicianReviewAssigned, ClinicianReviewResolved
from carecoord_contracts.scheduling import CareTeamChanged
from carecoord_devstack.stack import Stack
from carecoord_dosing import outcome_tracking
from carecoord_dosing.models import audit, jurisdictions
from carecoord_shared.auth import ListScope
from tests.auth import SERVICE_TOKEN, clinician_token, patient_token
from tests.care import join_care_team
from tests.plans import COURSE
from tests.service_harness import ServiceHarness

STATE = "CO"
NOT_RELATED = "not on the patient's care team, not on call for their state and not assigned a review of theirs"


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_care_relations") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def resident(dosing: ServiceHarness) -> uuid.UUID:
    """A patient living in STATE, with a plan (so a read that is let through answers 200)."""
    patient_id = uuid.uuid4()
    async with dosing.uow.sessions.begin() as session:
        await session.execute(jurisdictions.insert().values(patient_id=patient_id, state_of_residence=STATE))
    plan = await dosing.http.post("/v1/plans", json={"patient_id": str(patient_id), "clinician_id": "dr-a", **COURSE})
    assert plan.status_code == 201, plan.text
    return patient_id


async def last_audit(dosing: ServiceHarness, actor: str) -> Any:
    rows = await dosing.rows(
        select(audit.c.action, audit.c.resource, audit.c.patient_id, audit.c.outcome, audit.c.basis)
        .where(audit.c.actor == actor)
        .order_by(audit.c.id)
    )
    assert rows, f"no audit row for {actor}"
    return rows[-1]


def clinician(dosing: ServiceHarness, subject: str) -> Any:
    return dosing.client(clinician_token(subject, [STATE]))


async def test_a_licensed_clinician_outside_the_care_team_is_refused_with_the_reason(dosing: ServiceHarness) -> None:
    patient_id = await resident(dosing)
    outsider = f"dr-outside-{uuid.uuid4().hex[:6]}"
    await join_care_team(dosing, patient_id, "dr-somebody-else")

    refused = await clinician(dosing, outsider).get(f"/v1/patients/{patient_id}/plan")

    assert refused.status_code == 403, refused.text
    assert NOT_RELATED in refused.json()["detail"]
    assert tuple(await last_audit(dosing, outsider)) == ("read", "plan", patient_id, "denied", None)


async def test_a_care_team_member_is_let_through_and_the_audit_row_says_why(dosing: ServiceHarness) -> None:
    patient_id = await resident(dosing)
    prescriber, therapist = f"dr-rx-{uuid.uuid4().hex[:6]}", f"dr-tx-{uuid.uuid4().hex[:6]}"
    assert (await clinician(dosing, prescriber).get(f"/v1/patients/{patient_id}/plan")).status_code == 403

    team = CareTeamChanged(prescriber_id=prescriber, therapist_id=therapist, reason="initial_evaluation_booked")
    await dosing.deliver(team, patient_id=patient_id, producer="scheduling")

    for who, basis in ((prescriber, "care_team:prescriber"), (therapist, "care_team:therapist")):
        allowed = await clinician(dosing, who).get(f"/v1/patients/{patient_id}/plan")
        assert allowed.status_code == 200, allowed.text
        assert tuple(await last_audit(dosing, who)) == ("read", "plan", patient_id, "allowed", basis)

    # A relation does not stand in for the licence: the prescriber's token without the patient's state.
    unlicensed = await dosing.client(clinician_token(prescriber, ["NY"])).get(f"/v1/patients/{patient_id}/plan")
    assert unlicensed.status_code == 403 and "not licensed" in unlicensed.json()["detail"], unlicensed.text

    # The team is replaced whole: a member left out of the next change no longer reaches the patient.
    changed = CareTeamChanged(prescriber_id=prescriber, reason="changed_by_staff", changed_by="operator-1")
    await dosing.deliver(changed, patient_id=patient_id, producer="scheduling")
    refused = await clinician(dosing, therapist).get(f"/v1/patients/{patient_id}/plan")
    assert refused.status_code == 403 and NOT_RELATED in refused.json()["detail"], refused.text


async def test_a_reviews_assignee_reaches_the_patient_until_it_is_resolved(dosing: ServiceHarness) -> None:
    patient_id = await resident(dosing)
    on_call = f"dr-oncall-{uuid.uuid4().hex[:6]}"
    review_id = uuid.uuid4()
    assigned = ClinicianReviewAssigned(
        review_id=review_id,
        assignee_id=on_call,
        basis=AssignmentBasis.on_call,
        escalation_level=1,
        priority=ReviewPriority.urgent,
        due_at=datetime.now(UTC) + timedelta(hours=1),
    )
    await dosing.deliver(assigned, patient_id=patient_id, producer="safety")

    allowed = await clinician(dosing, on_call).get(f"/v1/patients/{patient_id}/plan")
    assert allowed.status_code == 200, allowed.text
    assert (await last_audit(dosing, on_call)).basis == "assigned:on_call"

    resolved = ClinicianReviewResolved(review_id=review_id, decision=ReviewDecision.resume, resolved_by=on_call)
    await dosing.deliver(resolved, patient_id=patient_id, producer="safety")
    assert (await clinician(dosing, on_call).get(f"/v1/patients/{patient_id}/plan")).status_code == 403


async def test_the_patient_and_a_service_have_their_own_basis(dosing: ServiceHarness) -> None:
    patient_id = await resident(dosing)
    patient_subject = f"patient-{uuid.uuid4().hex[:6]}"
    own = await dosing.client(patient_token(patient_id, patient_subject)).get(f"/v1/patients/{patient_id}/plan")
    assert own.status_code == 200, own.text
    assert (await last_audit(dosing, patient_subject)).basis == "self"
    # The service token's plan creation in resident(): its audit row's basis.
    [service_row] = await dosing.rows(
        select(audit.c.basis).where(audit.c.patient_id == patient_id, audit.c.action == "create")
    )
    assert service_row.basis == "service"


async def test_a_list_across_patients_shows_the_clinicians_related_patients_only(dosing: ServiceHarness) -> None:
    mine, not_mine = await resident(dosing), await resident(dosing)
    me = f"dr-list-{uuid.uuid4().hex[:6]}"
    await join_care_team(dosing, mine, me)
    await join_care_team(dosing, not_mine, "dr-somebody-else")

    async with dosing.uow.sessions() as session:
        scoped = await outcome_tracking.load_facts(session, scope=ListScope(clinician_id=me, states=frozenset({STATE})))
        elsewhere = await outcome_tracking.load_facts(
            session, scope=ListScope(clinician_id=me, states=frozenset({"NY"}))
        )
        everyone = await outcome_tracking.load_facts(session)

    assert set(scoped) == {mine}
    assert elsewhere == {}, "a relation does not stand in for the licence"
    assert {mine, not_mine} <= set(everyone)
    # Over HTTP: the program's figures say whose patients they count.
    program = await clinician(dosing, me).get("/v1/outcomes")
    assert program.status_code == 200, program.text
    assert program.json()["scope"].startswith("the caller's patients")
    assert (await last_audit(dosing, me))[3:] == ("allowed", "related_patients")
