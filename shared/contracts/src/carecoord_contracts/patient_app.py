"""Events the patient app publishes on the patient's behalf (topic patient-app.reports)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from .common import Diastolic, Grade, HeartRate, PastTimestamp, ReadingContext, ShortCode, Systolic
from .envelope import Event

SYMPTOM_CODES = (
    "Symptom codes (snake_case). The codes the escalation rules know are published by safety at "
    "GET /v1/rules/symptoms (code, label, red flag or not) under the rule version in force. A code outside them "
    "is accepted and recorded, never refused, and flagged for a clinician."
)

FreeText = Annotated[str, Field(max_length=2000)]
OnsetMinutes = Annotated[int, Field(ge=0, le=60 * 24 * 30, description="minutes after the last dose")]


class SideEffectReportSubmitted(Event):
    """A patient submitted a side-effect report in the app.

    ``note`` is free text: it may hold anything the patient typed, so only the
    safety service stores it and no log, span or downstream event carries it.
    """

    event_type = "SideEffectReportSubmitted"
    version = 2

    report_id: uuid.UUID
    symptoms: Annotated[list[ShortCode], Field(min_length=1, max_length=20, description=SYMPTOM_CODES)]
    grade: Grade
    onset_minutes_after_dose: OnsetMinutes | None = None
    note: FreeText | None = None


class SideEffectReportSubmittedV1(Event):
    """Version 1: one symptom per report (the app's first release). Upcast to v2."""

    event_type = "SideEffectReportSubmitted"
    version = 1

    report_id: uuid.UUID
    symptom: ShortCode
    grade: Grade
    onset_minutes_after_dose: OnsetMinutes | None = None
    note: FreeText | None = None


def side_effect_report_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    upgraded = {k: v for k, v in payload.items() if k != "symptom"}
    upgraded["symptoms"] = [payload["symptom"]] if "symptom" in payload else []
    return upgraded


class VitalsSubmitted(Event):
    """A blood-pressure (and pulse) reading taken at home."""

    event_type = "VitalsSubmitted"
    version = 1

    reading_id: uuid.UUID
    systolic: Systolic
    diastolic: Diastolic
    heart_rate: HeartRate | None = None
    measured_at: PastTimestamp
    context: ReadingContext
    appointment_id: uuid.UUID | None = None


class MoodCheckInSubmitted(Event):
    """A mood check-in: PHQ-9, PCL-5 and/or GAD-7 item answers, scored by safety (the instrument a plan's
    indication measures response on: PTSD PCL-5, depression PHQ-9, anxiety GAD-7)."""

    event_type = "MoodCheckInSubmitted"
    version = 1

    checkin_id: uuid.UUID
    phq9_items: Annotated[list[Annotated[int, Field(ge=0, le=3)]], Field(min_length=9, max_length=9)] | None = None
    pcl5_items: Annotated[list[Annotated[int, Field(ge=0, le=4)]], Field(min_length=20, max_length=20)] | None = None
    gad7_items: Annotated[list[Annotated[int, Field(ge=0, le=3)]], Field(min_length=7, max_length=7)] | None = None
    answered_at: PastTimestamp
    appointment_id: uuid.UUID | None = None
