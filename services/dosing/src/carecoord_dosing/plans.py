"""Plan use cases: each runs inside the caller's transaction and emits its events.

Shared by the HTTP routes (clinician decisions, session requests) and the event
handlers (holds, completed sessions, safety facts), so a rule is enforced the
same way whichever door a change comes through. Each is shaped load -> decide ->
save -> emit: it loads what the rules read, the decision is a pure function in
domain.py, and the rows it writes and the events they cause commit together.
Every operation that reads a plan to decide locks its row first: a hold arriving
while a session is being authorised waits for it, and the other way round.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import String, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_contracts.common import DiagnosisCodes, Indication, Instrument, PlanStatus, ReviewDecision
from carecoord_contracts.dosing import (
    DoseApproved,
    DoseChangeRefused,
    DoseProposed,
    DosingSessionAuthorised,
    DosingSessionRefused,
    TreatmentPlanActivated,
    TreatmentPlanCompleted,
    TreatmentPlanCreated,
    TreatmentPlanDiscontinued,
    TreatmentPlanPaused,
    TreatmentPlanResumed,
)
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import HandlerTransaction, Transaction
from carecoord_shared.preconditions import Precondition
from carecoord_shared.statements import insert_new

from . import domain
from .domain import PlanRuleViolation, PlanState, TitrationRules
from .models import (
    dose_proposals,
    intake_assessments,
    plan_transitions,
    safety_observations,
    session_authorisations,
    session_refusals,
    treatment_consents,
    treatment_holds,
    treatment_plans,
)

DIAGNOSIS_CODES = TypeAdapter(DiagnosisCodes)

# The reason of the hold a withdrawn treatment consent opens (and of the pause it causes).
CONSENT_WITHDRAWN = "consent_withdrawn"


def _plan_state(row: Any) -> PlanState:
    return PlanState(
        plan_id=row.plan_id,
        patient_id=row.patient_id,
        status=PlanStatus(row.status),
        limits=domain.Limits(row.starting_dose_mg, row.max_dose_mg, row.max_step_mg),
        planned_sessions=row.planned_sessions,
        sessions_completed=row.sessions_completed,
        approved_dose_mg=row.approved_dose_mg,
        indication=Indication(row.indication) if row.indication else None,
        created_at=row.created_at,
    )


# The statements of a hold's handling are built once and their values bound when they run: building
# them and their cache keys anew cost more CPU than sending them (#22's profile).
@functools.cache
def _live_plan_for_update() -> Any:
    return (
        select(treatment_plans)
        .where(
            treatment_plans.c.patient_id == bindparam("patient_id", type_=treatment_plans.c.patient_id.type),
            treatment_plans.c.status.in_([s.value for s in domain.LIVE]),
        )
        .with_for_update()
    )


async def live_plan_for_update(tx: Transaction, patient_id: uuid.UUID) -> PlanState | None:
    row = (await tx.session.execute(_live_plan_for_update(), {"patient_id": patient_id})).first()
    return None if row is None else _plan_state(row)


async def plan_for_update(tx: Transaction, plan_id: uuid.UUID, precondition: Precondition | None = None) -> PlanState:
    """The plan, locked; ``precondition``: a clinician's If-Match, checked against the locked row's version."""
    row = (
        await tx.session.execute(select(treatment_plans).where(treatment_plans.c.plan_id == plan_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"no treatment plan {plan_id}")
    if precondition is not None:
        precondition.check(row.version, "plan")
    return _plan_state(row)


@functools.cache
def _open_hold_ids() -> Any:
    return (
        select(treatment_holds.c.hold_id)
        .where(
            treatment_holds.c.patient_id == bindparam("patient_id", type_=treatment_holds.c.patient_id.type),
            treatment_holds.c.status == "open",
        )
        .order_by(treatment_holds.c.opened_at)
    )


async def open_hold_ids(tx: Transaction, patient_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await tx.session.execute(_open_hold_ids(), {"patient_id": patient_id})
    return list(rows.scalars())


# --- lifecycle -------------------------------------------------------------------


async def create_plan(
    tx: Transaction,
    *,
    patient_id: uuid.UUID,
    actor: str,
    rules: TitrationRules,
    indication: Indication,
    diagnosis_codes: list[str],
    **course: int,
) -> uuid.UUID:
    """A draft plan; ``course`` holds the dose limits, planned sessions and cadence.

    ``diagnosis_codes`` are ICD-10-CM codes, principal first; validated here too
    (whichever door the plan came through) and kept without the dot."""
    diagnosis_codes = DIAGNOSIS_CODES.validate_python(diagnosis_codes)
    domain.check_dosing_limits(course["starting_dose_mg"], course["max_dose_mg"], course["max_step_mg"], rules)
    if await live_plan_for_update(tx, patient_id):
        raise PlanRuleViolation("the patient already has a live treatment plan")
    plan_id = uuid.uuid4()
    await tx.session.execute(
        insert(treatment_plans).values(
            plan_id=plan_id,
            patient_id=patient_id,
            status=PlanStatus.draft.value,
            created_by=actor,
            indication=indication.value,
            diagnosis_codes=list(diagnosis_codes),
            **course,
        )
    )
    tx.emit(
        TreatmentPlanCreated(plan_id=plan_id, indication=indication, diagnosis_codes=list(diagnosis_codes), **course),
        patient_id=patient_id,
    )
    return plan_id


async def activate_plan(
    tx: Transaction,
    plan_id: uuid.UUID,
    *,
    actor: str,
    rules: TitrationRules,
    precondition: Precondition | None = None,
) -> None:
    """Activation approves the starting dose: the activating clinician is its approver."""
    plan = await plan_for_update(tx, plan_id, precondition)
    domain.check_activation(plan.status, len(await open_hold_ids(tx, plan.patient_id)))
    await _move(tx, plan, PlanStatus.active, actor=actor, reason="clinician_activated")
    tx.emit(TreatmentPlanActivated(plan_id=plan_id), patient_id=plan.patient_id)
    starting = plan.limits.starting_dose_mg
    proposal_id = await _propose(tx, plan, domain.Proposal(starting, ["starting_dose"], 1, starting), rules)
    await approve_dose(tx, proposal_id, actor=actor, rules=rules)


async def discontinue_plan(
    tx: Transaction, plan_id: uuid.UUID, *, actor: str, reason: str, precondition: Precondition | None = None
) -> None:
    plan = await plan_for_update(tx, plan_id, precondition)
    await _discontinue(tx, plan, actor=actor, reason=reason)


async def _discontinue(tx: Transaction, plan: PlanState, *, actor: str, reason: str) -> None:
    await _move(tx, plan, PlanStatus.discontinued, actor=actor, reason=reason)
    await tx.session.execute(
        update(treatment_plans).where(treatment_plans.c.plan_id == plan.plan_id).values(approved_dose_mg=None)
    )
    tx.emit(
        TreatmentPlanDiscontinued(plan_id=plan.plan_id, reason=reason, decided_by=actor), patient_id=plan.patient_id
    )


# --- holds -------------------------------------------------------------------------


async def open_hold(
    tx: Transaction, *, hold_id: uuid.UUID, patient_id: uuid.UUID, review_id: uuid.UUID, reason: str
) -> None:
    """Open a hold (idempotent on its id) and pause the patient's active plan."""
    await insert_new(
        tx.session,
        treatment_holds,
        "hold_id",
        hold_id=hold_id,
        patient_id=patient_id,
        review_id=review_id,
        reason=reason,
    )
    await _reconcile(tx, patient_id, actor="safety", reason=reason)


async def release_hold(
    tx: Transaction,
    *,
    hold_id: uuid.UUID,
    patient_id: uuid.UUID,
    decision: ReviewDecision,
    rules: TitrationRules,
    review_id: uuid.UUID | None = None,
    dose_mg: int | None = None,
    decided_by: str | None = None,
) -> None:
    """The clinician's review decision releases the hold: resume, resume with a dose change, or discontinue.

    Resume with a dose change that names the dose approves it in the same step, in the resolving
    clinician's name with the review as cause; dosing re-validates it (the source of truth) and,
    if it is not allowed, the hold stays open (the plan stays paused) and DoseChangeRefused says why.
    """
    hold = (
        await tx.session.execute(
            select(treatment_holds)
            .where(
                treatment_holds.c.hold_id == hold_id,
                treatment_holds.c.patient_id == patient_id,
                treatment_holds.c.status == "open",
            )
            .with_for_update()
        )
    ).first()
    if hold is None:
        return  # unknown or already released: nothing changes twice
    plan = await live_plan_for_update(tx, patient_id)
    review_id = review_id or hold.review_id
    current = await _current_dose(tx, plan) if plan is not None and dose_mg is not None else None
    release = domain.hold_release(decision, plan, dose_mg=dose_mg, current_dose_mg=current, rules=rules)
    if release.refused is not None:
        assert dose_mg is not None  # only a named dose is refused
        await tx.session.execute(
            update(treatment_holds)
            .where(treatment_holds.c.hold_id == hold_id)
            .values(dose_change_refused=release.refused)
        )
        tx.emit(
            DoseChangeRefused(
                plan_id=plan.plan_id if plan else None,
                hold_id=hold_id,
                review_id=review_id,
                requested_dose_mg=dose_mg,
                reason=release.refused,
            ),
            patient_id=patient_id,
        )
        return
    await tx.session.execute(
        update(treatment_holds)
        .where(treatment_holds.c.hold_id == hold_id)
        .values(status="released", released_at=func.now(), release_decision=decision.value)
    )
    actor = decided_by or "clinician_review"
    if plan is not None and release.discontinue:
        await _discontinue(tx, plan, actor=actor, reason="review_discontinued")
    if plan is not None and release.propose is not None:
        proposal_id = await _propose(tx, plan, release.propose, rules)
        if release.approve:
            await approve_dose(tx, proposal_id, actor=actor, rules=rules, review_id=review_id)
    if release.reconcile:
        await _reconcile(tx, patient_id, actor=actor, reason=f"hold_released_{decision.value}")


# --- treatment consent ---------------------------------------------------------------


async def consent_signed(tx: HandlerTransaction, *, document_version: str, signed_at: datetime) -> None:
    """The patient signed the treatment consent: it stands again, and the hold its withdrawal opened is released.

    The plan resumes only when no other hold is open: the review safety opened on the withdrawal holds
    it until a clinician resolves it (ADR 0016), so a signature alone never restarts dosing."""
    patient_id = tx.cause.patient_id
    if not await _consent_act(tx, patient_id, document_version, signed_at=signed_at, withdrawn_at=None):
        return
    released = await tx.session.execute(
        update(treatment_holds)
        .where(
            treatment_holds.c.patient_id == patient_id,
            treatment_holds.c.reason == CONSENT_WITHDRAWN,
            treatment_holds.c.review_id.is_(None),
            treatment_holds.c.status == "open",
        )
        .values(status="released", released_at=func.now(), release_decision="consent_signed")
        .returning(treatment_holds.c.hold_id)
    )
    if released.first() is not None:
        await _reconcile(tx, patient_id, actor="patient", reason="consent_signed")


async def consent_withdrawn(tx: HandlerTransaction, *, document_version: str, withdrawn_at: datetime) -> None:
    """The patient withdrew the treatment consent: no session is authorised (consent_missing), and a hold of
    dosing's own (the event's id, so once) pauses the live plan with reason consent_withdrawn."""
    patient_id = tx.cause.patient_id
    if not await _consent_act(tx, patient_id, document_version, signed_at=None, withdrawn_at=withdrawn_at):
        return
    await insert_new(
        tx.session,
        treatment_holds,
        "hold_id",
        hold_id=tx.cause.event_id,
        patient_id=patient_id,
        reason=CONSENT_WITHDRAWN,
    )
    await _reconcile(tx, patient_id, actor="patient", reason=CONSENT_WITHDRAWN)


async def _consent_act(
    tx: Transaction,
    patient_id: uuid.UUID,
    document_version: str,
    *,
    signed_at: datetime | None,
    withdrawn_at: datetime | None,
) -> bool:
    """Record the act unless a later one is already recorded (intake's acts about a patient arrive in order on
    one partition; this keeps a replayed older one from undoing a newer). True when recorded."""
    at = signed_at or withdrawn_at
    values = {"document_version": document_version, "signed_at": signed_at, "withdrawn_at": withdrawn_at, "as_of": at}
    statement = pg_insert(treatment_consents).values(patient_id=patient_id, **values)
    recorded = await tx.session.execute(
        statement.on_conflict_do_update(
            index_elements=[treatment_consents.c.patient_id],
            set_=values if signed_at is not None else {**values, "signed_at": treatment_consents.c.signed_at},
            where=treatment_consents.c.as_of < statement.excluded.as_of,
        ).returning(treatment_consents.c.patient_id)
    )
    return recorded.first() is not None


async def has_treatment_consent(tx: Transaction, patient_id: uuid.UUID) -> bool:
    """Does a signed treatment consent stand (signed, not withdrawn since)?"""
    c = treatment_consents.c
    row = (await tx.session.execute(select(c.signed_at, c.withdrawn_at).where(c.patient_id == patient_id))).first()
    return row is not None and row.signed_at is not None and row.withdrawn_at is None


async def _current_dose(tx: Transaction, plan: PlanState) -> int:
    """The dose a change is one step from: the approved one, else the last approved, else the starting dose."""
    return int(plan.approved_dose_mg or await _last_approved_dose(tx, plan.plan_id) or plan.limits.starting_dose_mg)


async def _reconcile(tx: Transaction, patient_id: uuid.UUID, *, actor: str, reason: str) -> None:
    """Bring the live plan's status in line with the open holds."""
    plan = await live_plan_for_update(tx, patient_id)
    if plan is None:
        return  # recorded; a plan created later cannot activate while the hold is open
    holds = await open_hold_ids(tx, patient_id)
    target = domain.status_with_holds(plan.status, len(holds))
    if target is plan.status:
        return
    await _move(tx, plan, target, actor=actor, reason=reason)
    if target is PlanStatus.paused:
        tx.emit(TreatmentPlanPaused(plan_id=plan.plan_id, hold_ids=holds, reason=reason), patient_id=patient_id)
    else:
        tx.emit(TreatmentPlanResumed(plan_id=plan.plan_id), patient_id=patient_id)


async def _move(tx: Transaction, plan: PlanState, target: PlanStatus, *, actor: str, reason: str) -> None:
    """The plan's new status and the transition that records it, in one statement (one round trip):
    the transition is inserted from the row the update returns."""
    domain.check_transition(plan.status, target)
    params = {
        "p_plan": plan.plan_id,
        "p_now": datetime.now(UTC),
        "p_from": plan.status.value,
        "p_to": target.value,
        "p_actor": actor,
        "p_reason": reason,
    }
    await tx.session.execute(_moved(), params)


@functools.cache
def _moved() -> Any:
    # Binds named apart from the columns: an UPDATE takes a parameter named as a column for its SET.
    moved = (
        update(treatment_plans)
        .where(treatment_plans.c.plan_id == bindparam("p_plan", type_=treatment_plans.c.plan_id.type))
        .values(
            status=bindparam("p_to", type_=String),
            updated_at=bindparam("p_now", type_=treatment_plans.c.updated_at.type),
        )
        .returning(treatment_plans.c.plan_id)
        .cte("moved")
    )
    return insert(plan_transitions).from_select(
        ["plan_id", "from_status", "to_status", "actor", "reason"],
        select(
            moved.c.plan_id,
            bindparam("p_from", type_=String),
            bindparam("p_to", type_=String),
            bindparam("p_actor", type_=String),
            bindparam("p_reason", type_=String),
        ),
    )


# --- doses -------------------------------------------------------------------------


async def _propose(tx: Transaction, plan: PlanState, proposal: domain.Proposal, rules: TitrationRules) -> uuid.UUID:
    """A new proposal supersedes any pending one; the approved dose lapses until a clinician approves."""
    await tx.session.execute(
        update(dose_proposals)
        .where(dose_proposals.c.plan_id == plan.plan_id, dose_proposals.c.status == "proposed")
        .values(status="superseded")
    )
    await tx.session.execute(
        update(treatment_plans).where(treatment_plans.c.plan_id == plan.plan_id).values(approved_dose_mg=None)
    )
    proposed = DoseProposed(
        proposal_id=uuid.uuid4(),
        plan_id=plan.plan_id,
        session_number=proposal.session_number,
        previous_dose_mg=proposal.previous_dose_mg,
        proposed_dose_mg=proposal.dose_mg,
        rationale=proposal.rationale,
    )
    await tx.session.execute(insert(dose_proposals).values(**proposed.model_dump(), rule_version=rules.version))
    tx.emit(proposed, patient_id=plan.patient_id)
    return proposed.proposal_id


async def approve_dose(
    tx: Transaction,
    proposal_id: uuid.UUID,
    *,
    actor: str,
    rules: TitrationRules,
    dose_mg: int | None = None,
    review_id: uuid.UUID | None = None,
    precondition: Precondition | None = None,
) -> int:
    """Approve a proposal (``precondition``: If-Match on the plan the proposal belongs to)."""
    proposal = (
        await tx.session.execute(
            select(dose_proposals).where(dose_proposals.c.proposal_id == proposal_id).with_for_update()
        )
    ).first()
    if proposal is None:
        raise NotFound(f"no dose proposal {proposal_id}")
    plan = await plan_for_update(tx, proposal.plan_id, precondition)
    domain.check_approval(proposal_id, proposal.status, plan.status)
    approved: int = proposal.proposed_dose_mg if dose_mg is None else dose_mg
    domain.check_dose_change(proposal.previous_dose_mg, approved, plan.limits, rules)
    await tx.session.execute(
        update(dose_proposals)
        .where(dose_proposals.c.proposal_id == proposal_id)
        .values(status="approved", approved_dose_mg=approved, approved_by=actor, approved_at=datetime.now(UTC))
    )
    await tx.session.execute(
        update(treatment_plans).where(treatment_plans.c.plan_id == plan.plan_id).values(approved_dose_mg=approved)
    )
    tx.emit(
        DoseApproved(
            proposal_id=proposal_id,
            plan_id=plan.plan_id,
            approved_dose_mg=approved,
            approved_by=actor,
            review_id=review_id,
        ),
        patient_id=plan.patient_id,
    )
    return approved


async def session_completed(tx: Transaction, *, patient_id: uuid.UUID, rules: TitrationRules) -> None:
    """After a dosing session: the course completes, or the next dose is proposed from the response."""
    plan = await live_plan_for_update(tx, patient_id)
    if plan is None or plan.status is PlanStatus.draft:
        return
    completed = plan.sessions_completed + 1
    await tx.session.execute(
        update(treatment_plans).where(treatment_plans.c.plan_id == plan.plan_id).values(sessions_completed=completed)
    )
    last_dose = await _current_dose(tx, plan)
    if domain.course_completed(plan, completed):
        await _move(tx, plan, PlanStatus.completed, actor="dosing", reason="course_completed")
        await tx.session.execute(
            update(treatment_plans).where(treatment_plans.c.plan_id == plan.plan_id).values(approved_dose_mg=None)
        )
        tx.emit(TreatmentPlanCompleted(plan_id=plan.plan_id, sessions_completed=completed), patient_id=patient_id)
        return
    response = await _response_since_last_proposal(tx, plan, rules)
    dose, rationale = domain.propose_dose(last_dose, plan.limits, response, rules)
    await _propose(tx, plan, domain.Proposal(dose, rationale, completed + 1, last_dose), rules)


async def _last_approved_dose(tx: Transaction, plan_id: uuid.UUID) -> int | None:
    return (
        await tx.session.execute(
            select(dose_proposals.c.approved_dose_mg)
            .where(dose_proposals.c.plan_id == plan_id, dose_proposals.c.status == "approved")
            .order_by(dose_proposals.c.approved_at.desc())
            .limit(1)
        )
    ).scalar()


MOOD_TOTAL = {Instrument.phq9: "phq9_total", Instrument.pcl5: "pcl5_total", Instrument.gad7: "gad7_total"}


async def _response_since_last_proposal(tx: Transaction, plan: PlanState, rules: TitrationRules) -> domain.Response:
    since = (
        await tx.session.execute(
            select(func.max(dose_proposals.c.proposed_at)).where(dose_proposals.c.plan_id == plan.plan_id)
        )
    ).scalar() or plan.created_at
    obs = safety_observations.c
    recent = await tx.session.execute(
        select(obs.kind, obs.grade, obs.symptoms, obs.within_limits).where(
            obs.patient_id == plan.patient_id, obs.observed_at >= since
        )
    )
    instrument = rules.instrument_for(plan.indication)
    total = obs[MOOD_TOTAL[instrument]]
    moods = await tx.session.execute(
        select(total)
        .where(
            obs.patient_id == plan.patient_id,
            obs.kind == "mood",
            total.is_not(None),
            obs.observed_at >= plan.created_at,
        )
        .order_by(obs.observed_at)
    )
    intake = (
        await intake_baseline(tx, plan.patient_id, instrument, plan.created_at) if rules.uses_intake_baseline else None
    )
    return domain.response_from(
        [domain.Observed(r.kind, r.grade, tuple(r.symptoms or ()), r.within_limits) for r in recent],
        list(moods.scalars()),
        intake,
        instrument,
    )


async def intake_baseline(
    tx: Transaction, patient_id: uuid.UUID, instrument: Instrument, plan_created_at: datetime
) -> int | None:
    """The intake score on ``instrument``: the latest scored before the plan was written, else the earliest after.

    Read when a dose is proposed, never copied at plan creation: intake's topic and
    dosing's are not ordered with each other, so the score may arrive after the plan.
    Ordered by when intake scored it, not when it arrived."""
    a = intake_assessments.c
    mine = select(a.total).where(a.patient_id == patient_id, a.instrument == instrument.value)
    before: int | None = (
        await tx.session.execute(mine.where(a.scored_at <= plan_created_at).order_by(a.scored_at.desc()).limit(1))
    ).scalar()
    if before is not None:
        return before
    earliest: int | None = (await tx.session.execute(mine.order_by(a.scored_at).limit(1))).scalar()
    return earliest


async def record_assessment(tx: HandlerTransaction, *, instrument: Instrument, total: int, scored_at: datetime) -> None:
    await insert_new(
        tx.session,
        intake_assessments,
        "event_id",
        event_id=tx.cause.event_id,
        patient_id=tx.cause.patient_id,
        instrument=instrument.value,
        total=total,
        scored_at=scored_at,
    )


# --- sessions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Authorisation:
    appointment_id: uuid.UUID
    authorised: bool
    reason: str | None = None
    authorisation_id: uuid.UUID | None = None
    dose_mg: int | None = None


async def authorise_session(
    tx: Transaction, *, appointment_id: uuid.UUID, patient_id: uuid.UUID, now: datetime, rules: TitrationRules
) -> Authorisation:
    """May this dosing session go ahead? The last line of defence: never while paused."""
    plan = await live_plan_for_update(tx, patient_id)
    consented = await has_treatment_consent(tx, patient_id)
    granted = (
        await tx.session.execute(
            select(session_authorisations).where(session_authorisations.c.appointment_id == appointment_id)
        )
    ).first()
    if granted is not None:
        # A repeat request (an app retrying) gets the same grant back only while it still holds: the
        # patient's own live plan, still active, and within the pre-dose window of the grant (the
        # reading it rested on still says something about now). Otherwise it is refused, and says why:
        # a session is authorised once, so a later dose needs a new session and a new reading.
        replay = domain.grant_refusal(
            plan.status if plan else None,
            same_plan=plan is not None and plan.plan_id == granted.plan_id,
            consented=consented,
            authorised_at=granted.authorised_at,
            now=now,
            rules=rules,
        )
        if replay is None:
            return Authorisation(
                appointment_id, True, authorisation_id=granted.authorisation_id, dose_mg=granted.dose_mg
            )
        return await _refuse(tx, appointment_id, patient_id, plan.plan_id if plan else None, replay)
    reading = await _latest_pre_dose_reading(tx, patient_id, appointment_id if rules.pre_dose_bp_for_session else None)
    refusal = domain.authorisation_refusal(
        plan.status if plan else None,
        plan.approved_dose_mg if plan else None,
        plan.limits if plan else None,
        reading,
        appointment_id=appointment_id,
        now=now,
        rules=rules,
        consented=consented,
        recent_emergency=await _recent_emergency(tx, patient_id, now=now, window=rules.pre_dose_bp_window),
    )
    if refusal is not None:
        return await _refuse(tx, appointment_id, patient_id, plan.plan_id if plan else None, refusal)
    # authorisation_refusal refuses a session without a plan or without an approved dose
    assert plan is not None and plan.approved_dose_mg is not None
    authorisation_id = uuid.uuid4()
    await tx.session.execute(
        insert(session_authorisations).values(
            authorisation_id=authorisation_id,
            plan_id=plan.plan_id,
            appointment_id=appointment_id,
            dose_mg=plan.approved_dose_mg,
            authorised_at=now,  # the decision's clock, the one a repeat request is measured against
        )
    )
    tx.emit(
        DosingSessionAuthorised(
            authorisation_id=authorisation_id,
            plan_id=plan.plan_id,
            appointment_id=appointment_id,
            dose_mg=plan.approved_dose_mg,
        ),
        patient_id=patient_id,
    )
    return Authorisation(appointment_id, True, authorisation_id=authorisation_id, dose_mg=plan.approved_dose_mg)


async def _refuse(
    tx: Transaction, appointment_id: uuid.UUID, patient_id: uuid.UUID, plan_id: uuid.UUID | None, reason: str
) -> Authorisation:
    await tx.session.execute(
        insert(session_refusals).values(
            appointment_id=appointment_id, patient_id=patient_id, plan_id=plan_id, reason=reason
        )
    )
    tx.emit(DosingSessionRefused(appointment_id=appointment_id, plan_id=plan_id, reason=reason), patient_id=patient_id)
    return Authorisation(appointment_id, False, reason=reason)


async def _recent_emergency(tx: Transaction, patient_id: uuid.UUID, *, now: datetime, window: timedelta) -> bool:
    """Did safety advise emergency care on any of the patient's observations within the window?"""
    obs = safety_observations.c
    query = select(obs.event_id).where(
        obs.patient_id == patient_id, obs.emergency.is_(True), obs.observed_at >= now - window
    )
    return (await tx.session.execute(query.limit(1))).first() is not None


async def _latest_pre_dose_reading(
    tx: Transaction, patient_id: uuid.UUID, appointment_id: uuid.UUID | None
) -> domain.PreDoseReading | None:
    """The latest pre-dose reading taken for this session (any session's under rules before 2026.12.0):
    a repeat reading after a high one supersedes it."""
    obs = safety_observations.c
    query = select(obs.observed_at, obs.within_limits, obs.appointment_id).where(
        obs.patient_id == patient_id, obs.kind == "vitals", obs.context == "pre_dose"
    )
    if appointment_id is not None:
        query = query.where(obs.appointment_id == appointment_id)
    row = (await tx.session.execute(query.order_by(obs.observed_at.desc()).limit(1))).first()
    if row is None:
        return None
    return domain.PreDoseReading(
        measured_at=row.observed_at, within_limits=bool(row.within_limits), appointment_id=row.appointment_id
    )


async def record_observation(tx: HandlerTransaction, *, kind: str, observed_at: datetime, **facts: Any) -> None:
    await insert_new(
        tx.session,
        safety_observations,
        "event_id",
        event_id=tx.cause.event_id,
        patient_id=tx.cause.patient_id,
        kind=kind,
        observed_at=observed_at,
        **facts,
    )
