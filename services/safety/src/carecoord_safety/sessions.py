"""Dosing sessions as safety sees them, and the timers that chase a missing
post-dose check-in.

The post-dose timers run from the dose: dosing's ``DosingSessionAuthorised``
(its ``occurred_at``), not the booked start. A session that is refused, or never
authorised, has none. What arrives about a session comes from three topics
(scheduling.appointments, dosing.sessions, patient-app.reports) in no
guaranteed order across them, so every handler upserts the session by its
appointment id and the state is judged from the times the events carry, never
from the order they came in:

- a check-in counts as the post-dose check-in only when it was answered (a
  vitals reading: measured) at or after the authorisation; an earlier one is a
  mood observation like any other. A check-in that arrived before the
  authorisation is found again when the authorisation comes;
- once authorised, the timers stand whatever scheduling says next (a hold that
  cancels the appointment, a no-show): the tablet was released and may have been
  taken. A refusal, a cancellation or a no-show of a session never authorised
  cancels whatever timers it had (a session booked before 2026.12.1 still has
  timers from its booked start; those fire as before unless one of these comes).
- a no-show opens the review the rules name (``[timers] no_show_review``), once.

The decisions are pure, in domain/sessions.py; each use case here loads the
session (locked), asks them, then writes and schedules.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from carecoord_contracts.safety import CheckInMissed
from carecoord_shared.messaging.unit_of_work import Transaction

from . import assignment, reviews, timers
from .domain import sessions as decide
from .domain.sessions import Session
from .models import dosing_sessions, mood_checkins, vitals_readings
from .rules import RuleSet

# The default of SafetySettings.lead_escalation_minutes (tests build the actions without settings).
DEFAULT_LEAD_AFTER = timedelta(minutes=30)

POST_DOSE_TIMERS = (timers.CHECKIN_MISSED, timers.CHECKIN_REVIEW)

log = structlog.get_logger("carecoord.safety.sessions")


def _session(row: Any) -> Session:
    return Session(
        status=row.status,
        starts_at=row.starts_at,
        authorised_at=row.authorised_at,
        refused_at=row.refused_at,
        no_show_at=row.no_show_at,
        checked_in_at=row.checked_in_at,
    )


async def _upsert(
    tx: Transaction, *, appointment_id: uuid.UUID, patient_id: uuid.UUID, **values: Any
) -> Session | None:
    """The session's row as it was before this event (created if this is the first word about it), locked for
    this transaction, with ``values`` then written. None when the appointment belongs to another patient: an
    event keyed by one patient never changes another's session."""
    await tx.session.execute(
        insert(dosing_sessions)
        .values(appointment_id=appointment_id, patient_id=patient_id, status="unbooked")
        .on_conflict_do_nothing(index_elements=[dosing_sessions.c.appointment_id])
    )
    row = (
        await tx.session.execute(
            select(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id).with_for_update()
        )
    ).one()
    if row.patient_id != patient_id:
        log.warning("dosing_session.other_patient", appointment_id=str(appointment_id))
        return None
    if values:
        await tx.session.execute(
            update(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id).values(**values)
        )
    return _session(row)


async def _cancel_timers(tx: Transaction, appointment_id: uuid.UUID, now: datetime) -> None:
    for kind in POST_DOSE_TIMERS:
        await timers.cancel(tx, kind, subject_id=appointment_id, now=now)


async def booked(
    tx: Transaction,
    rules: RuleSet,
    *,
    appointment_id: uuid.UUID,
    patient_id: uuid.UUID,
    starts_at: datetime,
    now: datetime,
) -> None:
    """A dosing session is on the calendar (or moved). Its timers wait for the dose, not for the booked start."""
    session = await _upsert(tx, appointment_id=appointment_id, patient_id=patient_id, starts_at=starts_at)
    if session is None:
        return
    if session.status in decide.REBOOKABLE:
        await tx.session.execute(
            update(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id).values(status="booked")
        )
    if session.authorised_at is None:
        await _cancel_timers(tx, appointment_id, now)  # a booked-start timer of a session booked before 2026.12.1


async def authorised(
    tx: Transaction,
    rules: RuleSet,
    *,
    appointment_id: uuid.UUID,
    patient_id: uuid.UUID,
    authorisation_id: uuid.UUID,
    at: datetime,
    now: datetime,
) -> None:
    """Dosing authorised the session: the dose. The post-dose timers run from ``at``."""
    session = await _upsert(tx, appointment_id=appointment_id, patient_id=patient_id)
    if session is None or session.authorised_at is not None:
        return  # dosing authorises a session once; a second word about it changes nothing
    first_after = await _first_check_in_since(tx, appointment_id, patient_id, at)
    await tx.session.execute(
        update(dosing_sessions)
        .where(dosing_sessions.c.appointment_id == appointment_id)
        .values(authorised_at=at, authorisation_id=authorisation_id, checked_in_at=first_after)
    )
    if first_after is not None:
        await _cancel_timers(tx, appointment_id, now)  # already checked in after the dose (that event came first)
        return
    due = decide.post_dose_due(rules, at)
    for kind, due_at in ((timers.CHECKIN_MISSED, due.checkin_missed), (timers.CHECKIN_REVIEW, due.checkin_review)):
        await timers.schedule(tx, kind, patient_id=patient_id, subject_id=appointment_id, due_at=due_at)


async def refused(
    tx: Transaction, *, appointment_id: uuid.UUID, patient_id: uuid.UUID, reason: str, at: datetime, now: datetime
) -> None:
    """Dosing refused the session (paused plan, no approved dose, blood pressure): no dose, so nothing to chase."""
    session = await _upsert(
        tx, appointment_id=appointment_id, patient_id=patient_id, refused_at=at, refusal_reason=reason
    )
    if session is not None and session.authorised_at is None:
        await _cancel_timers(tx, appointment_id, now)


async def cancelled(tx: Transaction, *, appointment_id: uuid.UUID, patient_id: uuid.UUID, now: datetime) -> None:
    session = await _upsert(tx, appointment_id=appointment_id, patient_id=patient_id, status="cancelled")
    if session is not None and session.authorised_at is None:
        await _cancel_timers(tx, appointment_id, now)


async def no_show(
    tx: Transaction,
    rules: RuleSet,
    *,
    appointment_id: uuid.UUID,
    patient_id: uuid.UUID,
    starts_at: datetime,
    at: datetime,
    now: datetime,
) -> None:
    """The patient did not attend the monitored session: they may have dosed unsupervised, or not at all."""
    before = await _upsert(tx, appointment_id=appointment_id, patient_id=patient_id)
    if before is None:
        return
    await tx.session.execute(
        update(dosing_sessions)
        .where(dosing_sessions.c.appointment_id == appointment_id)
        .values(
            status="no_show",
            no_show_at=func.coalesce(dosing_sessions.c.no_show_at, at),
            starts_at=func.coalesce(dosing_sessions.c.starts_at, starts_at),
        )
    )
    if before.authorised_at is None:
        await _cancel_timers(tx, appointment_id, now)
    request = decide.no_show_review(rules, before)
    if request is None:
        return
    await reviews.open_or_join(
        tx,
        request,
        patient_id=patient_id,
        rule_version=rules.version,
        source_kind="no_show",
        source_id=appointment_id,
        now=now,
    )


async def checked_in(
    tx: Transaction, *, appointment_id: uuid.UUID, patient_id: uuid.UUID, at: datetime, now: datetime
) -> bool:
    """A check-in (answered, or measured, at ``at``) naming the session. It is the post-dose check-in only if it
    came after the dose; returns whether it was. One that arrives before the authorisation is kept with the
    observation and counted when the authorisation arrives (``authorised``)."""
    row = (
        await tx.session.execute(
            select(dosing_sessions)
            .where(dosing_sessions.c.appointment_id == appointment_id, dosing_sessions.c.patient_id == patient_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        return False
    session = _session(row)
    if not decide.is_post_dose(session, at):
        return False  # before the dose: a mood observation, not the post-dose check-in
    if decide.earliest_check_in(session, at):
        await tx.session.execute(
            update(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id).values(checked_in_at=at)
        )
    await _cancel_timers(tx, appointment_id, now)
    return True


async def _first_check_in_since(
    tx: Transaction, appointment_id: uuid.UUID, patient_id: uuid.UUID, since: datetime
) -> datetime | None:
    """The earliest recorded check-in of this patient naming this session at or after ``since``."""
    mood = select(func.min(mood_checkins.c.answered_at)).where(
        mood_checkins.c.appointment_id == appointment_id,
        mood_checkins.c.patient_id == patient_id,
        mood_checkins.c.answered_at >= since,
    )
    vitals = select(func.min(vitals_readings.c.measured_at)).where(
        vitals_readings.c.appointment_id == appointment_id,
        vitals_readings.c.patient_id == patient_id,
        vitals_readings.c.context == "post_dose",
        vitals_readings.c.measured_at >= since,
    )
    found = [
        t
        for t in ((await tx.session.execute(mood)).scalar(), (await tx.session.execute(vitals)).scalar())
        if t is not None
    ]
    return min(found, default=None)


async def _still_missing(tx: Transaction, appointment_id: uuid.UUID) -> Session | None:
    """The session a fired timer is about, when its post-dose check-in is still missing (else None)."""
    row = (
        await tx.session.execute(select(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id))
    ).first()
    session = None if row is None else _session(row)
    return session if decide.still_missing(session) else None


def timer_actions(rules: RuleSet, lead_after: timedelta = DEFAULT_LEAD_AFTER) -> dict[str, timers.Fire]:
    """What each timer kind does when it fires; ``lead_after``: from paging on-call to paging the clinical lead."""

    async def checkin_missed(tx: Transaction, timer: Any, now: datetime) -> None:
        if session := await _still_missing(tx, timer.subject_id):
            tx.emit(
                CheckInMissed(appointment_id=timer.subject_id, hours_since_start=decide.hours_since_dose(session, now)),
                patient_id=timer.patient_id,
            )

    async def checkin_review(tx: Transaction, timer: Any, now: datetime) -> None:
        request = decide.missing_check_in_review(rules)
        if request is None or not await _still_missing(tx, timer.subject_id):
            return
        await reviews.open_or_join(
            tx,
            request,
            patient_id=timer.patient_id,
            rule_version=rules.version,
            source_kind="timer",
            source_id=timer.timer_id,
            now=now,
        )

    async def review_overdue(tx: Transaction, timer: Any, now: datetime) -> None:
        if await reviews.mark_overdue(tx, timer.subject_id, now=now):
            await assignment.escalate(tx, timer.subject_id, now=now, lead_after=lead_after)

    async def lead_escalation(tx: Transaction, timer: Any, now: datetime) -> None:
        await assignment.escalate(tx, timer.subject_id, now=now, lead_after=lead_after)

    return {
        timers.CHECKIN_MISSED: checkin_missed,
        timers.CHECKIN_REVIEW: checkin_review,
        timers.REVIEW_OVERDUE: review_overdue,
        timers.LEAD_ESCALATION: lead_escalation,
    }
