"""The read side the routes present: a plan with its holds, transitions and proposals, and whose plan
(or proposal) an id names, for the access check. One session per request; nothing here writes."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.auth import ListScope, patient_of
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import outcome_tracking, outcomes
from .models import dose_proposals, plan_transitions, treatment_holds, treatment_plans
from .outcomes import OutcomeDefinitions


async def plan_patient(uow: UnitOfWork, plan_id: uuid.UUID) -> uuid.UUID:
    query = select(treatment_plans.c.patient_id).where(treatment_plans.c.plan_id == plan_id)
    return await patient_of(uow.sessions, query, f"no treatment plan {plan_id}")


async def proposal_patient(uow: UnitOfWork, proposal_id: uuid.UUID) -> uuid.UUID:
    query = (
        select(treatment_plans.c.patient_id)
        .join(dose_proposals, dose_proposals.c.plan_id == treatment_plans.c.plan_id)
        .where(dose_proposals.c.proposal_id == proposal_id)
    )
    return await patient_of(uow.sessions, query, f"no dose proposal {proposal_id}")


async def plan_detail(uow: UnitOfWork, plan_id: uuid.UUID) -> dict[str, object]:
    async with uow.sessions() as session:
        return await _plan(session, plan_id)


async def latest_plan(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, object]:
    """The patient's latest plan (NotFound when they have none)."""
    async with uow.sessions() as session:
        plan_id = (
            await session.execute(
                select(treatment_plans.c.plan_id)
                .where(treatment_plans.c.patient_id == patient_id)
                .order_by(treatment_plans.c.created_at.desc())
                .limit(1)
            )
        ).scalar()
        if plan_id is None:
            raise NotFound("this patient has no treatment plan")
        return await _plan(session, plan_id)


async def proposal_plan(uow: UnitOfWork, proposal_id: uuid.UUID) -> dict[str, object]:
    """The plan a dose proposal belongs to (a proposal never changes plan)."""
    async with uow.sessions() as session:
        plan_id = (
            await session.execute(select(dose_proposals.c.plan_id).where(dose_proposals.c.proposal_id == proposal_id))
        ).scalar_one()
        return await _plan(session, plan_id)


async def _plan(session: AsyncSession, plan_id: uuid.UUID) -> dict[str, object]:
    plan = (await session.execute(select(treatment_plans).where(treatment_plans.c.plan_id == plan_id))).first()
    if plan is None:
        raise NotFound(f"no treatment plan {plan_id}")
    holds = await session.execute(
        select(treatment_holds.c.hold_id).where(
            treatment_holds.c.patient_id == plan.patient_id, treatment_holds.c.status == "open"
        )
    )
    transitions = await session.execute(
        select(plan_transitions).where(plan_transitions.c.plan_id == plan_id).order_by(plan_transitions.c.id)
    )
    proposals = await session.execute(
        select(dose_proposals).where(dose_proposals.c.plan_id == plan_id).order_by(dose_proposals.c.proposed_at)
    )
    return {
        **plan._asdict(),
        "open_hold_ids": list(holds.scalars()),
        "transitions": [t._asdict() for t in transitions],
        "proposals": [p._asdict() for p in proposals],
    }


# --- outcomes ------------------------------------------------------------------------------


async def patient_outcomes(uow: UnitOfWork, patient_id: uuid.UUID, definitions: OutcomeDefinitions) -> dict[str, Any]:
    async with uow.sessions() as session:
        facts = (await outcome_tracking.load_facts(session, patient_ids=[patient_id]))[patient_id]
    return {
        "patient_id": patient_id,
        "definition_version": definitions.version,
        "indication": facts.indication,
        "indication_instrument": definitions.instrument_for(facts.indication) if facts.indication else None,
        "first_dose_at": facts.first_dose_at,
        "instruments": [_instrument(o) for o in outcomes.patient_outcomes(facts, definitions)],
        "definitions": definitions.describe(),
    }


def _instrument(o: outcomes.InstrumentOutcome) -> dict[str, Any]:
    latest = o.latest
    return {
        **{k: getattr(o, k) for k in ("instrument", "definition_version", "baseline", "baseline_at", "first_dose_at")},
        "latest": latest.total if latest else None,
        "latest_at": latest.at if latest else None,
        "change_points": o.change_points,
        "change_percent": o.change_percent,
        "response": o.response,
        "remission": o.remission,
        "response_at": o.response_at,
        "days_to_response": o.days_to_response,
        "remission_at": o.remission_at,
        "follow_ups": [asdict(f) for f in o.follow_ups],
    }


async def program_outcomes(
    uow: UnitOfWork,
    definitions: OutcomeDefinitions,
    *,
    as_of: datetime,
    scope: ListScope | None,
    suppress: bool,
) -> dict[str, Any]:
    """The program's figures over every patient with a plan (``scope``: the clinician's patients only).
    Computed from the facts on each read: the cohort is the program's, thousands of patients at most."""
    async with uow.sessions() as session:
        facts = await outcome_tracking.load_facts(session, scope=scope)
    program = outcomes.program_outcomes(facts.values(), definitions, as_of=as_of)
    if suppress:
        program = outcomes.suppress(program, definitions.min_cell_size)
    return {
        "definition_version": program.definition_version,
        "as_of": program.as_of,
        "scope": "every state"
        if scope is None
        else "the caller's patients (related to them, in their licensed states)",
        "suppressed_below": definitions.min_cell_size if suppress else None,
        "figures": [{**asdict(f), "value": f.value} for f in program.figures],
        "cohorts": [asdict(c) for c in program.cohorts],
        "weeks": [asdict(w) for w in program.weeks],
        "definitions": definitions.describe(),
    }


# --- FHIR (fhir.py maps these rows) ------------------------------------------------------------

# A patient has a handful of plans over a lifetime; the FHIR search pages through at most this many.
FHIR_PLANS_MAX = 200


async def plans_with_holds(
    uow: UnitOfWork, *, patient_id: uuid.UUID | None = None, plan_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """A patient's plans (or one plan), newest first, each with the reviews its patient's open holds wait on."""
    query = select(treatment_plans).order_by(treatment_plans.c.created_at.desc(), treatment_plans.c.plan_id)
    if patient_id is not None:
        query = query.where(treatment_plans.c.patient_id == patient_id)
    if plan_id is not None:
        query = query.where(treatment_plans.c.plan_id == plan_id)
    async with uow.sessions() as session:
        plans = [dict(p) for p in (await session.execute(query.limit(FHIR_PLANS_MAX))).mappings()]
        patients = {p["patient_id"] for p in plans}
        holds = await session.execute(
            select(treatment_holds.c.patient_id, treatment_holds.c.review_id, treatment_holds.c.opened_at)
            .where(
                treatment_holds.c.patient_id.in_(patients),
                treatment_holds.c.status == "open",
                treatment_holds.c.review_id.is_not(None),  # dosing's own (consent) holds wait on no review
            )
            .order_by(treatment_holds.c.opened_at)
        )
        waiting: dict[uuid.UUID, list[uuid.UUID]] = {}
        for hold in holds:
            waiting.setdefault(hold.patient_id, []).append(hold.review_id)
    return [{**p, "open_hold_review_ids": waiting.get(p["patient_id"], [])} for p in plans]
