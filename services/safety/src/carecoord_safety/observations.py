"""Recording what patients report — side effects, vitals, mood check-ins — and
acting on what the rules decide, in one transaction per observation.

The observation, the reviews it opens or joins, the hold it requests and the
events announcing them all commit together, so a crash can never leave a
severe report without its review and hold. Each observation is idempotent on
its client-generated id: a resubmission returns the first outcome.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.metrics import Counter
from sqlalchemy import Row, Table, and_, bindparam, exists, or_, select

from carecoord_contracts.common import Instrument
from carecoord_contracts.intake import AssessmentScored
from carecoord_contracts.patient_app import MoodCheckInSubmitted, SideEffectReportSubmitted, VitalsSubmitted
from carecoord_contracts.safety import MoodCheckInRecorded, SideEffectReported, VitalsRecorded
from carecoord_shared.errors import RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.telemetry import meter

from . import reviews, sessions
from .models import mood_checkins, review_triggers, side_effect_reports, treatment_holds, vitals_readings
from .rules import Assessment, Mood, Observation, RuleSet, SideEffect, Vitals, score_checkin
from .writes import Writes

# Longest window any rule looks back over; history older than this is not loaded.
HISTORY_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Outcome:
    id: uuid.UUID
    created: bool
    escalated: bool
    rule_version: str
    review_ids: list[uuid.UUID] = field(default_factory=list)
    hold_requested: bool = False
    out_of_limits: bool = False
    # Coded guidance for the patient (e.g. seek_emergency_care), for the app to show.
    advice: list[str] = field(default_factory=list)
    # Symptom codes the rule version does not know (side-effect reports only).
    unknown_symptoms: list[str] = field(default_factory=list)

    @property
    def review_id(self) -> uuid.UUID | None:
        return self.review_ids[0] if self.review_ids else None


@functools.cache
def _reports_statement() -> Any:
    """_reports' statement, built once and its values bound when it runs (building it was a good part of its CPU)."""
    t = side_effect_reports
    return select(
        t.c.report_id,
        t.c.patient_id,
        t.c.received_at,
        t.c.grade,
        t.c.symptoms,
        t.c.rule_version,
        t.c.advice,
        t.c.unknown_symptoms,
    ).where(
        or_(
            t.c.report_id == bindparam("report_id", type_=t.c.report_id.type),
            and_(
                t.c.patient_id == bindparam("patient_id", type_=t.c.patient_id.type),
                t.c.received_at >= bindparam("since", type_=t.c.received_at.type),
            ),
        )
    )


async def _reports(
    tx: Transaction, patient_id: uuid.UUID, report_id: uuid.UUID, now: datetime
) -> tuple[Row[Any] | None, list[Observation]]:
    """This report if it was recorded before (a resubmission), and the patient's history the rules look back
    over: one statement, both are rows of side_effect_reports."""
    params = {"report_id": report_id, "patient_id": patient_id, "since": now - HISTORY_WINDOW}
    rows = await tx.session.execute(_reports_statement(), params)
    existing, history = None, list[Observation]()
    for r in rows:
        if r.report_id == report_id:
            existing = _same_patient(r, patient_id, "report_id")
        else:
            history.append(SideEffect(at=r.received_at, grade=r.grade, symptoms=tuple(r.symptoms)))
    return existing, history


async def record_report(
    tx: Transaction,
    rules: RuleSet,
    *,
    patient_id: uuid.UUID,
    observation: SideEffectReportSubmitted,
    source: str,
    now: datetime,
) -> Outcome:
    # The lock is a statement of its own: a statement reads from a snapshot taken when it starts, before it
    # waits for the lock, so a load in the same statement would miss what the lock's last holder committed.
    await tx.lock_patient(patient_id)
    existing, history = await _reports(tx, patient_id, observation.report_id, now)
    if existing is not None:
        return await _again(tx, existing, observation.report_id)
    facts = SideEffect(at=now, grade=observation.grade, symptoms=tuple(observation.symptoms))
    assessment = rules.assess(facts, history)
    unknown = list(assessment.unknown_symptoms)
    writes = Writes()
    writes.insert(
        side_effect_reports,
        report_id=observation.report_id,
        patient_id=patient_id,
        symptoms=list(observation.symptoms),
        grade=observation.grade,
        onset_minutes_after_dose=observation.onset_minutes_after_dose,
        note=observation.note,
        source=source,
        received_at=now,
        escalated=assessment.escalated,
        unknown_symptoms=unknown,
        **_decision(assessment),
    )
    tx.emit(
        SideEffectReported(
            report_id=observation.report_id,
            symptoms=list(observation.symptoms),
            grade=observation.grade,
            escalated=assessment.escalated,
            rule_version=assessment.rule_version,
            advice=list(assessment.advice),
            unknown_symptoms=unknown,
        ),
        patient_id=patient_id,
    )
    if unknown:
        # Counted, never labelled with the code: codes come from outside and are unbounded.
        _unknown_symptom_codes().add(
            len(unknown), {"source": source if source in SOURCES else "other", "rule_version": assessment.rule_version}
        )
    return await _act(
        tx, writes, assessment, patient_id=patient_id, kind="side_effect", source_id=observation.report_id, now=now
    )


async def record_vitals(
    tx: Transaction, rules: RuleSet, *, patient_id: uuid.UUID, observation: VitalsSubmitted, source: str, now: datetime
) -> Outcome:
    await tx.lock_patient(patient_id)
    if (
        existing := await _existing(
            tx, vitals_readings, vitals_readings.c.reading_id, observation.reading_id, patient_id
        )
    ) is not None:
        return await _again(tx, existing, observation.reading_id)
    assessment = rules.assess(
        Vitals(
            at=observation.measured_at,
            systolic=observation.systolic,
            diastolic=observation.diastolic,
            context=observation.context.value,
        )
    )
    writes = Writes()
    writes.insert(
        vitals_readings,
        reading_id=observation.reading_id,
        patient_id=patient_id,
        systolic=observation.systolic,
        diastolic=observation.diastolic,
        heart_rate=observation.heart_rate,
        measured_at=observation.measured_at,
        context=observation.context.value,
        appointment_id=observation.appointment_id,
        source=source,
        received_at=now,
        out_of_limits=assessment.out_of_limits,
        **_decision(assessment),
    )
    tx.emit(
        VitalsRecorded(
            reading_id=observation.reading_id,
            systolic=observation.systolic,
            diastolic=observation.diastolic,
            heart_rate=observation.heart_rate,
            measured_at=observation.measured_at,
            context=observation.context,
            appointment_id=observation.appointment_id,
            within_limits=not assessment.out_of_limits,
            rule_version=assessment.rule_version,
            advice=list(assessment.advice),
        ),
        patient_id=patient_id,
    )
    if observation.appointment_id and observation.context.value == "post_dose":
        await sessions.checked_in(
            tx, appointment_id=observation.appointment_id, patient_id=patient_id, at=observation.measured_at, now=now
        )
    return await _act(
        tx, writes, assessment, patient_id=patient_id, kind="vitals", source_id=observation.reading_id, now=now
    )


async def record_checkin(
    tx: Transaction,
    rules: RuleSet,
    *,
    patient_id: uuid.UUID,
    observation: MoodCheckInSubmitted,
    source: str,
    now: datetime,
) -> Outcome:
    await tx.lock_patient(patient_id)
    existing = await _existing(tx, mood_checkins, mood_checkins.c.checkin_id, observation.checkin_id, patient_id)
    if existing is not None:
        return await _again(tx, existing, observation.checkin_id)
    scores = score_checkin(observation.phq9_items, observation.pcl5_items, observation.gad7_items)
    assessment = rules.assess(scores.mood(observation.answered_at))
    writes = Writes()
    writes.insert(
        mood_checkins,
        checkin_id=observation.checkin_id,
        patient_id=patient_id,
        phq9_items=observation.phq9_items,
        pcl5_items=observation.pcl5_items,
        gad7_items=observation.gad7_items,
        **asdict(scores),
        answered_at=observation.answered_at,
        appointment_id=observation.appointment_id,
        source=source,
        received_at=now,
        **_decision(assessment),
    )
    tx.emit(
        MoodCheckInRecorded(
            checkin_id=observation.checkin_id,
            **asdict(scores),
            appointment_id=observation.appointment_id,
        ),
        patient_id=patient_id,
    )
    if observation.appointment_id:
        # The post-dose check-in only if answered after the dose; before it, a mood observation like any other.
        await sessions.checked_in(
            tx, appointment_id=observation.appointment_id, patient_id=patient_id, at=observation.answered_at, now=now
        )
    return await _act(
        tx, writes, assessment, patient_id=patient_id, kind="mood", source_id=observation.checkin_id, now=now
    )


async def record_screening(
    tx: Transaction, rules: RuleSet, *, patient_id: uuid.UUID, observation: AssessmentScored, now: datetime
) -> Outcome:
    """A PHQ-9 scored at intake goes through the same mood rules as a check-in.

    Intake publishes only whether item 9 was above 0, not the answer, so a
    positive item 9 is assessed as 1, the least severe positive answer: the
    rule (any answer above 0) decides the same either way."""
    if observation.instrument is not Instrument.phq9:
        return Outcome(id=observation.assessment_id, created=False, escalated=False, rule_version=rules.version)
    await tx.lock_patient(patient_id)
    mood = Mood(at=now, phq9_item9=1 if observation.item9_positive else 0, phq9_total=observation.total)
    return await _act(
        tx,
        Writes(),
        rules.assess(mood),
        patient_id=patient_id,
        kind="intake_screening",
        source_id=observation.assessment_id,
        now=now,
    )


SOURCES = frozenset({"http", "patient-app"})


@functools.cache
def _unknown_symptom_codes() -> Counter:
    return meter().create_counter(
        "carecoord.safety.unknown_symptom_codes",
        description="Symptom codes in side-effect reports that the rule version in force does not know, by source and rule version",
    )


def _decision(assessment: Assessment) -> dict[str, Any]:
    return {
        "rule_version": assessment.rule_version,
        "fired": list(assessment.fired),
        "triggers": list(assessment.triggers),
        "advice": list(assessment.advice),
    }


async def _act(
    tx: Transaction,
    writes: Writes,
    assessment: Assessment,
    *,
    patient_id: uuid.UUID,
    kind: str,
    source_id: uuid.UUID,
    now: datetime,
) -> Outcome:
    """The reviews the assessment asks for, opened or joined: their unresolved reviews and who could take
    a new one loaded in one statement (none when it asks for none), each decided, and everything staged
    in ``writes`` (the observation's own row first) saved in one more."""
    review_ids, hold = [], False
    current, found = await reviews.unresolved(tx, patient_id, [request.reason for request in assessment.reviews], now)
    for request in assessment.reviews:
        result = reviews.stage(
            tx,
            writes,
            request,
            current.get(request.reason),
            patient_id=patient_id,
            rule_version=assessment.rule_version,
            source_kind=kind,
            source_id=source_id,
            now=now,
            candidates=found,
        )
        review_ids.append(result.review_id)
        hold = hold or result.hold_requested
    await writes.save(tx)
    return Outcome(
        id=source_id,
        created=True,
        escalated=assessment.escalated,
        rule_version=assessment.rule_version,
        review_ids=review_ids,
        hold_requested=hold,
        out_of_limits=assessment.out_of_limits,
        advice=list(assessment.advice),
        unknown_symptoms=list(assessment.unknown_symptoms),
    )


async def _existing(
    tx: Transaction, table: Table, id_column: Any, source_id: uuid.UUID, patient_id: uuid.UUID
) -> Row[Any] | None:
    """The observation recorded before under this id (a resubmission), if any: the same patient's only."""
    row = (await tx.session.execute(select(table).where(id_column == source_id))).first()
    return None if row is None else _same_patient(row, patient_id, id_column.name)


class ObservationIdTaken(RuleViolation):
    """A client-chosen id (report_id, reading_id, checkin_id) that already names another patient's observation:
    refused (HTTP 409; an event is parked and dead-lettered), never taken for a resubmission, which would
    answer the other patient's outcome and record nothing of this one."""


def _same_patient(row: Row[Any], patient_id: uuid.UUID, id_name: str) -> Row[Any]:
    if row.patient_id != patient_id:
        raise ObservationIdTaken(f"this {id_name} already names another observation; send a new {id_name}")
    return row


async def _again(tx: Transaction, row: Row[Any], source_id: uuid.UUID) -> Outcome:
    """The first outcome of an observation recorded before: the reviews it triggered and whether any of them
    holds the plan, in one statement."""
    held = exists().where(treatment_holds.c.review_id == review_triggers.c.review_id)
    linked = (
        await tx.session.execute(
            select(review_triggers.c.review_id, held.label("held"))
            .where(review_triggers.c.source_id == source_id)
            .order_by(review_triggers.c.id)
        )
    ).all()
    return Outcome(
        id=source_id,
        created=False,
        escalated=bool(linked),
        rule_version=row.rule_version,
        review_ids=list(dict.fromkeys(r.review_id for r in linked)),
        hold_requested=any(r.held for r in linked),
        out_of_limits=bool(getattr(row, "out_of_limits", False)),
        advice=list(row.advice or []),
        unknown_symptoms=list(getattr(row, "unknown_symptoms", None) or []),
    )
