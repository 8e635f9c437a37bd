"""HTTP API: side-effect reports from the patient app, reviews for clinicians."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from carecoord_shared.contracts.common import Grade, ReviewDecision, ShortCode
from carecoord_shared.contracts.patient_app import SideEffectReportSubmitted
from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from . import reports
from .models import clinician_reviews
from .rules import RuleSet


class SideEffectReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    report_id: uuid.UUID | None = Field(
        default=None, description="Client-generated id; resubmitting the same id returns the first outcome."
    )
    patient_id: uuid.UUID
    symptoms: Annotated[list[ShortCode], Field(min_length=1, max_length=20)]
    grade: Grade
    onset_minutes_after_dose: Annotated[int, Field(ge=0, le=60 * 24 * 30)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class ReportOutcomeOut(BaseModel):
    report_id: uuid.UUID
    escalated: bool
    rule_version: str
    review_id: uuid.UUID | None
    hold_requested: bool


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
    decision: str | None


class ResolveReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinician_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
    decision: ReviewDecision


def build_router(rules: RuleSet) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post(
        "/side-effect-reports",
        status_code=status.HTTP_201_CREATED,
        response_model=ReportOutcomeOut,
        tags=["reports"],
        responses={200: {"description": "This report id was already recorded; its outcome is returned."}},
    )
    async def submit_report(body: SideEffectReportIn, uow: UowDep, response: Response) -> Any:
        report = SideEffectReportSubmitted(
            report_id=body.report_id or uuid.uuid4(),
            symptoms=body.symptoms,
            grade=body.grade,
            onset_minutes_after_dose=body.onset_minutes_after_dose,
            note=body.note,
        )
        async with uow.transaction() as tx:
            outcome = await reports.record_report(tx, rules, patient_id=body.patient_id, report=report, source="http")
        if not outcome.created:
            response.status_code = status.HTTP_200_OK
        return outcome.__dict__

    @router.get("/reviews", response_model=list[Review], tags=["reviews"])
    async def list_reviews(
        uow: UowDep,
        patient_id: uuid.UUID | None = None,
        review_status: Annotated[str | None, Query(alias="status", pattern="^(open|acknowledged|resolved)$")] = None,
    ) -> Any:
        query = select(clinician_reviews).order_by(clinician_reviews.c.due_at).limit(500)
        if patient_id:
            query = query.where(clinician_reviews.c.patient_id == patient_id)
        if review_status:
            query = query.where(clinician_reviews.c.status == review_status)
        async with uow.sessions() as session:
            return [r._asdict() for r in await session.execute(query)]

    @router.get("/reviews/{review_id}", response_model=Review, tags=["reviews"])
    async def get_review(review_id: uuid.UUID, uow: UowDep) -> Any:
        async with uow.sessions() as session:
            row = (
                await session.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))
            ).first()
        if row is None:
            raise NotFound(f"no clinician review {review_id}")
        return row._asdict()

    @router.post("/reviews/{review_id}/resolve", response_model=Review, tags=["reviews"])
    async def resolve(review_id: uuid.UUID, body: ResolveReview, uow: UowDep) -> Any:
        async with uow.transaction() as tx:
            await reports.resolve_review(tx, review_id, decision=body.decision, clinician_id=body.clinician_id)
        return await get_review(review_id, uow)

    return router
