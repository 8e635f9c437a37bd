"""Value types shared by several contracts: bounded, enumerated, validated at the edge."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

# Two-letter USPS codes of the states and DC; which of them are served is configuration.
US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)

StateCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
ShortCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
Milligrams = Annotated[int, Field(ge=1, le=1000)]


# CTCAE-style grade: 1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death.
Grade = Annotated[int, Field(ge=1, le=5)]


class ReviewPriority(StrEnum):
    urgent = "urgent"
    high = "high"
    routine = "routine"


class PlanStatus(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    completed = "completed"
    discontinued = "discontinued"


class ReviewDecision(StrEnum):
    resume = "resume"
    resume_with_dose_change = "resume_with_dose_change"
    discontinue = "discontinue"
