"""The treatment course the suite's plans use: within the program's limits, for depression."""

from __future__ import annotations

from typing import Any

COURSE: dict[str, Any] = {
    "starting_dose_mg": 100,
    "max_dose_mg": 300,
    "max_step_mg": 50,
    "planned_sessions": 6,
    "indication": "depression",
    "diagnosis_codes": ["F33.1"],
}
