"""A clinician re-evaluates eligibility after new information, against real PostgreSQL, in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

import carecoord_intake
from carecoord_contracts.common import CoverageKind, EligibilityOutcome, Instrument
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_intake import rules
from carecoord_intake.intake import Intake, NewInformation
from carecoord_intake.models import messaging
from carecoord_intake.phi import PhiCipher
from carecoord_intake.queries import current_decision, decision_history
from carecoord_shared.errors import RuleViolation
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.integration.test_intake_persistence import WHO

INTAKE = Intake(rules=rules.load(), cipher=PhiCipher([Fernet.generate_key().decode()]), served_states=frozenset({"NY"}))


@pytest.fixture(scope="module")
async def uow(stack: Stack) -> AsyncIterator[UnitOfWork]:
    url = await scratch_database(stack, "intake_reevaluation", "intake")
    await asyncio.to_thread(upgrade_to_head, url, Path(carecoord_intake.__file__).parent / "migrations")
    engine = create_engine(url)
    try:
        yield UnitOfWork(create_sessions(engine), messaging, "intake")
    finally:
        await engine.dispose()


async def complete_intake(uow: UnitOfWork, state: str, *, systolic: int = 118, diastolic: int = 76) -> uuid.UUID:
    async with uow.transaction() as tx:
        row, _ = await INTAKE.register(
            tx, external_id=f"re-{uuid.uuid4().hex}", state_of_residence=state, time_zone="America/New_York", who=WHO
        )
    pid = row.patient_id
    for instrument, answers in (
        (Instrument.phq9, [2] * 6 + [0] * 3),
        (Instrument.gad7, [0] * 7),
        (Instrument.pcl5, [0] * 20),
    ):
        async with uow.transaction() as tx:
            await INTAKE.record_assessment(tx, pid, instrument, answers)
    async with uow.transaction() as tx:
        await INTAKE.record_medical_screening(tx, pid, {q.code: False for q in INTAKE.rules.questions}, None)
        await INTAKE.record_blood_pressure(
            tx, pid, systolic=systolic, diastolic=diastolic, measured_at=datetime.now(UTC)
        )
    async with uow.transaction() as tx:
        await INTAKE.declare_coverage(tx, pid, kind=CoverageKind.self_pay, payer_id=None, member_id=None, plan=None)
    return pid


async def re_evaluate(uow: UnitOfWork, pid: uuid.UUID, new: NewInformation, why: str = "new information") -> None:
    async with uow.transaction() as tx:
        await INTAKE.re_evaluate(tx, pid, clinician_id="dr-lee", reason=why, new=new)


async def emitted(uow: UnitOfWork, pid: uuid.UUID, event_type: str) -> list[dict]:  # type: ignore[type-arg]
    async with uow.sessions() as session:
        rows = await session.execute(
            text("SELECT envelope FROM outbox WHERE key = :key AND event_type = :type ORDER BY id"),
            {"key": str(pid), "type": event_type},
        )
        return [r.envelope["payload"] for r in rows]


async def decisions_emitted(uow: UnitOfWork, pid: uuid.UUID) -> list[dict]:  # type: ignore[type-arg]
    return await emitted(uow, pid, "EligibilityDetermined")


def reading(systolic: int, diastolic: int) -> NewInformation:
    return NewInformation(systolic=systolic, diastolic=diastolic, measured_at=datetime.now(UTC) - timedelta(minutes=5))


async def test_a_move_to_a_served_state_supersedes_not_served_with_who_and_why(uow: UnitOfWork) -> None:
    pid = await complete_intake(uow, "VT")
    async with uow.sessions() as session:
        first = await current_decision(session, pid)
    assert first is not None and (first.outcome, first.reasons, first.sequence, first.basis) == (
        "ineligible",
        ["state_not_served"],
        1,
        "rules",
    )

    await re_evaluate(
        uow, pid, NewInformation(state_of_residence="NY", time_zone="America/New_York"), "moved to Albany"
    )
    async with uow.sessions() as session:
        history = await decision_history(session, pid)
    assert [(d.sequence, d.outcome, d.basis) for d in history] == [
        (1, "ineligible", "rules"),
        (2, "eligible", "clinician_re_evaluation"),
    ]
    latest = history[-1]
    assert latest.reasons == ["phq9_threshold_met", "clinician_re_evaluation"]
    assert (latest.overrides_decision_id, latest.overridden_by) == (first.decision_id, "dr-lee")
    assert INTAKE.cipher.decrypt(latest.override_reason_enc) == "moved to Albany"

    [was, now] = await decisions_emitted(uow, pid)
    assert (was["outcome"], was["sequence"], was["state_of_residence"]) == ("ineligible", 1, "VT")
    assert (now["outcome"], now["sequence"], now["state_of_residence"]) == ("eligible", 2, "NY")
    assert now["supersedes_decision_id"] == str(first.decision_id) and now["overridden_by"] == "dr-lee"
    # The move is announced to every service that checks licences by the patient's state.
    assert [(r["state_of_residence"], r["time_zone"]) for r in await emitted(uow, pid, "PatientRegistered")] == [
        ("VT", "America/New_York"),
        ("NY", "America/New_York"),
    ]
    # A re-evaluation that names the same residence announces nothing.
    await re_evaluate(uow, pid, NewInformation(state_of_residence="NY", time_zone="America/New_York"))
    assert len(await emitted(uow, pid, "PatientRegistered")) == 2


async def test_a_repeat_reading_at_180_110_makes_an_eligible_patient_ineligible_and_179_109_needs_review(
    uow: UnitOfWork,
) -> None:
    pid = await complete_intake(uow, "NY")
    await re_evaluate(uow, pid, reading(179, 109))
    await re_evaluate(uow, pid, reading(180, 109))
    async with uow.sessions() as session:
        history = await decision_history(session, pid)
    assert [(d.sequence, d.outcome) for d in history] == [(1, "eligible"), (2, "needs_review"), (3, "ineligible")]
    assert history[1].reasons == ["elevated_blood_pressure", "clinician_re_evaluation"]
    assert history[2].reasons == ["uncontrolled_hypertension", "clinician_re_evaluation"]
    assert [d["sequence"] for d in await decisions_emitted(uow, pid)] == [1, 2, 3]


async def test_a_re_evaluation_cannot_pass_an_exclusion_and_a_needs_review_result_is_decided_by_override(
    uow: UnitOfWork,
) -> None:
    pid = await complete_intake(uow, "NY", systolic=150, diastolic=95)
    answers = {q.code: q.code == "pregnant" for q in INTAKE.rules.questions}
    await re_evaluate(uow, pid, NewInformation(screening_answers=answers))
    async with uow.sessions() as session:
        assert (await current_decision(session, pid)).outcome == "ineligible"  # type: ignore[union-attr]
    with pytest.raises(RuleViolation, match="only a needs_review"):
        async with uow.transaction() as tx:
            await INTAKE.override(tx, pid, outcome=EligibilityOutcome.eligible, clinician_id="dr-lee", reason="x")

    # No longer pregnant, BP still raised: the rules say review; the clinician then decides it.
    await re_evaluate(uow, pid, NewInformation(screening_answers={q.code: False for q in INTAKE.rules.questions}))
    async with uow.transaction() as tx:
        await INTAKE.override(
            tx, pid, outcome=EligibilityOutcome.eligible, clinician_id="dr-lee", reason="repeat readings fine"
        )
    async with uow.sessions() as session:
        history = await decision_history(session, pid)
    assert [(d.sequence, d.outcome, d.basis) for d in history] == [
        (1, "needs_review", "rules"),
        (2, "ineligible", "clinician_re_evaluation"),
        (3, "needs_review", "clinician_re_evaluation"),
        (4, "eligible", "clinician_override"),
    ]


async def test_there_is_nothing_to_re_evaluate_before_the_intake_is_decided(uow: UnitOfWork) -> None:
    async with uow.transaction() as tx:
        row, _ = await INTAKE.register(
            tx, external_id=f"re-{uuid.uuid4().hex}", state_of_residence="NY", time_zone="America/New_York", who=WHO
        )
    with pytest.raises(RuleViolation, match="no eligibility decision"):
        await re_evaluate(uow, row.patient_id, reading(120, 80))
