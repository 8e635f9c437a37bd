"""Events produced by the safety-monitoring service."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AwareDatetime, Field

from .common import Grade, ReviewDecision, ReviewPriority, ShortCode
from .envelope import Event

RuleVersion = Annotated[str, Field(min_length=1, max_length=40)]


class SideEffectReported(Event):
    """A side-effect report was recorded (coded facts only; free text stays in safety)."""

    event_type = "SideEffectReported"
    version = 1

    report_id: uuid.UUID
    symptoms: Annotated[list[ShortCode], Field(min_length=1, max_length=20)]
    grade: Grade
    escalated: bool
    rule_version: RuleVersion


class ClinicianReviewOpened(Event):
    event_type = "ClinicianReviewOpened"
    version = 1

    review_id: uuid.UUID
    reason: ShortCode
    priority: ReviewPriority
    due_at: AwareDatetime
    triggers: Annotated[list[ShortCode], Field(max_length=20)]
    rule_version: RuleVersion


class ClinicianReviewResolved(Event):
    event_type = "ClinicianReviewResolved"
    version = 1

    review_id: uuid.UUID
    decision: ReviewDecision


class TreatmentHoldRequested(Event):
    """Safety asks dosing to pause the patient's plan until a clinician has looked."""

    event_type = "TreatmentHoldRequested"
    version = 1

    hold_id: uuid.UUID
    review_id: uuid.UUID
    reason: ShortCode
    rule_version: RuleVersion


class TreatmentHoldReleased(Event):
    event_type = "TreatmentHoldReleased"
    version = 1

    hold_id: uuid.UUID
    review_id: uuid.UUID
    decision: ReviewDecision
