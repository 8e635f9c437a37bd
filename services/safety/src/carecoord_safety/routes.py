"""HTTP routes: what patients report (through the app), and the clinicians' review worklist.

Each route authorises, calls one use case (observations, reviews) or query, and presents the
answer; the models are in schemas.py, the reads in queries.py.

Who may call what (carecoord_shared.auth; "licensed" = a clinician licensed in
the patient's state of residence, learnt from PatientRegistered, AND related to
the patient: on their care team, assigned an open review of theirs, or on call
for their state now (reach.py, ADR 0015); every patient check writes an audit
row, allowed or denied, an allowed one with its basis):

| route                                  | patient      | clinician         | operator | service | audited as               |
|----------------------------------------|--------------|-------------------|----------|---------|--------------------------|
| POST /side-effect-reports, /vitals,    | own id only  | licensed          | -        | yes     | submit <observation>     |
|   /mood-check-ins                      |              |                   |          |         |                          |
| GET /patients/{id}/side-effect-      | own id only  | licensed          | -        | yes     | list <observation>       |
|   reports, /vitals, /mood-check-ins    |              |                   |          |         |                          |
|   (the chart, newest first)            |              |                   |          |         |                          |
| GET /reviews (the worklist, paged)     | own id only  | licensed states   | -        | yes     | list review              |
| GET /reviews/{id} (decision, who and   | own only     | licensed          | -        | yes     | read review              |
|   when; the note for clinicians)       |              |                   |          |         |                          |
| PUT /reviews/{id}/assignee (hand it on)| -            | licensed          | yes      | yes     | reassign review          |
| POST /reviews/{id}/acknowledge,        | -            | licensed, in own  | -        | yes     | acknowledge/resolve      |
|   /resolve (clinical decisions)        |              | name              |          |         |   review                 |
| GET /rules                             | -            | yes               | yes      | yes     | not audited: no PHI      |
| GET /rules/symptoms (the vocabulary)   | yes          | yes               | yes      | yes     | not audited: no PHI      |
| POST /rules/shadow                     | -            | licensed states   | -        | yes     | replay rules-shadow      |

A side-effect report's free-text note (and a review's resolution note) is read
back to clinicians only: it was typed for the care team, it may name third
parties or say more than the coded fields, and a service (which only relays or
reports) has no clinical use for it; the patient's app shows the coded report.
Everything else in the chart is the patient's own record, readable by them.

A clinician may record an observation too (vitals taken in a video visit, a
side effect the patient mentions). The rule versions are configuration, not
patient data, so operators (who deploy them) may read them; the symptom
vocabulary is what the patient app offers, so patients read it too. The shadow replay
answers with recorded observations of identified patients and what each rule
version made of them: that is PHI, so operators are refused, and a clinician's
replay covers only the patients they reach (replaying per patient,
a patient's outcome does not depend on who else is replayed).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints

from carecoord_contracts.common import ActorId
from carecoord_contracts.patient_app import MoodCheckInSubmitted, SideEffectReportSubmitted, VitalsSubmitted
from carecoord_shared.auth import Access, Role
from carecoord_shared.errors import Forbidden
from carecoord_shared.http import IDEMPOTENT, PageDep, UowDep, allow
from carecoord_shared.http.preconditions import IfMatchDep, tagged
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.pagination import Page

from . import assignment, observations, queries, reviews
from .domain.plan_limits import DoseNotAllowed
from .rules import RuleSet
from .schemas import (
    Acknowledge,
    MoodCheckInIn,
    MoodCheckInOut,
    OutcomeOut,
    Reassign,
    ReportOutcomeOut,
    ResolveReview,
    ReviewDetail,
    ShadowRequest,
    SideEffectReportIn,
    SideEffectReportOut,
    SymptomVocabulary,
    VitalsIn,
    VitalsOut,
    Worklist,
)
from .timers import Clock


def _respond(outcome: observations.Outcome, response: Response) -> dict[str, object]:
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return {**outcome.__dict__, "review_id": outcome.review_id}


ALREADY: dict[int | str, dict[str, Any]] = {
    200: {"description": "This id was already recorded; its first outcome is returned."}
}

ReviewStatus = Literal["open", "acknowledged", "resolved"]
Priority = Literal["urgent", "high", "routine"]
Observers = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
Clinical = Annotated[Access, allow(Role.CLINICIAN, Role.SERVICE)]


def _clinician(access: Access) -> bool:
    """Whether the caller reads clinicians' free text (a report's note, a review's resolution note)."""
    return access.principal.role is Role.CLINICIAN


async def _decide_on_review(
    access: Access, uow: UowDep, review_id: uuid.UUID, clinician_id: str, action: str
) -> AbstractAsyncContextManager[Transaction]:
    """A decision on a review: in the caller's own name, about a patient they may reach; the transaction
    to make it in, which checks and audits that on entering."""
    access.acting_clinician(clinician_id)
    return access.transaction(uow, await queries.review_patient(uow, review_id), action, "review", review_id)


def build_router(current: RuleSet, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post(
        "/side-effect-reports",
        status_code=201,
        response_model=ReportOutcomeOut,
        tags=["observations"],
        responses=ALREADY,
        dependencies=[IDEMPOTENT],
    )
    async def submit_report(
        body: SideEffectReportIn, uow: UowDep, response: Response, access: Observers
    ) -> dict[str, object]:
        async with access.transaction(uow, body.patient_id, "submit", "side-effect-report", body.report_id) as tx:
            report = SideEffectReportSubmitted(
                **body.model_dump(exclude={"patient_id"}) | {"report_id": body.report_id or uuid.uuid4()}
            )
            outcome = await observations.record_report(
                tx, current, patient_id=body.patient_id, observation=report, source="http", now=clock()
            )
        return _respond(outcome, response) | {"report_id": outcome.id}

    @router.post(
        "/vitals",
        status_code=201,
        response_model=OutcomeOut,
        tags=["observations"],
        responses=ALREADY,
        dependencies=[IDEMPOTENT],
    )
    async def submit_vitals(body: VitalsIn, uow: UowDep, response: Response, access: Observers) -> dict[str, object]:
        async with access.transaction(uow, body.patient_id, "submit", "vitals", body.reading_id) as tx:
            reading = VitalsSubmitted(
                **body.model_dump(exclude={"patient_id"}) | {"reading_id": body.reading_id or uuid.uuid4()}
            )
            outcome = await observations.record_vitals(
                tx, current, patient_id=body.patient_id, observation=reading, source="http", now=clock()
            )
        return _respond(outcome, response)

    @router.post(
        "/mood-check-ins",
        status_code=201,
        response_model=OutcomeOut,
        tags=["observations"],
        responses=ALREADY,
        dependencies=[IDEMPOTENT],
    )
    async def submit_checkin(
        body: MoodCheckInIn, uow: UowDep, response: Response, access: Observers
    ) -> dict[str, object]:
        async with access.transaction(uow, body.patient_id, "submit", "mood-check-in", body.checkin_id) as tx:
            checkin = MoodCheckInSubmitted(
                **body.model_dump(exclude={"patient_id"})
                | {"checkin_id": body.checkin_id or uuid.uuid4(), "answered_at": body.answered_at or datetime.now(UTC)}
            )
            outcome = await observations.record_checkin(
                tx, current, patient_id=body.patient_id, observation=checkin, source="http", now=clock()
            )
        return _respond(outcome, response)

    @router.get(
        "/patients/{patient_id}/side-effect-reports",
        response_model=Page[SideEffectReportOut],
        tags=["chart"],
        summary="A patient's side-effect reports, newest first (the note for clinicians only)",
    )
    async def list_reports(patient_id: uuid.UUID, uow: UowDep, access: Observers, page: PageDep) -> dict[str, Any]:
        await access.patient(patient_id, "list", "side-effect-report")
        return await queries.side_effect_reports_of(uow, patient_id, page, with_note=_clinician(access))

    @router.get(
        "/patients/{patient_id}/vitals",
        response_model=Page[VitalsOut],
        tags=["chart"],
        summary="A patient's vitals readings, newest measured first",
    )
    async def list_vitals(patient_id: uuid.UUID, uow: UowDep, access: Observers, page: PageDep) -> dict[str, Any]:
        await access.patient(patient_id, "list", "vitals")
        return await queries.vitals_of(uow, patient_id, page)

    @router.get(
        "/patients/{patient_id}/mood-check-ins",
        response_model=Page[MoodCheckInOut],
        tags=["chart"],
        summary="A patient's mood check-ins (scores only), newest answered first",
    )
    async def list_checkins(patient_id: uuid.UUID, uow: UowDep, access: Observers, page: PageDep) -> dict[str, Any]:
        await access.patient(patient_id, "list", "mood-check-in")
        return await queries.mood_checkins_of(uow, patient_id, page)

    @router.get(
        "/reviews",
        response_model=Worklist,
        tags=["reviews"],
        summary="The worklist: most urgent first, then earliest due, a page at a time, with counts per priority",
    )
    async def list_reviews(
        uow: UowDep,
        access: Observers,
        page: PageDep,
        patient_id: uuid.UUID | None = None,
        review_status: Annotated[
            list[ReviewStatus] | None,
            Query(alias="status", description="open, acknowledged, resolved; default open and acknowledged"),
        ] = None,
        priority: Annotated[list[Priority] | None, Query(description="only these priorities (repeatable)")] = None,
        reason: Annotated[
            list[Annotated[str, StringConstraints(max_length=64)]] | None,
            Query(max_length=20, description="only reviews opened for these reasons (repeatable)"),
        ] = None,
        overdue: Annotated[
            bool | None, Query(description="true: only reviews still open past their due time; false: none of them")
        ] = None,
        sort: Annotated[
            Literal["urgency", "due", "newest"],
            Query(description="urgency (priority, then earliest due; default), due (earliest first), newest"),
        ] = "urgency",
        assignee: Annotated[
            ActorId | None,
            Query(description="only reviews assigned to this clinician (a clinician's own: their subject)"),
        ] = None,
    ) -> dict[str, Any]:
        filters: dict[str, Any] = {
            "assignee": assignee,
            "statuses": review_status,
            "priorities": priority,
            "reasons": reason,
            "overdue": overdue,
            "now": clock(),
            "sort": sort,
        }
        if patient_id:
            await access.patient(patient_id, "list", "review")
            return await queries.worklist(uow, page, patient_id=patient_id, **filters)
        if access.principal.role is Role.PATIENT:
            raise Forbidden("a patient lists their own reviews: pass patient_id (your own)")
        await access.record("list", "review")
        return await queries.worklist(uow, page, scope=access.list_scope, **filters)

    @router.get("/reviews/{review_id}", response_model=ReviewDetail, tags=["reviews"])
    async def get_review(review_id: uuid.UUID, uow: UowDep, access: Observers, response: Response) -> dict[str, object]:
        await access.patient(await queries.review_patient(uow, review_id), "read", "review", review_id)
        return tagged(response, await queries.review_detail(uow, review_id, with_note=_clinician(access)))

    @router.put(
        "/reviews/{review_id}/assignee",
        response_model=ReviewDetail,
        tags=["reviews"],
        summary="Give the review to another clinician (it keeps its escalation level; they are paged)",
    )
    async def reassign(
        review_id: uuid.UUID,
        body: Reassign,
        uow: UowDep,
        access: Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)],
        response: Response,
    ) -> dict[str, object]:
        # Routing work is what operators do: they reassign without reading the patient's chart.
        await access.patient(
            await queries.review_patient(uow, review_id), "reassign", "review", review_id, operational=True
        )
        async with uow.transaction() as tx:
            await assignment.reassign(tx, review_id, body.assignee_id, now=clock())
        return tagged(response, await queries.review_detail(uow, review_id, with_note=_clinician(access)))

    @router.post(
        "/reviews/{review_id}/acknowledge", response_model=ReviewDetail, tags=["reviews"], dependencies=[IDEMPOTENT]
    )
    async def acknowledge(
        review_id: uuid.UUID,
        body: Acknowledge,
        uow: UowDep,
        access: Clinical,
        precondition: IfMatchDep,
        response: Response,
    ) -> dict[str, object]:
        async with await _decide_on_review(access, uow, review_id, body.clinician_id, "acknowledge") as tx:
            await reviews.acknowledge(
                tx, review_id, clinician_id=body.clinician_id, now=clock(), precondition=precondition
            )
        return tagged(response, await queries.review_detail(uow, review_id, with_note=_clinician(access)))

    @router.post(
        "/reviews/{review_id}/resolve", response_model=ReviewDetail, tags=["reviews"], dependencies=[IDEMPOTENT]
    )
    async def resolve(
        review_id: uuid.UUID,
        body: ResolveReview,
        uow: UowDep,
        access: Clinical,
        precondition: IfMatchDep,
        response: Response,
    ) -> dict[str, object]:
        decision = await _decide_on_review(access, uow, review_id, body.clinician_id, "resolve")
        try:
            async with decision as tx:
                await reviews.resolve(
                    tx,
                    review_id,
                    decision=body.decision,
                    clinician_id=body.clinician_id,
                    note=body.note,
                    now=clock(),
                    dose_mg=body.dose_mg,
                    precondition=precondition,
                )
        except DoseNotAllowed as refused:
            # Nothing was recorded; the body's dose is what is wrong, so say so as a validation error.
            raise RequestValidationError(
                [{"loc": ("body", "dose_mg"), "msg": str(refused), "type": refused.code}]
            ) from refused
        return tagged(response, await queries.review_detail(uow, review_id, with_note=_clinician(access)))

    @router.get("/rules", tags=["rules"], summary="The rule version in force and the versions on file")
    async def rule_versions(
        _access: Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)],
    ) -> dict[str, Any]:
        return queries.rule_versions(current)

    @router.get(
        "/rules/symptoms",
        response_model=SymptomVocabulary,
        tags=["rules"],
        summary="The symptom codes the rules in force know, with a label, whether each is a red flag, and its advice",
    )
    async def symptom_vocabulary(
        _access: Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)],
    ) -> dict[str, Any]:
        return queries.symptom_vocabulary(current)

    @router.post(
        "/rules/shadow",
        tags=["rules"],
        summary="Replay recorded history under a proposed rule version; acts on nothing",
    )
    async def shadow_evaluation(body: ShadowRequest, uow: UowDep, access: Clinical) -> dict[str, Any]:
        await access.record("replay", "rules-shadow", body.version)
        return await queries.shadow_replay(uow, body.version, scope=access.list_scope)

    return router
