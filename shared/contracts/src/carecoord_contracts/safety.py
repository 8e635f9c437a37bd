"""Events produced by the safety-monitoring service (topics safety.reports, safety.reviews, safety.holds)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from .common import (
    ActorId,
    AssignmentBasis,
    Diastolic,
    Grade,
    HeartRate,
    Milligrams,
    PastTimestamp,
    ReadingContext,
    ReviewDecision,
    ReviewPriority,
    RuleVersion,
    ShortCode,
    ShortCodes,
    Systolic,
    Timestamp,
)
from .envelope import Event

SYMPTOM_CODES = (
    "Symptom codes (snake_case). The codes the escalation rules know, with a label and whether each is a red "
    "flag, are published by safety at GET /v1/rules/symptoms under the rule version in force (2026.12.1: nausea, "
    "vomiting, dizziness, drowsiness, blurred_vision, headache, dissociation, raised_blood_pressure, anxiety, "
    "fatigue; red flags suicidal_ideation, chest_pain, severe_headache, shortness_of_breath, breathing_difficulty, "
    "confusion, loss_of_consciousness, hallucinations_persisting, dissociation_persisting, signs_of_misuse, "
    "blood_in_urine, painful_urination, jaundice). Any other code is accepted and recorded, and flagged for a "
    "clinician (a routine review); see unknown_symptoms."
)
# The advice code that means "go to emergency care now"; consumers may act on it (dosing refuses to
# authorise a session while one is recent, ahead of the hold that follows on safety.holds).
SEEK_EMERGENCY_CARE = "seek_emergency_care"
# Typed for the checker: the fields it defaults are lists of short codes.
ADVICE: list[str] = Field(
    default_factory=list,
    max_length=5,
    description="Coded guidance the rules give the patient with this observation, for the app to show: "
    "seek_emergency_care (a red-flag symptom of the blood-pressure rule, a life-threatening report, or a reading "
    "at or above 180/110). Empty: no guidance. Absent before rule version 2026.12.1.",
)


class SideEffectReported(Event):
    """A side-effect report was recorded (coded facts only; free text stays in safety)."""

    event_type = "SideEffectReported"
    version = 1

    report_id: uuid.UUID
    symptoms: Annotated[list[ShortCode], Field(min_length=1, max_length=20, description=SYMPTOM_CODES)]
    grade: Grade
    escalated: bool
    rule_version: RuleVersion
    advice: list[ShortCode] = ADVICE
    unknown_symptoms: list[ShortCode] = Field(
        default_factory=list,
        max_length=20,
        description="The codes of symptoms this report carries that the rule version does not know: recorded, "
        "counted and flagged for a clinician (an unrecognised_symptom review). Absent before rule version 2026.12.1.",
    )


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
    advice: list[ShortCode] = ADVICE


class MoodCheckInRecorded(Event):
    event_type = "MoodCheckInRecorded"
    version = 1

    checkin_id: uuid.UUID
    phq9_total: Annotated[int, Field(ge=0, le=27)] | None = None
    phq9_item9: Annotated[int, Field(ge=0, le=3)] | None = None
    pcl5_total: Annotated[int, Field(ge=0, le=80)] | None = None
    appointment_id: uuid.UUID | None = None
    gad7_total: Annotated[int, Field(ge=0, le=21)] | None = Field(
        default=None, description="GAD-7 total when the check-in asked it"
    )


class CheckInMissed(Event):
    """No post-dose check-in arrived within the configured time after the dose.

    Since rule version 2026.12.1 the dose is the session's DosingSessionAuthorised, and ``hours_since_start``
    counts from it (before: from the booked start); a refused or never authorised session is not chased."""

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


class ClinicianReviewAssigned(Event):
    """Who must act on the review now, and why: the patient's prescriber when opened (the on-call clinician of
    the patient's state if the prescriber is away until it is due), the on-call clinician once it is overdue
    (``escalation_level`` 1), the state's clinical lead if still not acknowledged after that (level 2), or
    whoever a clinician or operator reassigned it to. ``assignee_id`` is None only with basis ``unassigned``.
    Each assignment is sent once; the person it names is to be told (the engagement service pages them)."""

    event_type = "ClinicianReviewAssigned"
    version = 1

    review_id: uuid.UUID
    assignee_id: ActorId | None = None
    basis: AssignmentBasis
    escalation_level: Annotated[int, Field(ge=0, le=2)] = 0
    priority: ReviewPriority
    due_at: Timestamp


class ClinicianReviewResolved(Event):
    event_type = "ClinicianReviewResolved"
    version = 1

    review_id: uuid.UUID
    decision: ReviewDecision
    resolved_by: ActorId | None = None
    dose_mg: Milligrams | None = Field(
        default=None,
        description="The new dose the clinician approved with resume_with_dose_change; absent for other decisions.",
    )


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
    dose_mg: Milligrams | None = Field(
        default=None,
        description="With resume_with_dose_change: the dose the resolving clinician approved; dosing re-validates it against "
        "the plan and, if it is refused, keeps the plan paused (DoseChangeRefused).",
    )
    decided_by: ActorId | None = Field(default=None, description="The clinician who resolved the review.")
