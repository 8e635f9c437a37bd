"""HTTP API: what patients report (through the app), and the clinicians' review worklist.

Request bodies extend the event contracts they become, so HTTP and Kafka
inputs are validated by the same rules.

Who may call what (carecoord_shared.auth; "licensed" = a clinician licensed in
the patient's state of residence, learnt from PatientRegistered; every
patient check writes an audit row, allowed or denied):

| route                                  | patient      | clinician         | operator | service | audited as               |
|----------------------------------------|--------------|-------------------|----------|---------|--------------------------|
| POST /side-effect-reports, /vitals,    | own id only  | licensed          | -        | yes     | submit <observation>     |
|   /mood-check-ins                      |              |                   |          |         |                          |
| GET /reviews (the worklist)            | own id only  | licensed states   | -        | yes     | list review              |
| GET /reviews/{id}                      | own only     | licensed          | -        | yes     | read review              |
| POST /reviews/{id}/acknowledge,        | -            | licensed, in own  | -        | yes     | acknowledge/resolve      |
|   /resolve (clinical decisions)        |              | name              |          |         |   review                 |
| GET /rules                             | -            | yes               | yes      | yes     | not audited: no PHI      |
| GET /rules/symptoms (the vocabulary)   | yes          | yes               | yes      | yes     | not audited: no PHI      |
| POST /rules/shadow                     | -            | licensed states   | -        | yes     | replay rules-shadow      |

A clinician may record an observation too (vitals taken in a video visit, a
side effect the patient mentions). The rule versions are configuration, not
patient data, so operators (who deploy them) may read them; the symptom
vocabulary is what the patient app offers, so patients read it too. The shadow replay
answers with recorded observations of identified patients and what each rule
version made of them: that is PHI, so operators are refused, and a clinician's
replay covers only patients in their licensed states (replaying per patient,
a patient's outcome does not depend on who else is replayed).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from carecoord_shared.auth import Access, Role, allow, patient_of
from carecoord_shared.contracts.common import ActorId, Milligrams, PastTimestamp, ReviewDecision
from carecoord_shared.contracts.patient_app import MoodCheckInSubmitted, SideEffectReportSubmitted, VitalsSubmitted
from carecoord_shared.errors import Forbidden, NotFound
from carecoord_shared.service import UowDep

from . import observations, plan_view, reviews, rules, shadow
from .models import clinician_reviews, jurisdictions, review_triggers
from .rules import RuleSet
from .timers import Clock

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
CLIENT_ID = "Client-generated id; resubmitting the same id returns the first outcome instead of recording twice."


class SideEffectReportIn(SideEffectReportSubmitted):
    model_config = STRICT
    patient_id: uuid.UUID
    report_id: uuid.UUID | None = Field(default=None, description=CLIENT_ID)  # type: ignore[assignment]


class VitalsIn(VitalsSubmitted):
    model_config = STRICT
    patient_id: uuid.UUID
    reading_id: uuid.UUID | None = Field(default=None, description=CLIENT_ID)  # type: ignore[assignment]


class MoodCheckInIn(MoodCheckInSubmitted):
    model_config = STRICT
    patient_id: uuid.UUID
    checkin_id: uuid.UUID | None = Field(default=None, description=CLIENT_ID)  # type: ignore[assignment]
    answered_at: PastTimestamp | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def some_instrument(self) -> MoodCheckInIn:
        if self.phq9_items is None and self.pcl5_items is None and self.gad7_items is None:
            raise ValueError("a check-in needs phq9_items, pcl5_items and/or gad7_items")
        return self


class OutcomeOut(BaseModel):
    id: uuid.UUID
    escalated: bool
    rule_version: str
    review_id: uuid.UUID | None
    review_ids: list[uuid.UUID]
    hold_requested: bool
    out_of_limits: bool
    advice: list[str] = Field(
        description="Coded guidance for the patient the app shows with the answer: seek_emergency_care "
        "(a red-flag symptom of the blood-pressure rule, a life-threatening report, a reading at or above 180/110)."
    )


class ReportOutcomeOut(OutcomeOut):
    report_id: uuid.UUID
    unknown_symptoms: list[str] = Field(
        description="Codes of this report the rules do not know (GET /v1/rules/symptoms): recorded, and a clinician will look."
    )


class SymptomOut(BaseModel):
    code: str
    label: str
    red_flag: bool = Field(description="Escalates at any grade: an urgent clinician review and a treatment hold.")
    advice: list[str] = Field(description="Guidance a report of this symptom brings, e.g. seek_emergency_care.")


class SymptomVocabulary(BaseModel):
    rule_version: str
    symptoms: list[SymptomOut]
    unknown_codes: str = Field(
        description="What happens to a code outside this list: it is accepted and recorded, and flagged for a clinician."
    )


class Review(BaseModel):
    review_id: uuid.UUID
    patient_id: uuid.UUID
    reason: str
    priority: str
    status: str
    due_at: datetime
    triggers: list[str]
    rule_version: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    overdue_at: datetime | None
    decision: str | None


class TriggerOut(BaseModel):
    source_kind: str
    source_id: uuid.UUID
    rule_ids: list[str]
    triggers: list[str]
    rule_version: str
    at: datetime


class ReviewDetail(Review):
    trigger_history: list[TriggerOut]


class Acknowledge(BaseModel):
    model_config = STRICT
    clinician_id: ActorId


class ResolveReview(BaseModel):
    model_config = STRICT
    clinician_id: ActorId
    decision: ReviewDecision
    note: Annotated[str, Field(max_length=4000, description="Kept in safety only; never in events or logs.")] | None = (
        None
    )
    dose_mg: Milligrams | None = Field(
        default=None,
        description="Required with resume_with_dose_change, refused with any other decision: the new dose, within the plan's "
        "per-session maximum and one maximum step from the current dose. The plan resumes with it, approved by this clinician.",
    )

    @model_validator(mode="after")
    def dose_with_its_decision(self) -> ResolveReview:
        if self.decision is ReviewDecision.resume_with_dose_change and self.dose_mg is None:
            raise ValueError("resume_with_dose_change needs dose_mg, the new dose")
        if self.decision is not ReviewDecision.resume_with_dose_change and self.dose_mg is not None:
            raise ValueError(f"dose_mg goes only with resume_with_dose_change, not {self.decision.value}")
        return self


class ShadowRequest(BaseModel):
    model_config = STRICT
    version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z.\-]+$")]


def _respond(outcome: observations.Outcome, response: Response) -> dict[str, Any]:
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return {**outcome.__dict__, "review_id": outcome.review_id}


ALREADY = {200: {"description": "This id was already recorded; its first outcome is returned."}}

Observers = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
Clinical = Annotated[Access, allow(Role.CLINICIAN, Role.SERVICE)]


async def _review_patient(uow: UowDep, review_id: uuid.UUID) -> uuid.UUID:
    query = select(clinician_reviews.c.patient_id).where(clinician_reviews.c.review_id == review_id)
    return await patient_of(uow.sessions, query, f"no clinician review {review_id}")


async def _read_review(uow: UowDep, review_id: uuid.UUID) -> dict[str, Any]:
    async with uow.sessions() as session:
        row = (
            await session.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))
        ).first()
        if row is None:
            raise NotFound(f"no clinician review {review_id}")
        history = await session.execute(
            select(review_triggers).where(review_triggers.c.review_id == review_id).order_by(review_triggers.c.id)
        )
        return {**row._asdict(), "trigger_history": [h._asdict() for h in history]}


async def _decide_on_review(access: Access, uow: UowDep, review_id: uuid.UUID, clinician_id: str, action: str) -> None:
    """A decision on a review: in the caller's own name, about a patient they may reach (audited)."""
    access.acting_clinician(clinician_id)
    await access.patient(await _review_patient(uow, review_id), action, "review", review_id)


def build_router(current: RuleSet, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post(
        "/side-effect-reports",
        status_code=201,
        response_model=ReportOutcomeOut,
        tags=["observations"],
        responses=ALREADY,
    )
    async def submit_report(body: SideEffectReportIn, uow: UowDep, response: Response, access: Observers) -> Any:
        await access.patient(body.patient_id, "submit", "side-effect-report", body.report_id)
        report = SideEffectReportSubmitted(
            **body.model_dump(exclude={"patient_id"}) | {"report_id": body.report_id or uuid.uuid4()}
        )
        async with uow.transaction() as tx:
            outcome = await observations.record_report(
                tx, current, patient_id=body.patient_id, observation=report, source="http", now=clock()
            )
        return _respond(outcome, response) | {"report_id": outcome.id}

    @router.post("/vitals", status_code=201, response_model=OutcomeOut, tags=["observations"], responses=ALREADY)
    async def submit_vitals(body: VitalsIn, uow: UowDep, response: Response, access: Observers) -> Any:
        await access.patient(body.patient_id, "submit", "vitals", body.reading_id)
        reading = VitalsSubmitted(
            **body.model_dump(exclude={"patient_id"}) | {"reading_id": body.reading_id or uuid.uuid4()}
        )
        async with uow.transaction() as tx:
            outcome = await observations.record_vitals(
                tx, current, patient_id=body.patient_id, observation=reading, source="http", now=clock()
            )
        return _respond(outcome, response)

    @router.post(
        "/mood-check-ins", status_code=201, response_model=OutcomeOut, tags=["observations"], responses=ALREADY
    )
    async def submit_checkin(body: MoodCheckInIn, uow: UowDep, response: Response, access: Observers) -> Any:
        await access.patient(body.patient_id, "submit", "mood-check-in", body.checkin_id)
        checkin = MoodCheckInSubmitted(
            **body.model_dump(exclude={"patient_id"})
            | {"checkin_id": body.checkin_id or uuid.uuid4(), "answered_at": body.answered_at or datetime.now(UTC)}
        )
        async with uow.transaction() as tx:
            outcome = await observations.record_checkin(
                tx, current, patient_id=body.patient_id, observation=checkin, source="http", now=clock()
            )
        return _respond(outcome, response)

    @router.get(
        "/reviews",
        response_model=list[Review],
        tags=["reviews"],
        summary="The worklist: most urgent first, then earliest due",
    )
    async def list_reviews(
        uow: UowDep,
        access: Observers,
        patient_id: uuid.UUID | None = None,
        review_status: Annotated[
            list[str] | None,
            Query(alias="status", description="open, acknowledged, resolved; default open and acknowledged"),
        ] = None,
    ) -> Any:
        wanted = review_status or ["open", "acknowledged"]
        query = select(clinician_reviews)
        if patient_id:
            await access.patient(patient_id, "list", "review")
            wanted = review_status or ["open", "acknowledged", "resolved"]
            query = query.where(clinician_reviews.c.patient_id == patient_id)
        elif access.principal.role is Role.PATIENT:
            raise Forbidden("a patient lists their own reviews: pass patient_id (your own)")
        else:
            await access.record("list", "review")
            if (states := access.listable_states) is not None:
                query = query.join(jurisdictions, jurisdictions.c.patient_id == clinician_reviews.c.patient_id).where(
                    jurisdictions.c.state_of_residence.in_(states)
                )
        query = (
            query.where(clinician_reviews.c.status.in_(wanted))
            .order_by(clinician_reviews.c.priority_rank.desc(), clinician_reviews.c.due_at)
            .limit(500)
        )
        async with uow.sessions() as session:
            return [r._asdict() for r in await session.execute(query)]

    @router.get("/reviews/{review_id}", response_model=ReviewDetail, tags=["reviews"])
    async def get_review(review_id: uuid.UUID, uow: UowDep, access: Observers) -> Any:
        await access.patient(await _review_patient(uow, review_id), "read", "review", review_id)
        return await _read_review(uow, review_id)

    @router.post("/reviews/{review_id}/acknowledge", response_model=ReviewDetail, tags=["reviews"])
    async def acknowledge(review_id: uuid.UUID, body: Acknowledge, uow: UowDep, access: Clinical) -> Any:
        await _decide_on_review(access, uow, review_id, body.clinician_id, "acknowledge")
        async with uow.transaction() as tx:
            await reviews.acknowledge(tx, review_id, clinician_id=body.clinician_id, now=clock())
        return await _read_review(uow, review_id)

    @router.post("/reviews/{review_id}/resolve", response_model=ReviewDetail, tags=["reviews"])
    async def resolve(review_id: uuid.UUID, body: ResolveReview, uow: UowDep, access: Clinical) -> Any:
        await _decide_on_review(access, uow, review_id, body.clinician_id, "resolve")
        try:
            async with uow.transaction() as tx:
                await reviews.resolve(
                    tx,
                    review_id,
                    decision=body.decision,
                    clinician_id=body.clinician_id,
                    note=body.note,
                    now=clock(),
                    dose_mg=body.dose_mg,
                )
        except plan_view.DoseNotAllowed as refused:
            # Nothing was recorded; the body's dose is what is wrong, so say so as a validation error.
            raise RequestValidationError(
                [{"loc": ("body", "dose_mg"), "msg": str(refused), "type": refused.code}]
            ) from refused
        return await _read_review(uow, review_id)

    @router.get("/rules", tags=["rules"], summary="The rule version in force and the versions on file")
    async def rule_versions(
        _access: Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)],
    ) -> dict[str, Any]:
        return {"current": current.version, "available": rules.available_versions()}

    @router.get(
        "/rules/symptoms",
        response_model=SymptomVocabulary,
        tags=["rules"],
        summary="The symptom codes the rules in force know, with a label, whether each is a red flag, and its advice",
    )
    async def symptom_vocabulary(
        _access: Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)],
    ) -> dict[str, Any]:
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

    @router.post(
        "/rules/shadow",
        tags=["rules"],
        summary="Replay recorded history under a proposed rule version; acts on nothing",
    )
    async def shadow_evaluation(body: ShadowRequest, uow: UowDep, access: Clinical) -> dict[str, Any]:
        await access.record("replay", "rules-shadow", body.version)
        try:
            rules.load(body.version)
        except rules.RuleFileError as exc:
            raise NotFound(str(exc)) from exc
        async with uow.sessions() as session, session.begin():
            return await shadow.evaluate(session, body.version, states=access.listable_states)

    return router
