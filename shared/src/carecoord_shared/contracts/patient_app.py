"""Events the patient app publishes on the patient's behalf."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from .common import Grade, ShortCode
from .envelope import Event


class SideEffectReportSubmitted(Event):
    """A patient submitted a side-effect report in the app.

    ``note`` is free text: it may hold anything the patient typed, so only the
    safety service stores it and no log, span or downstream event carries it.
    """

    event_type = "SideEffectReportSubmitted"
    version = 1

    report_id: uuid.UUID
    symptoms: Annotated[list[ShortCode], Field(min_length=1, max_length=20)]
    grade: Grade
    onset_minutes_after_dose: Annotated[int, Field(ge=0, le=60 * 24 * 30)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None
