"""A review resolved with a dose change, and the pre-dose reading that authorises a session,
against real PostgreSQL through the services' own operations (dosing's plans, safety's reviews).

Events are delivered as the consumer delivers them: claimed in the inbox, then handled, in
one transaction, so a redelivery is seen for what it is."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carecoord_contracts import Envelope
from carecoord_contracts.common import Indication, ReviewDecision, ReviewPriority
from carecoord_contracts.safety import TreatmentHoldReleased, VitalsRecorded
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_dosing import domain, plans
from carecoord_dosing.models import messaging as dosing_messaging
from carecoord_dosing.models import treatment_holds as dosing_holds
from carecoord_dosing.models import treatment_plans
from carecoord_safety import plan_view, reviews
from carecoord_safety.domain.plan_limits import DoseNotAllowed
from carecoord_safety.models import clinician_reviews
from carecoord_safety.models import messaging as safety_messaging
from carecoord_safety.models import treatment_holds as safety_holds
from carecoord_safety.rules import ReviewRequest
from carecoord_shared.errors import RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.plans import sign_treatment_consent
from tests.services import built

dosing_definition = built("dosing")
safety_definition = built("safety")

RULES = domain.load_titration()
NOW = datetime.now(UTC)


async def _uow(stack: Stack, name: str, owner: str, definition: Any, messaging: Any) -> AsyncIterator[UnitOfWork]:
    url = await scratch_database(stack, name, owner)
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
    engine = create_engine(url)
    yield UnitOfWork(create_sessions(engine), messaging, owner)
    await engine.dispose()


@pytest.fixture
async def dosing(stack: Stack) -> AsyncIterator[UnitOfWork]:
    async for uow in _uow(stack, "dosing_review_resolution", "dosing", dosing_definition, dosing_messaging):
        yield uow


@pytest.fixture
async def safety(stack: Stack) -> AsyncIterator[UnitOfWork]:
    async for uow in _uow(stack, "safety_review_resolution", "safety", safety_definition, safety_messaging):
        yield uow


async def deliver(uow: UnitOfWork, envelope: Envelope, handle: Callable[[Transaction], Awaitable[None]]) -> bool:
    async with uow.transaction(cause=envelope) as tx:
        if not await tx.claim_inbox(envelope, "test"):
            return False
        await handle(tx)
    return True


async def outbox(uow: UnitOfWork, messaging: Any, patient: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    async with uow.sessions() as s:
        rows = await s.execute(
            select(messaging.outbox.c.envelope)
            .where(messaging.outbox.c.key == str(patient), messaging.outbox.c.event_type == event_type)
            .order_by(messaging.outbox.c.id)
        )
        return [envelope["payload"] for envelope in rows.scalars()]


# --- dosing: the release carries the dose -------------------------------------------


async def _paused_plan(uow: UnitOfWork, patient: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A plan at 100 mg (maximum 300, step 50), paused by one hold; the patient signed the treatment consent."""
    await sign_treatment_consent(uow, patient)
    async with uow.transaction() as tx:
        plan_id = await plans.create_plan(
            tx,
            patient_id=patient,
            actor="dr-a",
            rules=RULES,
            indication=Indication.depression,
            diagnosis_codes=["F331"],
            starting_dose_mg=100,
            max_dose_mg=300,
            max_step_mg=50,
            planned_sessions=6,
            cadence_days=7,
        )
    async with uow.transaction() as tx:
        await plans.activate_plan(tx, plan_id, actor="dr-a", rules=RULES)
    hold_id, review_id = uuid.uuid4(), uuid.uuid4()
    async with uow.transaction() as tx:
        await plans.open_hold(tx, hold_id=hold_id, patient_id=patient, review_id=review_id, reason="severe_side_effect")
    return plan_id, hold_id, review_id


def _release(patient: uuid.UUID, hold_id: uuid.UUID, review_id: uuid.UUID, dose_mg: int | None) -> Envelope:
    event = TreatmentHoldReleased(
        hold_id=hold_id,
        review_id=review_id,
        decision=ReviewDecision.resume_with_dose_change,
        dose_mg=dose_mg,
        decided_by="dr-lee",
    )
    return Envelope.wrap(event, patient_id=patient, producer="safety")


def _handle_release(envelope: Envelope) -> Callable[[Transaction], Awaitable[None]]:
    event = TreatmentHoldReleased.model_validate(envelope.payload)

    async def handle(tx: Transaction) -> None:
        await plans.release_hold(
            tx,
            hold_id=event.hold_id,
            patient_id=envelope.patient_id,
            decision=event.decision,
            rules=RULES,
            review_id=event.review_id,
            dose_mg=event.dose_mg,
            decided_by=event.decided_by,
        )

    return handle


async def _plan(uow: UnitOfWork, plan_id: uuid.UUID) -> Any:
    async with uow.sessions() as s:
        return (await s.execute(select(treatment_plans).where(treatment_plans.c.plan_id == plan_id))).one()


async def test_a_release_with_a_dose_resumes_the_plan_with_it_approved_by_the_clinician_once(
    dosing: UnitOfWork,
) -> None:
    patient = uuid.uuid4()
    plan_id, hold_id, review_id = await _paused_plan(dosing, patient)
    release = _release(patient, hold_id, review_id, 150)  # one step up, at the edge

    assert await deliver(dosing, release, _handle_release(release))
    plan = await _plan(dosing, plan_id)
    assert (plan.status, plan.approved_dose_mg) == ("active", 150)
    approvals = await outbox(dosing, dosing_messaging, patient, "DoseApproved")
    assert [(a["approved_dose_mg"], a["approved_by"], a.get("review_id")) for a in approvals] == [
        (100, "dr-a", None),
        (150, "dr-lee", str(review_id)),
    ], "the activation's, then the review's, naming the clinician and the review"

    assert not await deliver(dosing, release, _handle_release(release)), "the inbox recognises the redelivery"
    again = _release(patient, hold_id, review_id, 150)  # the same decision in a new envelope (a replay)
    assert await deliver(dosing, again, _handle_release(again))
    assert len(await outbox(dosing, dosing_messaging, patient, "DoseApproved")) == 2, "approved once"
    assert (await _plan(dosing, plan_id)).approved_dose_mg == 150


async def test_a_dose_dosing_refuses_keeps_the_plan_paused_and_says_why(dosing: UnitOfWork) -> None:
    patient = uuid.uuid4()
    plan_id, hold_id, review_id = await _paused_plan(dosing, patient)
    release = _release(patient, hold_id, review_id, 151)  # one mg past one step from 100

    assert await deliver(dosing, release, _handle_release(release))
    plan = await _plan(dosing, plan_id)
    assert (plan.status, plan.approved_dose_mg) == ("paused", 100), "still paused, the old dose untouched"
    async with dosing.sessions() as s:
        hold = (await s.execute(select(dosing_holds).where(dosing_holds.c.hold_id == hold_id))).one()
    assert (hold.status, hold.dose_change_refused) == ("open", "dose_step_above_plan_maximum")
    [refused] = await outbox(dosing, dosing_messaging, patient, "DoseChangeRefused")
    assert refused | {"plan_id": None} == {
        "plan_id": None,
        "hold_id": str(hold_id),
        "review_id": str(review_id),
        "requested_dose_mg": 151,
        "reason": "dose_step_above_plan_maximum",
    }
    assert len(await outbox(dosing, dosing_messaging, patient, "DoseApproved")) == 1, "only the activation's"

    second_review = uuid.uuid4()  # safety's review of the refusal, resolved again
    retry = _release(patient, hold_id, second_review, 150)
    assert await deliver(dosing, retry, _handle_release(retry))
    plan = await _plan(dosing, plan_id)
    assert (plan.status, plan.approved_dose_mg) == ("active", 150)


# --- dosing: the pre-dose reading is the session's ------------------------------------


async def _reading(
    uow: UnitOfWork,
    patient: uuid.UUID,
    appointment: uuid.UUID | None,
    minutes_ago: float,
    *,
    within: bool = True,
    emergency: bool = False,
) -> None:
    measured_at = NOW - timedelta(minutes=minutes_ago)
    event = VitalsRecorded(
        reading_id=uuid.uuid4(),
        systolic=120 if within else 150,
        diastolic=80,
        measured_at=measured_at,
        context="pre_dose",
        appointment_id=appointment,
        within_limits=within,
        rule_version="t",
    )
    envelope = Envelope.wrap(event, patient_id=patient, producer="safety")

    async def handle(tx: Transaction) -> None:
        await plans.record_observation(
            tx,
            kind="vitals",
            observed_at=measured_at,
            context="pre_dose",
            within_limits=within,
            appointment_id=appointment,
            emergency=emergency,
        )

    assert await deliver(uow, envelope, handle)


async def _authorise(uow: UnitOfWork, patient: uuid.UUID, appointment: uuid.UUID) -> plans.Authorisation:
    async with uow.transaction() as tx:
        return await plans.authorise_session(tx, appointment_id=appointment, patient_id=patient, now=NOW, rules=RULES)


async def test_only_a_recent_reading_taken_for_the_session_authorises_it(dosing: UnitOfWork) -> None:
    patient = uuid.uuid4()
    _plan_id, hold_id, review_id = await _paused_plan(dosing, patient)
    resume = Envelope.wrap(
        TreatmentHoldReleased(hold_id=hold_id, review_id=review_id, decision=ReviewDecision.resume),
        patient_id=patient,
        producer="safety",
    )
    assert await deliver(dosing, resume, _handle_release(resume))
    this, other, stale = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    await _reading(dosing, patient, other, 5)
    await _reading(dosing, patient, None, 4)
    assert (await _authorise(dosing, patient, this)).reason == "no_pre_dose_bp_for_session", (
        "another session's, or none's"
    )
    await _reading(dosing, patient, stale, 61)
    assert (await _authorise(dosing, patient, stale)).reason == "pre_dose_bp_too_old"

    await _reading(dosing, patient, this, 20, within=False)  # >= 140/90: the session is held, a repeat is asked for
    assert (await _authorise(dosing, patient, this)).reason == "blood_pressure_out_of_limits"
    await _reading(dosing, patient, this, 8)  # the repeat, within limits: the latest for the session counts
    granted = await _authorise(dosing, patient, this)
    assert granted.authorised and granted.dose_mg == 100

    later = uuid.uuid4()
    await _reading(dosing, patient, later, 10)
    await _reading(dosing, patient, later, 2, within=False)  # a later high repeat overrides a good first reading
    assert (await _authorise(dosing, patient, later)).reason == "blood_pressure_out_of_limits"


# --- safety: the resolution names the dose, checked against the plan ----------------------


async def _review_with_hold(uow: UnitOfWork, patient: uuid.UUID, *, hold: bool = True) -> uuid.UUID:
    request = ReviewRequest(
        reason="severe_side_effect",
        priority=ReviewPriority.urgent,
        due_within=timedelta(hours=4),
        hold=hold,
        triggers=("grade_3",),
        rule_ids=("r",),
    )
    async with uow.transaction() as tx:
        await tx.lock_patient(patient)
        outcome = await reviews.open_or_join(
            tx, request, patient_id=patient, rule_version="t", source_kind="report", source_id=uuid.uuid4(), now=NOW
        )
    return outcome.review_id


async def _plan_view(uow: UnitOfWork, patient: uuid.UUID) -> uuid.UUID:
    plan_id = uuid.uuid4()
    async with uow.transaction() as tx:
        await plan_view.created(
            tx, patient_id=patient, plan_id=plan_id, starting_dose_mg=100, max_dose_mg=300, max_step_mg=50
        )
        await plan_view.changed(tx, patient_id=patient, plan_id=plan_id, status="paused")
        await plan_view.changed(tx, patient_id=patient, plan_id=plan_id, current_dose_mg=150)
    return plan_id


async def _resolve(uow: UnitOfWork, review_id: uuid.UUID, decision: ReviewDecision, dose_mg: int | None) -> None:
    async with uow.transaction() as tx:
        await reviews.resolve(
            tx, review_id, decision=decision, clinician_id="dr-lee", note=None, now=NOW, dose_mg=dose_mg
        )


async def _review(uow: UnitOfWork, review_id: uuid.UUID) -> Any:
    async with uow.sessions() as s:
        return (await s.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))).one()


async def test_safety_refuses_a_dose_outside_the_plan_and_records_nothing(safety: UnitOfWork) -> None:
    patient = uuid.uuid4()
    await _plan_view(safety, patient)
    review_id = await _review_with_hold(safety, patient)
    for dose, code in ((201, "dose_step_above_plan_maximum"), (99, "dose_step_above_plan_maximum")):
        with pytest.raises(DoseNotAllowed) as refused:
            await _resolve(safety, review_id, ReviewDecision.resume_with_dose_change, dose)
        assert refused.value.code == code
    assert (await _review(safety, review_id)).status == "open"
    assert await outbox(safety, safety_messaging, patient, "TreatmentHoldReleased") == []
    with pytest.raises(RuleViolation, match="needs dose_mg"):
        await _resolve(safety, review_id, ReviewDecision.resume_with_dose_change, None)
    with pytest.raises(RuleViolation, match="only that decision"):
        await _resolve(safety, review_id, ReviewDecision.resume, 150)

    await _resolve(safety, review_id, ReviewDecision.resume_with_dose_change, 200)
    [released] = await outbox(safety, safety_messaging, patient, "TreatmentHoldReleased")
    assert (released["decision"], released["dose_mg"], released["decided_by"]) == (
        "resume_with_dose_change",
        200,
        "dr-lee",
    )
    [resolved] = await outbox(safety, safety_messaging, patient, "ClinicianReviewResolved")
    assert resolved["dose_mg"] == 200


async def test_a_dose_change_needs_a_plan_and_a_hold_to_resume(safety: UnitOfWork) -> None:
    patient = uuid.uuid4()
    review_id = await _review_with_hold(safety, patient)
    with pytest.raises(DoseNotAllowed) as refused:
        await _resolve(safety, review_id, ReviewDecision.resume_with_dose_change, 100)
    assert refused.value.code == "no_live_plan", "safety has heard of no plan for this patient"

    other = uuid.uuid4()
    await _plan_view(safety, other)
    no_hold = await _review_with_hold(safety, other, hold=False)
    with pytest.raises(DoseNotAllowed) as refused:
        await _resolve(safety, no_hold, ReviewDecision.resume_with_dose_change, 150)
    assert refused.value.code == "review_holds_no_treatment"


async def test_a_refusal_by_dosing_opens_a_review_that_releases_the_same_hold_again(safety: UnitOfWork) -> None:
    patient = uuid.uuid4()
    await _plan_view(safety, patient)
    review_id = await _review_with_hold(safety, patient)
    await _resolve(safety, review_id, ReviewDecision.resume_with_dose_change, 200)
    [released] = await outbox(safety, safety_messaging, patient, "TreatmentHoldReleased")
    hold_id = uuid.UUID(released["hold_id"])

    async with safety.transaction() as tx:
        again = await reviews.dose_change_refused(
            tx, patient_id=patient, hold_id=hold_id, review_id=review_id, reason="dose_above_program_maximum", now=NOW
        )
    review = await _review(safety, again)
    original = await _review(safety, review_id)
    assert (review.reason, review.status, review.priority, review.triggers) == (
        "dose_change_refused",
        "open",
        "urgent",
        ["dose_above_program_maximum"],
    )
    assert review.due_at - review.opened_at == original.due_at - original.opened_at, (
        "as urgent as the review it follows"
    )
    async with safety.sessions() as s:
        hold = (await s.execute(select(safety_holds).where(safety_holds.c.hold_id == hold_id))).one()
    assert (hold.review_id, hold.status) == (again, "requested")

    await _resolve(safety, again, ReviewDecision.resume, None)
    releases = await outbox(safety, safety_messaging, patient, "TreatmentHoldReleased")
    assert [(r["hold_id"], r["review_id"], r["decision"]) for r in releases][1:] == [
        (str(hold_id), str(again), "resume")
    ]


async def test_a_plan_event_keyed_by_another_patient_leaves_the_plan_view_alone(safety: UnitOfWork) -> None:
    patient = uuid.uuid4()
    plan_id = await _plan_view(safety, patient)
    async with safety.transaction() as tx:
        await plan_view.changed(tx, patient_id=uuid.uuid4(), plan_id=plan_id, status="discontinued", current_dose_mg=10)
    async with safety.transaction() as tx:
        view = await plan_view.of_patient(tx, patient)
    assert view is not None and (view.status, view.current_dose_mg) == ("paused", 150)


async def _authorise_at(
    uow: UnitOfWork, patient: uuid.UUID, appointment: uuid.UUID, now: datetime
) -> plans.Authorisation:
    async with uow.transaction() as tx:
        return await plans.authorise_session(tx, appointment_id=appointment, patient_id=patient, now=now, rules=RULES)


async def test_a_repeat_request_gets_the_grant_back_only_while_it_still_holds(dosing: UnitOfWork) -> None:
    patient, intruder = uuid.uuid4(), uuid.uuid4()
    _plan_id, hold_id, review_id = await _paused_plan(dosing, patient)
    resume = Envelope.wrap(
        TreatmentHoldReleased(hold_id=hold_id, review_id=review_id, decision=ReviewDecision.resume),
        patient_id=patient,
        producer="safety",
    )
    assert await deliver(dosing, resume, _handle_release(resume))
    await _paused_plan(dosing, intruder)
    session = uuid.uuid4()
    await _reading(dosing, patient, session, 5)
    first = await _authorise(dosing, patient, session)
    assert first.authorised

    again = await _authorise_at(dosing, patient, session, NOW + RULES.pre_dose_bp_window)
    assert (again.authorised, again.authorisation_id) == (True, first.authorisation_id), (
        "a retry within the window: the same grant"
    )
    expired = await _authorise_at(dosing, patient, session, NOW + RULES.pre_dose_bp_window + timedelta(seconds=1))
    assert (expired.authorised, expired.reason) == (False, "authorisation_expired")
    other = await _authorise(dosing, intruder, session)
    assert (other.authorised, other.reason) == (False, "authorisation_not_for_this_plan"), (
        "another patient's grant is not theirs"
    )

    async with dosing.transaction() as tx:
        await plans.open_hold(
            tx, hold_id=uuid.uuid4(), patient_id=patient, review_id=uuid.uuid4(), reason="severe_side_effect"
        )
    paused = await _authorise(dosing, patient, session)
    assert (paused.authorised, paused.reason) == (False, "plan_paused"), (
        "a grant from before the hold is not handed out while paused"
    )
    refusals = await outbox(dosing, dosing_messaging, patient, "DosingSessionRefused")
    assert [r["reason"] for r in refusals] == ["authorisation_expired", "plan_paused"], "each refusal is announced"


async def test_a_release_keyed_by_another_patient_leaves_this_patients_hold_and_plan_alone(dosing: UnitOfWork) -> None:
    patient, intruder = uuid.uuid4(), uuid.uuid4()
    plan_id, hold_id, review_id = await _paused_plan(dosing, patient)
    await _paused_plan(dosing, intruder)  # a plan the forged dose would fit
    forged = _release(intruder, hold_id, review_id, 150)  # names this patient's hold, keyed by another patient
    assert await deliver(dosing, forged, _handle_release(forged))
    async with dosing.sessions() as s:
        hold = (await s.execute(select(dosing_holds).where(dosing_holds.c.hold_id == hold_id))).one()
    assert (hold.status, (await _plan(dosing, plan_id)).status) == ("open", "paused")


async def test_a_normal_repeat_reading_does_not_outrun_the_hold_a_crisis_reading_leads_to(dosing: UnitOfWork) -> None:
    """A reading at or above 180/110 gets safety's emergency advice and a hold, but the hold travels on
    safety.holds and may arrive after the repeat reading on safety.reports: the advice alone refuses."""
    patient = uuid.uuid4()
    _plan_id, hold_id, review_id = await _paused_plan(dosing, patient)
    resume = Envelope.wrap(
        TreatmentHoldReleased(hold_id=hold_id, review_id=review_id, decision=ReviewDecision.resume),
        patient_id=patient,
        producer="safety",
    )
    assert await deliver(dosing, resume, _handle_release(resume))
    session = uuid.uuid4()
    await _reading(dosing, patient, session, 20, within=False, emergency=True)
    await _reading(dosing, patient, session, 5)  # the repeat, within limits
    assert (await _authorise(dosing, patient, session)).reason == "emergency_advice_recent"

    other, next_session = uuid.uuid4(), uuid.uuid4()
    await _reading(dosing, other, None, 61, within=False, emergency=True)  # past the window: no longer refuses
    _plan_id, hold_id, review_id = await _paused_plan(dosing, other)
    resume = Envelope.wrap(
        TreatmentHoldReleased(hold_id=hold_id, review_id=review_id, decision=ReviewDecision.resume),
        patient_id=other,
        producer="safety",
    )
    assert await deliver(dosing, resume, _handle_release(resume))
    await _reading(dosing, other, next_session, 5)
    assert (await _authorise(dosing, other, next_session)).authorised
