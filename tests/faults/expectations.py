"""What a patient's side-effect reports must lead to, written from the escalation
table of docs/domain.md ("Safety monitoring"), not from safety's rule files:
the checker compares the system with this, so it must not share its code.

| condition                                          | expected                        |
|----------------------------------------------------|---------------------------------|
| grade >= 3, or any red-flag symptom                | review due <= 4 h, and a hold   |
| grade 2                                            | review due <= 24 h, no hold     |
| >= 3 grade-1 of one symptom in 7 d, or >= 2 grade 2 in 14 d | review due <= 72 h     |

Reports of one patient arrive within minutes, so every window holds. A review
is one per kind: later triggers join the open one ("exactly one open review").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

# Red-flag symptoms of the domain reference, as the patient app codes them.
# The blood-pressure rule's symptoms (severe headache, shortness of breath, confusion)
# are red flags too.
RED_FLAGS = frozenset(
    {
        "chest_pain",
        "jaundice",
        "breathing_difficulty",
        "loss_of_consciousness",
        "severe_headache",
        "shortness_of_breath",
        "confusion",
    }
)

URGENT, WITHIN_DAY, WITHIN_3_DAYS = 4, 24, 72


@dataclass(frozen=True)
class Expected:
    review_windows: frozenset[int]  # the due windows (hours) of the unresolved reviews, one review each
    hold: bool  # a treatment hold requested, and so the plan paused


def expected(reports: list[tuple[int, tuple[str, ...]]]) -> Expected:
    """The outcome for a patient's reports, (grade, symptoms) each."""
    urgent = any(grade >= 3 or RED_FLAGS & set(symptoms) for grade, symptoms in reports)
    grade_2 = sum(1 for grade, _ in reports if grade == 2)
    grade_1_by_symptom = Counter(s for grade, symptoms in reports if grade == 1 for s in symptoms)
    repeated = grade_2 >= 2 or any(n >= 3 for n in grade_1_by_symptom.values())
    windows = {URGENT} if urgent else set()
    if grade_2:
        windows.add(WITHIN_DAY)
    if repeated:
        windows.add(WITHIN_3_DAYS)
    return Expected(frozenset(windows), urgent)


def window_of(due_in_hours: float) -> int:
    """The table's window a review's due time falls in."""
    return URGENT if due_in_hours <= URGENT else WITHIN_DAY if due_in_hours <= WITHIN_DAY else WITHIN_3_DAYS


# Every grade, alone and combined, each red-flag path and both "repeated" rules;
# patient i follows SCENARIOS[i % len(SCENARIOS)].
SCENARIOS: list[list[tuple[int, tuple[str, ...]]]] = [
    [(1, ("nausea",))],
    [(1, ("nausea",)), (1, ("nausea",)), (1, ("nausea",))],
    [(2, ("dizziness",))],
    [(2, ("dizziness",)), (2, ("blurred_vision",))],
    [(3, ("raised_blood_pressure",))],
    [(4, ("dizziness",))],
    [(5, ("drowsiness",))],
    [(1, ("nausea",)), (2, ("dizziness",)), (3, ("nausea",))],
    [(1, ("chest_pain",))],
    [(2, ("nausea",)), (4, ("blurred_vision",)), (1, ("drowsiness",)), (1, ("drowsiness",)), (1, ("drowsiness",))],
    [(1, ("nausea",)), (1, ("dizziness",)), (1, ("nausea",))],
    [(1, ("severe_headache",))],
]
