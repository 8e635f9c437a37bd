"""Outcome use cases: record a completed dosing session's start, and announce the milestones reached.

Load -> decide -> save -> emit, in the caller's transaction: the facts are dosing's own copies of
what intake (AssessmentScored), safety (MoodCheckInRecorded) and scheduling (AppointmentCompleted)
published, the decision is ``outcomes.instrument_outcome`` (pure), and a milestone's row and its
event commit together. The row's primary key (patient, instrument, milestone, definition version)
makes each event once, whatever order the facts arrive in and however often they are redelivered.
``load_facts`` is also the read side's loader (queries.py), so the endpoint and the events agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.common import Indication, Instrument
from carecoord_contracts.dosing import RemissionReached, TreatmentResponseReached
from carecoord_shared.auth import ListScope, related_patients
from carecoord_shared.messaging.unit_of_work import HandlerTransaction, Transaction
from carecoord_shared.statements import insert_new

from . import outcomes
from .models import (
    care_relations,
    completed_sessions,
    intake_assessments,
    jurisdictions,
    outcome_milestones,
    safety_observations,
    treatment_plans,
)
from .outcomes import OutcomeDefinitions, PatientFacts, Score

MOOD_TOTAL = {Instrument.phq9: "phq9_total", Instrument.pcl5: "pcl5_total", Instrument.gad7: "gad7_total"}
EVENTS = {"response": TreatmentResponseReached, "remission": RemissionReached}


async def record_session(
    tx: HandlerTransaction, *, appointment_id: uuid.UUID, plan_id: uuid.UUID | None, started_at: datetime
) -> None:
    await insert_new(
        tx.session,
        completed_sessions,
        "appointment_id",
        appointment_id=appointment_id,
        patient_id=tx.cause.patient_id,
        plan_id=plan_id,
        started_at=started_at,
    )


async def announce_milestones(tx: Transaction, patient_id: uuid.UUID, definitions: OutcomeDefinitions) -> None:
    """Emit each milestone the patient's facts now show and no event has announced under this version."""
    facts = (await load_facts(tx.session, patient_ids=[patient_id])).get(patient_id)
    if facts is None or facts.first_dose_at is None:
        return
    for outcome in outcomes.patient_outcomes(facts, definitions):
        for milestone, reached_at in outcomes.reached(outcome):
            inserted = await tx.session.execute(
                pg_insert(outcome_milestones)
                .values(
                    patient_id=patient_id,
                    instrument=outcome.instrument.value,
                    milestone=milestone,
                    definition_version=definitions.version,
                    reached_at=reached_at,
                )
                .on_conflict_do_nothing()
                .returning(outcome_milestones.c.patient_id)
            )
            if inserted.first() is None:
                continue  # announced before
            follow_up = next(f for f in outcome.follow_ups if f.at == reached_at)
            assert outcome.baseline is not None and outcome.first_dose_at is not None
            tx.emit(
                EVENTS[milestone](
                    instrument=outcome.instrument,
                    definition_version=definitions.version,
                    baseline_total=outcome.baseline,
                    total=follow_up.total,
                    measured_at=follow_up.at,
                    first_dose_at=outcome.first_dose_at,
                    days_since_first_dose=follow_up.days_since_first_dose,
                ),
                patient_id=patient_id,
            )


async def load_facts(
    session: AsyncSession, *, patient_ids: Collection[uuid.UUID] | None = None, scope: ListScope | None = None
) -> dict[uuid.UUID, PatientFacts]:
    """What dosing knows of each patient's outcomes: the latest plan's indication, the first completed dosing
    session's start, intake's scores and the check-ins' totals. ``patient_ids`` None: every patient with a
    plan (``scope``: only the clinician's, living in their licensed states and related to them).
    Four queries, whatever the number of patients."""

    def scoped(query: Select[tuple[object, ...]], column: object) -> Select[tuple[object, ...]]:
        if patient_ids is not None:
            query = query.where(column.in_(list(patient_ids)))  # type: ignore[attr-defined]
        if scope is not None:
            in_states = jurisdictions.c.state_of_residence.in_(sorted(scope.states))
            query = query.where(
                column.in_(select(jurisdictions.c.patient_id).where(in_states)),  # type: ignore[attr-defined]
                column.in_(related_patients(care_relations, scope.clinician_id)),  # type: ignore[attr-defined]
            )
        return query

    p = treatment_plans.c
    latest = select(p.patient_id, p.indication).distinct(p.patient_id).order_by(p.patient_id, p.created_at.desc())
    indications = {r.patient_id: r.indication for r in await session.execute(scoped(latest, p.patient_id))}
    ids = set(indications) if patient_ids is None else set(patient_ids)
    if not ids:
        return {}
    c = completed_sessions.c
    first_dose = select(c.patient_id, func.min(c.started_at).label("at")).where(c.patient_id.in_(ids))
    doses = {r.patient_id: r.at for r in await session.execute(first_dose.group_by(c.patient_id))}
    a = intake_assessments.c
    intake: dict[uuid.UUID, dict[Instrument, list[Score]]] = {}
    for r in await session.execute(
        select(a.patient_id, a.instrument, a.total, a.scored_at).where(a.patient_id.in_(ids))
    ):
        intake.setdefault(r.patient_id, {}).setdefault(Instrument(r.instrument), []).append(Score(r.scored_at, r.total))
    o = safety_observations.c
    check_ins: dict[uuid.UUID, dict[Instrument, list[Score]]] = {}
    moods = select(o.patient_id, o.observed_at, o.phq9_total, o.gad7_total, o.pcl5_total).where(
        o.patient_id.in_(ids), o.kind == "mood"
    )
    for r in await session.execute(moods):
        for instrument, column in MOOD_TOTAL.items():
            total = getattr(r, column)
            if total is not None:
                check_ins.setdefault(r.patient_id, {}).setdefault(instrument, []).append(Score(r.observed_at, total))
    return {
        pid: PatientFacts(
            patient_id=pid,
            indication=Indication(indications[pid]) if indications.get(pid) else None,
            first_dose_at=doses.get(pid),
            intake=intake.get(pid, {}),
            check_ins=check_ins.get(pid, {}),
        )
        for pid in ids
    }
