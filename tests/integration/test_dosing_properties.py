"""A stateful property test of dosing against real PostgreSQL: random sequences of
holds, releases, redeliveries, completed sessions, approvals, blood-pressure
readings and session requests, run through the service's own plan operations.

Invariants after every step: the plan is paused exactly while a hold is open;
no session is ever authorised while paused, without an approved dose, or
above the cap; a redelivered event changes nothing.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from carecoord_contracts import Envelope
from carecoord_contracts.common import Indication, ReviewDecision
from carecoord_contracts.safety import TreatmentHoldReleased, TreatmentHoldRequested, VitalsRecorded
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_dosing import domain, plans
from carecoord_dosing.models import dose_proposals, messaging, session_authorisations, treatment_plans
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.plans import sign_treatment_consent
from tests.services import built

definition = built("dosing")

T = TypeVar("T")
RULES = domain.load_titration()
CAP = 300


class Loop:
    """One event loop in a thread: hypothesis drives synchronously, the database is async."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def dosing_db(stack: Stack) -> Iterator[tuple[Loop, UnitOfWork]]:
    url = asyncio.run(scratch_database(stack, "dosing_properties", "dosing"))
    upgrade_to_head(url, definition.migrations_dir)
    loop = Loop()
    engine = loop.run(_engine(url))
    yield loop, UnitOfWork(create_sessions(engine), messaging, "dosing")
    loop.run(engine.dispose())
    loop.close()


async def _engine(url: str) -> Any:
    return create_engine(url)


def test_dosing_invariants_hold_under_random_sequences(dosing_db: tuple[Loop, UnitOfWork]) -> None:
    loop, uow = dosing_db

    class Dosing(RuleBasedStateMachine):
        holds = Bundle("holds")

        @initialize()
        def a_patient_with_an_active_plan(self) -> None:
            self.patient = uuid.uuid4()
            self.open: set[uuid.UUID] = set()
            self.released: set[uuid.UUID] = set()
            self.discontinued = False
            self.sent: list[tuple[Envelope, str]] = []
            self.session = uuid.uuid4()  # the next dosing session: pre-dose readings are taken for it

            async def setup() -> uuid.UUID:
                await sign_treatment_consent(uow, self.patient)  # no session is authorised without it
                async with uow.transaction() as tx:
                    plan_id = await plans.create_plan(
                        tx,
                        patient_id=self.patient,
                        actor="dr-a",
                        rules=RULES,
                        indication=Indication.depression,
                        diagnosis_codes=["F331"],
                        starting_dose_mg=100,
                        max_dose_mg=CAP,
                        max_step_mg=50,
                        planned_sessions=52,
                    )
                async with uow.transaction() as tx:
                    await plans.activate_plan(tx, plan_id, actor="dr-a", rules=RULES)
                return plan_id

            self.plan_id = loop.run(setup())
            self._deliver(
                VitalsRecorded(
                    reading_id=uuid.uuid4(),
                    systolic=120,
                    diastolic=80,
                    measured_at=datetime.now(UTC) - timedelta(minutes=5),
                    context="pre_dose",
                    appointment_id=self.session,
                    within_limits=True,
                    rule_version="t",
                ),
                "vitals",
            )

        # --- what the outside world does ---

        @rule(target=holds)
        def safety_requests_a_hold(self) -> uuid.UUID:
            hold_id = uuid.uuid4()
            self._deliver(
                TreatmentHoldRequested(
                    hold_id=hold_id, review_id=uuid.uuid4(), reason="severe_side_effect", rule_version="t"
                ),
                "hold",
            )
            if not self.discontinued:
                self.open.add(hold_id)
            return hold_id

        @rule(
            hold=holds,
            decision=st.sampled_from(
                [ReviewDecision.resume, ReviewDecision.resume_with_dose_change, ReviewDecision.discontinue]
            ),
        )
        def a_clinician_releases_a_hold(self, hold: uuid.UUID, decision: ReviewDecision) -> None:
            was_open = hold in self.open
            self._deliver(TreatmentHoldReleased(hold_id=hold, review_id=uuid.uuid4(), decision=decision), "release")
            if was_open:
                self.open.discard(hold)
                self.released.add(hold)
                if decision is ReviewDecision.discontinue:
                    self.discontinued = True

        @precondition(lambda self: bool(self.sent))
        @rule(data=st.data())
        def kafka_redelivers_an_event(self, data: st.DataObject) -> None:
            envelope, kind = data.draw(st.sampled_from(self.sent))
            before = self._snapshot()
            assert loop.run(self._handle(envelope, kind)) is False, "the inbox recognises the redelivery"
            assert self._snapshot() == before, "a redelivered event changed something"

        @rule(within=st.booleans())
        def a_pre_dose_reading_arrives(self, within: bool) -> None:
            self._deliver(
                VitalsRecorded(
                    reading_id=uuid.uuid4(),
                    systolic=120 if within else 150,
                    diastolic=80,
                    measured_at=datetime.now(UTC),
                    context="pre_dose",
                    appointment_id=self.session,
                    within_limits=within,
                    rule_version="t",
                ),
                "vitals",
            )

        @rule()
        def a_dosing_session_is_completed(self) -> None:
            async def complete() -> None:
                async with uow.transaction() as tx:
                    await plans.session_completed(tx, patient_id=self.patient, rules=RULES)

            loop.run(complete())

        @rule(dose=st.none() | st.integers(1, 400))
        def a_clinician_approves_the_pending_proposal(self, dose: int | None) -> None:
            async def approve() -> None:
                async with uow.sessions() as s:
                    pending = (
                        await s.execute(
                            select(dose_proposals.c.proposal_id, dose_proposals.c.previous_dose_mg).where(
                                dose_proposals.c.plan_id == self.plan_id, dose_proposals.c.status == "proposed"
                            )
                        )
                    ).first()
                if pending is None:
                    return
                out_of_bounds = dose is not None and (dose > CAP or abs(dose - pending.previous_dose_mg) > 50)
                try:
                    async with uow.transaction() as tx:
                        approved = await plans.approve_dose(
                            tx, pending.proposal_id, actor="dr-b", rules=RULES, dose_mg=dose
                        )
                except domain.PlanRuleViolation:
                    assert out_of_bounds or self.discontinued, (
                        "refused although within the cap, the step and a live plan"
                    )
                    return
                assert not out_of_bounds and not self.discontinued, f"approved {approved} mg against the rules"
                assert approved <= CAP

            loop.run(approve())

        @rule()
        def the_patient_asks_to_start_a_session(self) -> None:
            async def ask() -> plans.Authorisation:
                async with uow.transaction() as tx:
                    status = (
                        await tx.session.execute(
                            select(treatment_plans.c.status, treatment_plans.c.approved_dose_mg).where(
                                treatment_plans.c.plan_id == self.plan_id
                            )
                        )
                    ).one()
                    decision = await plans.authorise_session(
                        tx, appointment_id=self.session, patient_id=self.patient, now=datetime.now(UTC), rules=RULES
                    )
                    if decision.authorised:
                        assert status.status == "active", f"authorised while {status.status}"
                        assert (
                            status.approved_dose_mg is not None and decision.dose_mg == status.approved_dose_mg <= CAP
                        )
                    elif status.status == "paused":
                        assert decision.reason == "plan_paused"
                    return decision

            decision = loop.run(ask())
            if decision.authorised:
                self.session = uuid.uuid4()  # that session goes ahead; the next needs its own reading
            if self.open and not self.discontinued:
                assert not decision.authorised and decision.reason == "plan_paused"

        # --- invariants ---

        @invariant()
        def paused_exactly_while_a_hold_is_open(self) -> None:
            if not hasattr(self, "plan_id"):
                return
            status = self._snapshot()["status"]
            if self.discontinued:
                assert status == "discontinued"
            else:
                assert status == ("paused" if self.open else "active"), (status, self.open)

        @invariant()
        def never_an_authorisation_above_the_cap(self) -> None:
            if hasattr(self, "plan_id"):
                assert self._snapshot()["max_authorised"] <= CAP

        # --- plumbing ---

        def _deliver(self, event: Any, kind: str) -> None:
            envelope = Envelope.wrap(event, patient_id=self.patient, producer="safety")
            assert loop.run(self._handle(envelope, kind)) is True
            self.sent.append((envelope, kind))

        async def _handle(self, envelope: Envelope, kind: str) -> bool:
            """What the consumer does: claim the event in the inbox, then handle it, in one transaction."""
            async with uow.transaction(cause=envelope) as tx:
                if not await tx.claim_inbox(envelope, "test"):
                    return False
                event = envelope.payload
                if kind == "hold":
                    await plans.open_hold(
                        tx,
                        hold_id=uuid.UUID(event["hold_id"]),
                        patient_id=self.patient,
                        review_id=uuid.UUID(event["review_id"]),
                        reason=event["reason"],
                    )
                elif kind == "release":
                    await plans.release_hold(
                        tx,
                        hold_id=uuid.UUID(event["hold_id"]),
                        patient_id=self.patient,
                        decision=ReviewDecision(event["decision"]),
                        rules=RULES,
                    )
                else:
                    await plans.record_observation(
                        tx,
                        kind="vitals",
                        observed_at=datetime.fromisoformat(event["measured_at"]),
                        context=event["context"],
                        within_limits=event["within_limits"],
                        appointment_id=uuid.UUID(event["appointment_id"]),
                    )
            return True

        def _snapshot(self) -> dict[str, Any]:
            async def read() -> dict[str, Any]:
                async with uow.sessions() as s:
                    plan = (
                        await s.execute(select(treatment_plans).where(treatment_plans.c.plan_id == self.plan_id))
                    ).one()
                    authorised = (
                        await s.execute(
                            select(func.count(), func.coalesce(func.max(session_authorisations.c.dose_mg), 0)).where(
                                session_authorisations.c.plan_id == self.plan_id
                            )
                        )
                    ).one()
                    outbox = (
                        await s.execute(select(func.count()).where(messaging.outbox.c.key == str(self.patient)))
                    ).scalar_one()
                return {
                    "status": plan.status,
                    "approved": plan.approved_dose_mg,
                    "authorisations": authorised[0],
                    "max_authorised": authorised[1],
                    "outbox": outbox,
                }

            return loop.run(read())

    Dosing.TestCase.settings = settings(
        max_examples=30, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    Dosing.TestCase().runTest()
