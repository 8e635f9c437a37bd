"""Engagement's own settings (prefix CARECOORD_), beside the ones every service shares: when tasks fall
due, and the delivery settings of notify (NotifySettings: intake, the mail relay, SMS, quiet hours, the sender).

Defaults run locally: intake on its `make run` port, mail to the local mailbox.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from carecoord_shared.config import ServiceSettings

from .notify.settings import NotifySettings


class EngagementSettings(NotifySettings, ServiceSettings):
    service: Literal["engagement"] = "engagement"

    # When a task falls due, counted from the event that caused it (an arranged review: the review's due time).
    call_patient_due_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 60
    escalated_review_due_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 15
    denied_claim_due_days: Annotated[int, Field(ge=1, le=120)] = 14
