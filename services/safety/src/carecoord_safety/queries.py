"""The read side the routes present: a patient's chart (side-effect reports, vitals, mood check-ins, a page
at a time, newest first), the review worklist, one review with its trigger history, the rule views and the
shadow replay. Each is one session (the worklist and each chart page one query); nothing here writes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal, not_, select

from carecoord_shared.auth import patient_of
from carecoord_shared.auth.care import ListScope
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, read_page

from . import reach, rules, shadow
from .models import (
    clinician_reviews,
    mood_checkins,
    review_triggers,
    side_effect_reports,
    vitals_readings,
)
from .rules import RuleSet

# What the worklist shows when no status is asked for: a patient's own list includes its resolved reviews.
WORKLIST_STATUSES = ["open", "acknowledged"]
PATIENT_STATUSES = ["open", "acknowledged", "resolved"]


# A patient's chart, newest first: each list in the time the observation is about (a report has only the time
# it arrived), its id breaking ties so that no row is skipped or repeated between pages.
REPORTS_NEWEST = Ordering(
    "side-effect-reports.newest",
    (
        SortKey(side_effect_reports.c.received_at, descending=True),
        SortKey(side_effect_reports.c.report_id, descending=True),
    ),
)
VITALS_NEWEST = Ordering(
    "vitals.newest",
    (SortKey(vitals_readings.c.measured_at, descending=True), SortKey(vitals_readings.c.reading_id, descending=True)),
)
CHECKINS_NEWEST = Ordering(
    "mood-check-ins.newest",
    (SortKey(mood_checkins.c.answered_at, descending=True), SortKey(mood_checkins.c.checkin_id, descending=True)),
)


async def _page(uow: UnitOfWork, query: Select[Any], ordering: Ordering, page: PageRequest) -> dict[str, Any]:
    async with uow.sessions() as session:
        return await read_page(session, query, ordering, page)


async def side_effect_reports_of(
    uow: UnitOfWork, patient_id: uuid.UUID, page: PageRequest, *, with_note: bool
) -> dict[str, Any]:
    """One page of a patient's side-effect reports; the patient's free-text note only ``with_note`` (it is not
    even read otherwise)."""
    t = side_effect_reports.c
    note = t.note if with_note else literal(None).label("note")
    query = select(
        t.report_id, t.symptoms, t.grade, t.onset_minutes_after_dose, t.received_at, t.escalated,
        t.unknown_symptoms, t.rule_version, t.advice, note,
    ).where(t.patient_id == patient_id)  # fmt: skip
    return await _page(uow, query, REPORTS_NEWEST, page)


async def vitals_of(uow: UnitOfWork, patient_id: uuid.UUID, page: PageRequest) -> dict[str, Any]:
    t = vitals_readings.c
    query = select(
        t.reading_id, t.systolic, t.diastolic, t.heart_rate, t.measured_at, t.context, t.out_of_limits, t.received_at
    ).where(t.patient_id == patient_id)
    return await _page(uow, query, VITALS_NEWEST, page)


async def mood_checkins_of(uow: UnitOfWork, patient_id: uuid.UUID, page: PageRequest) -> dict[str, Any]:
    t = mood_checkins.c
    query = select(t.checkin_id, t.phq9_total, t.phq9_item9, t.gad7_total, t.pcl5_total, t.answered_at).where(
        t.patient_id == patient_id
    )
    return await _page(uow, query, CHECKINS_NEWEST, page)


async def review_patient(uow: UnitOfWork, review_id: uuid.UUID) -> uuid.UUID:
    """The patient a review is about (what access is checked against), or NotFound."""
    query = select(clinician_reviews.c.patient_id).where(clinician_reviews.c.review_id == review_id)
    return await patient_of(uow.sessions, query, f"no clinician review {review_id}")


async def review_detail(uow: UnitOfWork, review_id: uuid.UUID, *, with_note: bool) -> dict[str, object]:
    """A review, its decision and who made it when, and its trigger history; the clinician's note only ``with_note``."""
    async with uow.sessions() as session:
        row = (
            await session.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))
        ).first()
        if row is None:
            raise NotFound(f"no clinician review {review_id}")
        history = await session.execute(
            select(review_triggers).where(review_triggers.c.review_id == review_id).order_by(review_triggers.c.id)
        )
        detail = row._asdict()
        if not with_note:
            detail["resolution_note"] = None
        return {**detail, "trigger_history": [h._asdict() for h in history]}


# Most urgent first, then earliest due; the review id breaks ties so that paging never skips or repeats one.
WORKLIST_ORDER = Ordering(
    "reviews.worklist",
    (
        SortKey(clinician_reviews.c.priority_rank, descending=True),
        SortKey(clinician_reviews.c.due_at),
        SortKey(clinician_reviews.c.review_id),
    ),
)


# The worklist's other orders: earliest due first (what is about to be late), newest first (what just came in).
WORKLIST_ORDERS = {
    "urgency": WORKLIST_ORDER,
    "due": Ordering("reviews.due", (SortKey(clinician_reviews.c.due_at), SortKey(clinician_reviews.c.review_id))),
    "newest": Ordering(
        "reviews.newest",
        (
            SortKey(clinician_reviews.c.opened_at, descending=True),
            SortKey(clinician_reviews.c.review_id, descending=True),
        ),
    ),
}


async def worklist(
    uow: UnitOfWork,
    page: PageRequest,
    *,
    statuses: list[str] | None,
    priorities: list[str] | None = None,
    reasons: list[str] | None = None,
    patient_id: uuid.UUID | None = None,
    scope: ListScope | None = None,
    overdue: bool | None = None,
    now: datetime | None = None,
    sort: str = "urgency",
    assignee: str | None = None,
) -> dict[str, Any]:
    """One page of the worklist in the ``sort`` order (default most urgent first, then earliest due): one
    patient's reviews, or everyone's (narrowed by ``scope`` when given: to the patients the clinician
    reaches, reach.py); with how many reviews of each priority the whole filtered list holds (what a clinician's
    screen shows above the page). ``overdue``: only (True) or none of (False) the reviews still open past
    their due time at ``now``: what the overdue timer escalates, without waiting for it to fire."""
    ordering = WORKLIST_ORDERS[sort]
    query = select(clinician_reviews)
    if patient_id:
        wanted = statuses or PATIENT_STATUSES
        query = query.where(clinician_reviews.c.patient_id == patient_id)
    else:
        wanted = statuses or WORKLIST_STATUSES
        if scope is not None:
            query = query.where(reach.reachable(clinician_reviews.c.patient_id, scope, now or datetime.now(UTC)))
    query = query.where(clinician_reviews.c.status.in_(wanted))
    if assignee is not None:
        query = query.where(clinician_reviews.c.assignee_id == assignee)
    if priorities:
        query = query.where(clinician_reviews.c.priority.in_(priorities))
    if reasons:
        query = query.where(clinician_reviews.c.reason.in_(reasons))
    if overdue is not None:
        late = and_(clinician_reviews.c.status == "open", clinician_reviews.c.due_at <= (now or datetime.now(UTC)))
        query = query.where(late if overdue else not_(late))
    filtered = query.subquery()
    counts = select(filtered.c.priority, func.count()).group_by(filtered.c.priority)
    async with uow.sessions() as session:
        found = await read_page(session, query, ordering, page)
        by_priority = {priority: n for priority, n in await session.execute(counts)}
    return found | {"counts": by_priority}


def rule_versions(current: RuleSet) -> dict[str, Any]:
    return {"current": current.version, "available": rules.available_versions()}


def symptom_vocabulary(current: RuleSet) -> dict[str, Any]:
    review = next((r.review for r in current.rules if "any_unknown_symptom" in r.when and r.review), None)
    flagged = (
        f"an {review.reason} review ({review.priority.value}, within {int(review.due_within.total_seconds() // 3600)} h)"
        if review
        else "no review"
    )
    return {
        "rule_version": current.version,
        "symptoms": [s.__dict__ | {"advice": list(s.advice)} for s in current.symptoms()],
        "unknown_codes": f"accepted and recorded, never refused; counted, and flagged for a clinician: {flagged}",
    }


async def shadow_replay(uow: UnitOfWork, version: str, *, scope: ListScope | None) -> dict[str, Any]:
    """What ``version`` would have decided about the recorded history (NotFound when no such rule file)."""
    try:
        rules.load(version)
    except rules.RuleFileError as exc:
        raise NotFound(str(exc)) from exc
    async with uow.sessions() as session, session.begin():
        return await shadow.evaluate(session, version, scope=scope)


# --- FHIR (fhir.py maps these rows) ------------------------------------------------------------

# A FHIR search pages through at most this many of one patient's resources, newest first
# (carecoord_shared.http.fhir: the largest _offset plus the largest _count).
FHIR_SEARCH_MAX = 1100


async def fhir_rows(
    uow: UnitOfWork, table: Any, id_column: Any, newest: Any, *, patient_id: uuid.UUID | None = None,
    row_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Rows of ``table`` for FHIR: one patient's newest first (up to FHIR_SEARCH_MAX), or the one with ``row_id``."""
    query = select(table)
    if patient_id is not None:
        query = query.where(table.c.patient_id == patient_id).order_by(newest.desc(), id_column.desc())
    if row_id is not None:
        query = query.where(id_column == row_id)
    async with uow.sessions() as session:
        return [dict(r) for r in (await session.execute(query.limit(FHIR_SEARCH_MAX))).mappings()]


async def review_tasks(
    uow: UnitOfWork, *, patient_id: uuid.UUID | None = None, review_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Reviews with what triggered each (``trigger_history``), for FHIR Tasks: a patient's newest first, or one."""
    t = clinician_reviews.c
    reviews = await fhir_rows(uow, clinician_reviews, t.review_id, t.opened_at, patient_id=patient_id, row_id=review_id)
    async with uow.sessions() as session:
        history = await session.execute(
            select(review_triggers)
            .where(review_triggers.c.review_id.in_([r["review_id"] for r in reviews]))
            .order_by(review_triggers.c.id)
        )
        by_review: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for h in history.mappings():
            by_review.setdefault(h["review_id"], []).append(dict(h))
    return [{**r, "trigger_history": by_review.get(r["review_id"], [])} for r in reviews]
