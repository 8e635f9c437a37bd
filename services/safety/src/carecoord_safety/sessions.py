"""Dosing sessions as safety sees them: when each starts, whether the patient
checked in afterwards, and the timers that chase a missing check-in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from carecoord_shared.contracts.safety import CheckInMissed
from carecoord_shared.messaging.unit_of_work import Transaction

from . import reviews, timers
from .models import dosing_sessions
from .rules import ReviewRequest, RuleSet


async def booked(tx: Transaction, rules: RuleSet, *, appointment_id: uuid.UUID, patient_id: uuid.UUID, starts_at: datetime) -> None:
    """A dosing session is on the calendar (or moved): (re)arm its check-in timers."""
    await tx.session.execute(
        insert(dosing_sessions)
        .values(appointment_id=appointment_id, patient_id=patient_id, starts_at=starts_at, status="booked")
        .on_conflict_do_update(index_elements=[dosing_sessions.c.appointment_id], set_={"starts_at": starts_at, "status": "booked"})
    )
    due = {timers.CHECKIN_MISSED: rules.timers.checkin_missed_after, timers.CHECKIN_REVIEW: rules.timers.checkin_review_after}
    for kind, after in due.items():
        await timers.schedule(tx, kind, patient_id=patient_id, subject_id=appointment_id, due_at=starts_at + after)


async def cancelled(tx: Transaction, *, appointment_id: uuid.UUID, now: datetime) -> None:
    await tx.session.execute(
        update(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id).values(status="cancelled")
    )
    for kind in (timers.CHECKIN_MISSED, timers.CHECKIN_REVIEW):
        await timers.cancel(tx, kind, subject_id=appointment_id, now=now)


async def checked_in(tx: Transaction, appointment_id: uuid.UUID, *, now: datetime) -> None:
    await tx.session.execute(
        update(dosing_sessions)
        .where(dosing_sessions.c.appointment_id == appointment_id, dosing_sessions.c.checked_in_at.is_(None))
        .values(checked_in_at=now)
    )
    for kind in (timers.CHECKIN_MISSED, timers.CHECKIN_REVIEW):
        await timers.cancel(tx, kind, subject_id=appointment_id, now=now)


async def _still_missing(tx: Transaction, appointment_id: uuid.UUID) -> Any:
    session = (
        await tx.session.execute(select(dosing_sessions).where(dosing_sessions.c.appointment_id == appointment_id))
    ).first()
    return session if session and session.status == "booked" and session.checked_in_at is None else None


def timer_actions(rules: RuleSet) -> dict[str, timers.Fire]:
    """What each timer kind does when it fires."""

    async def checkin_missed(tx: Transaction, timer: Any, now: datetime) -> None:
        if session := await _still_missing(tx, timer.subject_id):
            hours = int((now - session.starts_at).total_seconds() // 3600)
            tx.emit(CheckInMissed(appointment_id=timer.subject_id, hours_since_start=max(hours, 0)), patient_id=timer.patient_id)

    async def checkin_review(tx: Transaction, timer: Any, now: datetime) -> None:
        action = rules.timers.checkin_review
        if action is None or not await _still_missing(tx, timer.subject_id):
            return
        hours = int(rules.timers.checkin_review_after.total_seconds() // 3600)
        request = ReviewRequest(
            reason=action.reason,
            priority=action.priority,
            due_within=action.due_within,
            hold=False,
            triggers=(f"no_checkin_{hours}h_after_dosing",),
            rule_ids=("timers.checkin_review",),
        )
        await reviews.open_or_join(
            tx, request, patient_id=timer.patient_id, rule_version=rules.version, source_kind="timer", source_id=timer.timer_id, now=now
        )

    async def review_overdue(tx: Transaction, timer: Any, now: datetime) -> None:
        await reviews.mark_overdue(tx, timer.subject_id, now=now)

    return {timers.CHECKIN_MISSED: checkin_missed, timers.CHECKIN_REVIEW: checkin_review, timers.REVIEW_OVERDUE: review_overdue}
