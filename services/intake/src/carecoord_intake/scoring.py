"""Scoring of the screening instruments exactly as each one defines it. Pure: no I/O.

The bands and cut-offs below are part of each instrument's published
definition (Kroenke 2001, Spitzer 2006, National Center for PTSD), not product
choices; the product's enrolment thresholds live in the eligibility rule set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carecoord_contracts.common import Instrument


@dataclass(frozen=True)
class InstrumentSpec:
    instrument: Instrument
    items: int
    max_item: int
    # (lowest total of the band, band code), ascending.
    bands: tuple[tuple[int, str], ...]
    loinc_total: str | None

    @property
    def max_total(self) -> int:
        return self.items * self.max_item


PHQ9 = InstrumentSpec(
    Instrument.phq9,
    items=9,
    max_item=3,
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately_severe"), (20, "severe")),
    loinc_total="44261-6",
)
GAD7 = InstrumentSpec(
    Instrument.gad7,
    items=7,
    max_item=3,
    bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")),
    loinc_total="70274-6",
)
# 33 is the commonly used probable-PTSD cut-off (the National Center for PTSD cites 31-33).
PCL5_PROBABLE_PTSD = 33
PCL5 = InstrumentSpec(
    Instrument.pcl5,
    items=20,
    max_item=4,
    bands=((0, "below_threshold"), (PCL5_PROBABLE_PTSD, "probable_ptsd")),
    loinc_total=None,
)
SPECS: dict[Instrument, InstrumentSpec] = {s.instrument: s for s in (PHQ9, GAD7, PCL5)}

# DSM-5 symptom clusters of the PCL-5 (1-based item numbers) and how many items of
# each must be rated 2 ("moderately") or higher for a provisional diagnosis.
PCL5_CLUSTERS: tuple[tuple[range, int], ...] = (
    (range(1, 6), 1),  # B: intrusion
    (range(6, 8), 1),  # C: avoidance
    (range(8, 15), 2),  # D: negative alterations in cognition and mood
    (range(15, 21), 2),  # E: alterations in arousal and reactivity
)
PCL5_SYMPTOM_ENDORSED = 2
PHQ9_SELF_HARM_ITEM = 9


@dataclass(frozen=True)
class Score:
    instrument: Instrument
    total: int
    severity_band: str
    loinc_code: str | None
    item9_positive: bool | None = None
    provisional_ptsd: bool | None = None


def check_answers(spec: InstrumentSpec, answers: Sequence[int]) -> None:
    if len(answers) != spec.items:
        raise ValueError(f"{spec.instrument.value} has {spec.items} items, got {len(answers)}")
    for number, answer in enumerate(answers, start=1):
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer <= spec.max_item:
            raise ValueError(f"{spec.instrument.value} item {number} must be an integer 0-{spec.max_item}")


def band(spec: InstrumentSpec, total: int) -> str:
    if not 0 <= total <= spec.max_total:
        raise ValueError(f"{spec.instrument.value} total must be 0-{spec.max_total}")
    return [code for low, code in spec.bands if total >= low][-1]


def pcl5_provisional_diagnosis(answers: Sequence[int]) -> bool:
    check_answers(PCL5, answers)
    return all(
        sum(1 for item in cluster if answers[item - 1] >= PCL5_SYMPTOM_ENDORSED) >= needed
        for cluster, needed in PCL5_CLUSTERS
    )


def score(instrument: Instrument, answers: Sequence[int]) -> Score:
    spec = SPECS[instrument]
    check_answers(spec, answers)
    total = sum(answers)
    return Score(
        instrument=instrument,
        total=total,
        severity_band=band(spec, total),
        loinc_code=spec.loinc_total,
        item9_positive=answers[PHQ9_SELF_HARM_ITEM - 1] > 0 if instrument is Instrument.phq9 else None,
        provisional_ptsd=pcl5_provisional_diagnosis(answers) if instrument is Instrument.pcl5 else None,
    )
