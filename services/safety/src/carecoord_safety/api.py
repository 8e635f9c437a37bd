"""HTTP API: what patients report (through the app), and the clinicians' review worklist.

Request bodies extend the event contracts they become, so HTTP and Kafka
inputs are validated by the same rules.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from carecoord_shared.contracts.common import ActorId, PastTimestamp, ReviewDecision
from carecoord_shared.contracts.patient_app import MoodCheckInSubmitted, SideEffectReportSubmitted, VitalsSubmitted
from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from . import observations, reviews, rules, shadow
from .models import clinician_reviews, review_triggers
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
        if self.phq9_items is None and self.pcl5_items is None:
            raise ValueError("a check-in needs phq9_items and/or pcl5_items")
        return self


class OutcomeOut(BaseModel):
    id: uuid.UUID
    escalated: bool
    rule_version: str
    review_id: uuid.UUID | None
    review_ids: list[uuid.UUID]
    hold_requested: bool
    out_of_limits: bool


class ReportOutcomeOut(OutcomeOut):
    report_id: uuid.UUID


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
    note: Annotated[str, Field(max_length=4000, description="Kept in safety only; never in events or logs.")] | None = None


class ShadowRequest(BaseModel):
    model_config = STRICT
    version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z.\-]+$")]


def _respond(outcome: observations.Outcome, response: Response) -> dict[str, Any]:
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return {**outcome.__dict__, "review_id": outcome.review_id}


ALREADY = {200: {"description": "This id was already recorded; its first outcome is returned."}}


def build_router(current: RuleSet, clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/side-effect-reports", status_code=201, response_model=ReportOutcomeOut, tags=["observations"], responses=ALREADY)
    async def submit_report(body: SideEffectReportIn, uow: UowDep, response: Response) -> Any:
        report = SideEffectReportSubmitted(**body.model_dump(exclude={"patient_id"}) | {"report_id": body.report_id or uuid.uuid4()})
        async with uow.transaction() as tx:
            outcome = await observations.record_report(tx, current, patient_id=body.patient_id, observation=report, source="http", now=clock())
        return _respond(outcome, response) | {"report_id": outcome.id}

    @router.post("/vitals", status_code=201, response_model=OutcomeOut, tags=["observations"], responses=ALREADY)
    async def submit_vitals(body: VitalsIn, uow: UowDep, response: Response) -> Any:
        reading = VitalsSubmitted(**body.model_dump(exclude={"patient_id"}) | {"reading_id": body.reading_id or uuid.uuid4()})
        async with uow.transaction() as tx:
            outcome = await observations.record_vitals(tx, current, patient_id=body.patient_id, observation=reading, source="http", now=clock())
        return _respond(outcome, response)

    @router.post("/mood-check-ins", status_code=201, response_model=OutcomeOut, tags=["observations"], responses=ALREADY)
    async def submit_checkin(body: MoodCheckInIn, uow: UowDep, response: Response) -> Any:
        checkin = MoodCheckInSubmitted(
            **body.model_dump(exclude={"patient_id"})
            | {"checkin_id": body.checkin_id or uuid.uuid4(), "answered_at": body.answered_at or datetime.now(UTC)}
        )
        async with uow.transaction() as tx:
            outcome = await observations.record_checkin(tx, current, patient_id=body.patient_id, observation=checkin, source="http", now=clock())
        return _respond(outcome, response)

    @router.get("/reviews", response_model=list[Review], tags=["reviews"], summary="The worklist: most urgent first, then earliest due")
    async def list_reviews(
        uow: UowDep,
        patient_id: uuid.UUID | None = None,
        review_status: Annotated[
            list[str] | None, Query(alias="status", description="open, acknowledged, resolved; default open and acknowledged")
        ] = None,
    ) -> Any:
        wanted = review_status or ["open", "acknowledged"]
        if patient_id:
            wanted = review_status or ["open", "acknowledged", "resolved"]
        query = (
            select(clinician_reviews)
            .where(clinician_reviews.c.status.in_(wanted))
            .order_by(clinician_reviews.c.priority_rank.desc(), clinician_reviews.c.due_at)
            .limit(500)
        )
        if patient_id:
            query = query.where(clinician_reviews.c.patient_id == patient_id)
        async with uow.sessions() as session:
            return [r._asdict() for r in await session.execute(query)]

    @router.get("/reviews/{review_id}", response_model=ReviewDetail, tags=["reviews"])
    async def get_review(review_id: uuid.UUID, uow: UowDep) -> Any:
        async with uow.sessions() as session:
            row = (await session.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))).first()
            if row is None:
                raise NotFound(f"no clinician review {review_id}")
            history = await session.execute(
                select(review_triggers).where(review_triggers.c.review_id == review_id).order_by(review_triggers.c.id)
            )
            return {**row._asdict(), "trigger_history": [h._asdict() for h in history]}

    @router.post("/reviews/{review_id}/acknowledge", response_model=ReviewDetail, tags=["reviews"])
    async def acknowledge(review_id: uuid.UUID, body: Acknowledge, uow: UowDep) -> Any:
        async with uow.transaction() as tx:
            await reviews.acknowledge(tx, review_id, clinician_id=body.clinician_id, now=clock())
        return await get_review(review_id, uow)

    @router.post("/reviews/{review_id}/resolve", response_model=ReviewDetail, tags=["reviews"])
    async def resolve(review_id: uuid.UUID, body: ResolveReview, uow: UowDep) -> Any:
        async with uow.transaction() as tx:
            await reviews.resolve(tx, review_id, decision=body.decision, clinician_id=body.clinician_id, note=body.note, now=clock())
        return await get_review(review_id, uow)

    @router.get("/rules", tags=["rules"], summary="The rule version in force and the versions on file")
    async def rule_versions() -> dict[str, Any]:
        return {"current": current.version, "available": rules.available_versions()}

    @router.post("/rules/shadow", tags=["rules"], summary="Replay recorded history under a proposed rule version; acts on nothing")
    async def shadow_evaluation(body: ShadowRequest, uow: UowDep) -> dict[str, Any]:
        try:
            rules.load(body.version)
        except rules.RuleFileError as exc:
            raise NotFound(str(exc)) from exc
        async with uow.sessions() as session, session.begin():
            return await shadow.evaluate(session, body.version)

    return router
