"""Outcomes of measurement-based care: per patient and instrument, and per program (pure).

The definitions are versioned configuration (``outcomes-<version>.toml`` beside this module,
docs/adr/0012-outcomes.md): what counts as response, remission and "improved at 4 weeks", with
their sources. Facts in (a patient's intake scores, check-in totals, first dose and indication),
figures out, each naming the definition version and the cohort it counts. No I/O here: the same
functions serve the HTTP read, the events and the tests' hand-worked examples.
"""

from __future__ import annotations

import statistics
import tomllib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from carecoord_contracts.common import Indication, Instrument

CURRENT_OUTCOMES = "2026.12.0"
CONFIG_DIR = Path(__file__).parent
DAY_SECONDS = 86400.0
MAX_WEEKS = 26  # weeks since the first dose shown in the series (half a year)


@dataclass(frozen=True)
class InstrumentDefinition:
    instrument: Instrument
    response_reduction: float
    remission_below: int
    reliable_change_points: int
    sources: dict[str, str]


@dataclass(frozen=True)
class OutcomeDefinitions:
    version: str
    indication_instrument: dict[Indication, Instrument]
    instruments: dict[Instrument, InstrumentDefinition]
    improved_day: int
    window_before_days: int
    window_after_days: int
    improved_source: str
    min_cell_size: int
    min_cell_source: str

    def instrument_for(self, indication: Indication) -> Instrument:
        return self.indication_instrument[indication]

    @property
    def window(self) -> tuple[int, int]:
        return self.improved_day - self.window_before_days, self.improved_day + self.window_after_days

    def describe(self) -> dict[str, Any]:
        """The definitions as the figures' readers see them (with their sources)."""
        first, last = self.window
        return {
            "version": self.version,
            "indication_instrument": {i.value: m.value for i, m in self.indication_instrument.items()},
            "instruments": {
                m.value: {
                    "response": f">= {d.response_reduction:.0%} reduction from baseline",
                    "remission": f"latest < {d.remission_below}",
                    "reliable_change": f"drop >= {d.reliable_change_points} points",
                    "sources": d.sources,
                }
                for m, d in self.instruments.items()
            },
            "improved_at_4_weeks": (
                f"a drop >= the reliable change on the indication's instrument at the follow-up nearest day "
                f"{self.improved_day} after the first dose within days {first}-{last}; over patients whose window "
                f"has closed; without a follow-up in it counted apart"
            ),
            "improved_at_4_weeks_source": self.improved_source,
            "min_cell_size": self.min_cell_size,
            "min_cell_source": self.min_cell_source,
        }


def load_outcomes(version: str = CURRENT_OUTCOMES, directory: Path = CONFIG_DIR) -> OutcomeDefinitions:
    """The definitions of ``version``; a file whose declared version is not its name's, or whose numbers
    make no sense or lack a source, is refused (a wrong definition would publish wrong figures)."""
    raw = tomllib.loads((directory / f"outcomes-{version}.toml").read_text())
    if raw["version"] != version:
        raise ValueError(f"outcomes file for {version} declares version {raw['version']}")
    instruments: dict[Instrument, InstrumentDefinition] = {}
    for name, spec in raw["instruments"].items():
        instrument = Instrument(name)
        reduction = float(spec["response_reduction"])
        if not 0 < reduction <= 1:
            raise ValueError(f"outcomes {version}: {name} response_reduction must be in (0, 1]")
        if int(spec["remission_below"]) <= 0 or int(spec["reliable_change_points"]) <= 0:
            raise ValueError(f"outcomes {version}: {name} cut-offs must be positive")
        sources = {k.removesuffix("_source"): str(v) for k, v in spec.items() if k.endswith("_source")}
        if set(sources) != {"response", "remission", "reliable_change"}:
            raise ValueError(f"outcomes {version}: {name} must cite a source for each definition")
        instruments[instrument] = InstrumentDefinition(
            instrument, reduction, int(spec["remission_below"]), int(spec["reliable_change_points"]), sources
        )
    mapping = {Indication(k): Instrument(v) for k, v in raw["indication_instrument"].items()}
    if set(mapping) != set(Indication) or not set(mapping.values()) <= set(instruments):
        raise ValueError(f"outcomes {version}: every indication needs an instrument that is defined")
    improved = raw["improved_at_4_weeks"]
    day, before, after = int(improved["day"]), int(improved["window_before_days"]), int(improved["window_after_days"])
    if not 0 <= before < day or after < 0:
        raise ValueError(f"outcomes {version}: the improvement window must lie after the first dose")
    aggregates = raw["aggregates"]
    return OutcomeDefinitions(
        version=version,
        indication_instrument=mapping,
        instruments=instruments,
        improved_day=day,
        window_before_days=before,
        window_after_days=after,
        improved_source=str(improved["source"]),
        min_cell_size=int(aggregates["min_cell_size"]),
        min_cell_source=str(aggregates["min_cell_source"]),
    )


# --- facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    at: datetime
    total: int


@dataclass(frozen=True)
class PatientFacts:
    """What dosing learnt about one patient from events: intake's scores, the check-ins' totals, the start of
    the first completed dosing session and the latest plan's indication."""

    patient_id: uuid.UUID
    indication: Indication | None = None
    first_dose_at: datetime | None = None
    intake: dict[Instrument, list[Score]] = field(default_factory=dict)
    check_ins: dict[Instrument, list[Score]] = field(default_factory=dict)


# --- per patient and instrument ---------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    at: datetime
    total: int
    days_since_first_dose: float


@dataclass(frozen=True)
class InstrumentOutcome:
    instrument: Instrument
    definition_version: str
    baseline: int | None
    baseline_at: datetime | None
    first_dose_at: datetime | None
    follow_ups: tuple[FollowUp, ...]
    response_at: datetime | None
    remission_at: datetime | None
    response: bool | None = None  # at the latest follow-up
    remission: bool | None = None

    @property
    def latest(self) -> FollowUp | None:
        return self.follow_ups[-1] if self.follow_ups else None

    @property
    def change_points(self) -> int | None:
        latest = self.latest
        return None if latest is None or self.baseline is None else latest.total - self.baseline

    @property
    def change_percent(self) -> float | None:
        change = self.change_points
        if change is None or not self.baseline:
            return None
        return round(100.0 * change / self.baseline, 1)

    @property
    def days_to_response(self) -> float | None:
        if self.response_at is None or self.first_dose_at is None:
            return None
        return round((self.response_at - self.first_dose_at).total_seconds() / DAY_SECONDS, 1)


def baseline(intake: Sequence[Score], first_dose_at: datetime | None) -> Score | None:
    """The latest intake score at or before the first dose, else the earliest after it (an intake score may
    arrive after the plan: topics are not ordered with each other); without a dose, the latest."""
    if not intake:
        return None
    ordered = sorted(intake, key=lambda s: s.at)
    if first_dose_at is None:
        return ordered[-1]
    before = [s for s in ordered if s.at <= first_dose_at]
    return before[-1] if before else ordered[0]


def responds(definition: InstrumentDefinition, baseline_total: int, total: int) -> bool:
    """At least ``response_reduction`` of the baseline gone (integers: no rounding at the boundary)."""
    return baseline_total > 0 and (baseline_total - total) >= definition.response_reduction * baseline_total


def remits(definition: InstrumentDefinition, total: int) -> bool:
    return total < definition.remission_below


def instrument_outcome(
    facts: PatientFacts, instrument: Instrument, definitions: OutcomeDefinitions
) -> InstrumentOutcome:
    definition = definitions.instruments[instrument]
    base = baseline(facts.intake.get(instrument, ()), facts.first_dose_at)
    dose = facts.first_dose_at
    follow_ups: tuple[FollowUp, ...] = ()
    if dose is not None:
        follow_ups = tuple(
            FollowUp(s.at, s.total, round((s.at - dose).total_seconds() / DAY_SECONDS, 2))
            for s in sorted(facts.check_ins.get(instrument, ()), key=lambda s: s.at)
            if s.at > dose
        )
    response_at = remission_at = None
    response = remission = None
    if base is not None and follow_ups:
        response_at = next((f.at for f in follow_ups if responds(definition, base.total, f.total)), None)
        remission_at = next((f.at for f in follow_ups if remits(definition, f.total)), None)
        response = responds(definition, base.total, follow_ups[-1].total)
        remission = remits(definition, follow_ups[-1].total)
    return InstrumentOutcome(
        instrument=instrument,
        definition_version=definitions.version,
        baseline=base.total if base else None,
        baseline_at=base.at if base else None,
        first_dose_at=dose,
        follow_ups=follow_ups,
        response_at=response_at,
        remission_at=remission_at,
        response=response,
        remission=remission,
    )


def patient_outcomes(facts: PatientFacts, definitions: OutcomeDefinitions) -> list[InstrumentOutcome]:
    """One outcome per instrument the patient was ever measured on (intake or check-in)."""
    measured = set(facts.intake) | set(facts.check_ins)
    return [instrument_outcome(facts, m, definitions) for m in Instrument if m in measured]


def improved_at_4_weeks(outcome: InstrumentOutcome, definitions: OutcomeDefinitions) -> bool | None:
    """Improved at the follow-up nearest the day (the later on a tie) in the window; None: none in it."""
    first, last = definitions.window
    in_window = [f for f in outcome.follow_ups if first <= f.days_since_first_dose <= last]
    if not in_window or outcome.baseline is None:
        return None
    nearest = min(reversed(in_window), key=lambda f: abs(f.days_since_first_dose - definitions.improved_day))
    return outcome.baseline - nearest.total >= definitions.instruments[outcome.instrument].reliable_change_points


# --- per program ------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One program figure: its value (a share, 0-1) with the counts it came from, the definition version and
    the cohort it counts. ``suppressed``: the cell is under the minimum size and its numbers are withheld."""

    figure: str
    indication: Indication | None
    numerator: int | None
    denominator: int | None
    definition: str
    cohort: str
    definition_version: str
    suppressed: bool = False

    @property
    def value(self) -> float | None:
        if self.numerator is None or not self.denominator:
            return None
        return round(self.numerator / self.denominator, 4)


@dataclass(frozen=True)
class Cohort:
    indication: Indication | None
    enrolled: int  # a plan with an indication
    eligible: int  # and a baseline on the indication's instrument and a first dose
    with_follow_up: int
    without_follow_up: int
    due_at_4_weeks: int  # eligible and the improvement window has closed
    measured_at_4_weeks: int
    not_measured_at_4_weeks: int


@dataclass(frozen=True)
class WeekPoint:
    """Follow-ups in one week since the first dose (each patient's last of that week)."""

    indication: Indication
    week: int
    patients: int
    median_total: float | None
    responding: int
    remitted: int


@dataclass(frozen=True)
class ProgramOutcomes:
    definition_version: str
    as_of: datetime
    figures: list[Figure]
    cohorts: list[Cohort]
    weeks: list[WeekPoint]


def _indication_outcome(facts: PatientFacts, definitions: OutcomeDefinitions) -> InstrumentOutcome | None:
    if facts.indication is None:
        return None
    return instrument_outcome(facts, definitions.instrument_for(facts.indication), definitions)


def program_outcomes(
    patients: Iterable[PatientFacts], definitions: OutcomeDefinitions, *, as_of: datetime
) -> ProgramOutcomes:
    """The program's figures by indication and overall, each over a stated cohort, on the instrument of the
    patient's indication. Eligible: a plan with an indication, a baseline on its instrument and a first
    dose. Response and remission: at the latest follow-up, over the eligible with one. Improved at 4 weeks:
    over the eligible whose window has closed by ``as_of``; also over all of them, the unmeasured counted as
    not improved."""
    v = definitions.version
    _, window_end = definitions.window
    by_indication: dict[Indication, list[InstrumentOutcome]] = {i: [] for i in Indication}
    enrolled: dict[Indication, int] = dict.fromkeys(Indication, 0)
    for facts in patients:
        outcome = _indication_outcome(facts, definitions)
        if outcome is None or facts.indication is None:
            continue
        enrolled[facts.indication] += 1
        if outcome.baseline is not None and outcome.first_dose_at is not None:
            by_indication[facts.indication].append(outcome)

    figures: list[Figure] = []
    cohorts: list[Cohort] = []
    groups: list[tuple[Indication | None, list[InstrumentOutcome], int]] = [
        (i, by_indication[i], enrolled[i]) for i in Indication
    ]
    groups.append((None, [o for i in Indication for o in by_indication[i]], sum(enrolled.values())))
    for indication, eligible, enrolled_count in groups:
        followed = [o for o in eligible if o.follow_ups]
        due = [
            o
            for o in eligible
            if o.first_dose_at is not None and (as_of - o.first_dose_at).total_seconds() >= window_end * DAY_SECONDS
        ]
        verdicts = [improved_at_4_weeks(o, definitions) for o in due]
        measured = [x for x in verdicts if x is not None]
        improved = sum(1 for x in measured if x)
        name = indication.value if indication else "all indications"
        cohorts.append(
            Cohort(
                indication,
                enrolled_count,
                len(eligible),
                len(followed),
                len(eligible) - len(followed),
                len(due),
                len(measured),
                len(due) - len(measured),
            )
        )
        figures += [
            Figure(
                "improved_at_4_weeks",
                indication,
                improved,
                len(measured),
                f"reliable improvement at day {definitions.improved_day} (+/- window) after the first dose",
                f"{name}: eligible, window closed, with a follow-up in the window",
                v,
            ),
            Figure(
                "improved_at_4_weeks_of_all_due",
                indication,
                improved,
                len(due),
                "as improved_at_4_weeks; patients without a follow-up in the window count as not improved",
                f"{name}: eligible, window closed",
                v,
            ),
            Figure(
                "response_rate",
                indication,
                sum(1 for o in followed if o.response),
                len(followed),
                ">= 50 % reduction from baseline at the latest follow-up (per instrument: definitions)",
                f"{name}: eligible with a follow-up after the first dose",
                v,
            ),
            Figure(
                "remission_rate",
                indication,
                sum(1 for o in followed if o.remission),
                len(followed),
                "latest follow-up below the instrument's remission cut-off",
                f"{name}: eligible with a follow-up after the first dose",
                v,
            ),
        ]
    return ProgramOutcomes(v, as_of, figures, cohorts, _weeks(by_indication, definitions))


def _weeks(
    by_indication: dict[Indication, list[InstrumentOutcome]], definitions: OutcomeDefinitions
) -> list[WeekPoint]:
    points: list[WeekPoint] = []
    for indication, outcomes in by_indication.items():
        weekly: dict[int, list[tuple[InstrumentOutcome, FollowUp]]] = {}
        for o in outcomes:
            last_of_week: dict[int, FollowUp] = {}
            for f in o.follow_ups:
                week = int(f.days_since_first_dose // 7)
                if week <= MAX_WEEKS:
                    last_of_week[week] = f
            for week, f in last_of_week.items():
                weekly.setdefault(week, []).append((o, f))
        for week in sorted(weekly):
            rows = weekly[week]
            definition = definitions.instruments[definitions.instrument_for(indication)]
            points.append(
                WeekPoint(
                    indication,
                    week,
                    len(rows),
                    statistics.median(f.total for _, f in rows),
                    sum(1 for o, f in rows if o.baseline is not None and responds(definition, o.baseline, f.total)),
                    sum(1 for _, f in rows if remits(definition, f.total)),
                )
            )
    return points


def suppress(program: ProgramOutcomes, min_cell_size: int) -> ProgramOutcomes:
    """The figures an aggregate-only reader sees: a figure any of whose cells (numerator, denominator, their
    difference) counts 1 to ``min_cell_size`` - 1 patients has its counts withheld; such a cohort row or week is
    left out (zero is shown: it singles nobody out)."""

    def small(n: int | None) -> bool:
        return n is not None and 0 < n < min_cell_size

    figures = [
        Figure(f.figure, f.indication, None, None, f.definition, f.cohort, f.definition_version, suppressed=True)
        if small(f.denominator) or small(f.numerator) or small((f.denominator or 0) - (f.numerator or 0))
        else f
        for f in program.figures
    ]
    cohorts = [c for c in program.cohorts if not any(small(n) for n in astuple(c)[1:])]
    weeks = [
        w
        for w in program.weeks
        if not any(
            small(n) for n in (w.patients, w.responding, w.remitted, w.patients - w.responding, w.patients - w.remitted)
        )
    ]
    return ProgramOutcomes(program.definition_version, program.as_of, figures, cohorts, weeks)


def reached(outcome: InstrumentOutcome) -> list[tuple[str, datetime]]:
    """The milestones an outcome has reached, for the events: ("response" | "remission", when)."""
    found: list[tuple[str, datetime]] = []
    if outcome.response_at is not None:
        found.append(("response", outcome.response_at))
    if outcome.remission_at is not None:
        found.append(("remission", outcome.remission_at))
    return found
