"""Events produced by the safety-monitoring service (topics safety.reports, safety.reviews, safety.holds)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from .common import (
    Timestamp,
    ActorId,
    Diastolic,
    Grade,
    HeartRate,
    PastTimestamp,
    ReadingContext,
    ReviewDecision,
    ReviewPriority,
    RuleVersion,
    ShortCode,
    ShortCodes,
    Systolic,
)
from .envelope import Event


class SideEffectReported(Event):
    """A side-effect report was recorded (coded facts only; free text stays in safety)."""

    event_type = "SideEffectReported"
    version = 1

    report_id: uuid.UUID
    symptoms: Annotated[list[ShortCode], Field(min_length=1, max_length=20)]
    grade: Grade
    escalated: bool
    rule_version: RuleVersion


class VitalsRecorded(Event):
    event_type = "VitalsRecorded"
    version = 1

    reading_id: uuid.UUID
    systolic: Systolic
    diastolic: Diastolic
    heart_rate: HeartRate | None = None
    measured_at: PastTimestamp
    context: ReadingContext
    appointment_id: uuid.UUID | None = None
    within_limits: bool
    rule_version: RuleVersion


class MoodCheckInRecorded(Event):
    event_type = "MoodCheckInRecorded"
    version = 1

    checkin_id: uuid.UUID
    phq9_total: Annotated[int, Field(ge=0, le=27)] | None = None
    phq9_item9: Annotated[int, Field(ge=0, le=3)] | None = None
    pcl5_total: Annotated[int, Field(ge=0, le=80)] | None = None
    appointment_id: uuid.UUID | None = None
    gad7_total: Annotated[int, Field(ge=0, le=21)] | None = Field(default=None, description="GAD-7 total when the check-in asked it")


class CheckInMissed(Event):
    """No post-dose check-in arrived within the configured time after a dosing session started."""

    event_type = "CheckInMissed"
    version = 1

    appointment_id: uuid.UUID
    hours_since_start: Annotated[int, Field(ge=0, le=24 * 14)]


class ClinicianReviewOpened(Event):
    event_type = "ClinicianReviewOpened"
    version = 1

    review_id: uuid.UUID
    reason: ShortCode
    priority: ReviewPriority
    due_at: Timestamp
    triggers: ShortCodes
    rule_version: RuleVersion


class ClinicianReviewAcknowledged(Event):
    event_type = "ClinicianReviewAcknowledged"
    version = 1

    review_id: uuid.UUID
    acknowledged_by: ActorId


class ClinicianReviewOverdue(Event):
    """Not acknowledged by its due time; the priority has been raised."""

    event_type = "ClinicianReviewOverdue"
    version = 1

    review_id: uuid.UUID
    priority: ReviewPriority
    due_at: Timestamp


class ClinicianReviewResolved(Event):
    event_type = "ClinicianReviewResolved"
    version = 1

    review_id: uuid.UUID
    decision: ReviewDecision
    resolved_by: ActorId | None = None


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
