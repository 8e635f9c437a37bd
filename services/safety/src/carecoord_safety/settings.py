"""Safety's settings (prefix CARECOORD_): the ones every service shares and its own, read once by the composition
root."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from carecoord_shared.config import ServiceSettings


class SafetySettings(ServiceSettings):
    service: Literal["safety"] = "safety"
    # An overdue review is paged to on-call at its due time; still not acknowledged this much later, to the
    # state's clinical lead (domain/assignment.py).
    lead_escalation_minutes: int = Field(default=30, ge=1, le=24 * 60)

    @property
    def lead_after(self) -> timedelta:
        return timedelta(minutes=self.lead_escalation_minutes)
