"""The versioned fee schedule: appointment type -> billed codes and list prices.

Pricing is a pure function of the schedule and the completed appointment, so
it can be tested, and replayed under a proposed schedule, without a database.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carecoord_contracts.common import AppointmentType

FEES_DIR = Path(__file__).parent
CURRENT_VERSION = "2026.2"


@dataclass(frozen=True)
class ServiceLine:
    cpt: str
    cents: int


@dataclass(frozen=True)
class PricedVisit:
    """What one completed appointment is billed as."""

    lines: tuple[ServiceLine, ...]
    modifiers: tuple[str, ...]
    place_of_service: str
    fee_schedule_version: str

    @property
    def amount_cents(self) -> int:
        return sum(line.cents for line in self.lines)

    @property
    def cpt_codes(self) -> list[str]:
        return [line.cpt for line in self.lines]


@dataclass(frozen=True)
class Package:
    """Self-pay course package: ``sessions`` dosing sessions, and the therapy around them, for ``cents``."""

    cents: int
    sessions: int
    covers: frozenset[AppointmentType]


@dataclass(frozen=True)
class FeeSchedule:
    version: str
    place_of_service: str
    video_modifier: str
    by_type: dict[AppointmentType, tuple[ServiceLine, ...]]
    package: Package
    # A new patient's codes where they differ (E/M 9920x instead of 9921x); the others bill as by_type.
    new_patient_by_type: dict[AppointmentType, tuple[ServiceLine, ...]] = field(default_factory=dict)

    def price(
        self, appointment_type: AppointmentType, *, video: bool, new_patient: bool | None = None
    ) -> PricedVisit | None:
        """The visit's codes and price; None when this kind of appointment is not billable.

        ``new_patient`` True: the new-patient codes where the schedule has them (None, not said: established)."""
        lines = self.by_type.get(appointment_type)
        if new_patient and lines:
            lines = self.new_patient_by_type.get(appointment_type, lines)
        if not lines:
            return None
        return PricedVisit(
            lines=lines,
            modifiers=(self.video_modifier,) if video else (),
            place_of_service=self.place_of_service,
            fee_schedule_version=self.version,
        )


def parse(raw: dict[str, Any]) -> FeeSchedule:
    by_type: dict[AppointmentType, tuple[ServiceLine, ...]] = {}
    new_patient_by_type: dict[AppointmentType, tuple[ServiceLine, ...]] = {}
    for name, entry in raw.get("appointment_types", {}).items():
        by_type[AppointmentType(name)] = _lines(name, entry["lines"])
        if "new_patient_lines" in entry:
            new_patient_by_type[AppointmentType(name)] = _lines(name, entry["new_patient_lines"])
    # 2026.1's default_diagnosis is no longer read: claims carry the plan's diagnosis.
    package = raw["self_pay"]["package"]
    if type(package["cents"]) is not int or package["cents"] < 0 or package["sessions"] < 1:
        raise ValueError("fee schedule: the self-pay package needs integer cents and at least one session")
    return FeeSchedule(
        version=str(raw["version"]),
        place_of_service=str(raw["place_of_service"]),
        video_modifier=str(raw["video_modifier"]),
        by_type=by_type,
        new_patient_by_type=new_patient_by_type,
        package=Package(
            package["cents"], package["sessions"], frozenset(AppointmentType(t) for t in package["covers"])
        ),
    )


def _lines(name: str, raw: list[Any]) -> tuple[ServiceLine, ...]:
    lines = tuple(ServiceLine(cpt=str(line["cpt"]), cents=line["cents"]) for line in raw)
    for line in lines:
        # Money is integer cents: a float or a string here is a mistake in the file.
        if type(line.cents) is not int or line.cents < 0:
            raise ValueError(f"fee schedule: {name} {line.cpt}: price must be a non-negative integer of cents")
        if not (len(line.cpt) == 5 and line.cpt[:4].isdigit()):
            raise ValueError(f"fee schedule: {name}: {line.cpt!r} is not a CPT code")
    return lines


def load(version: str = CURRENT_VERSION) -> FeeSchedule:
    with open(FEES_DIR / f"fee-schedule-{version}.toml", "rb") as f:
        schedule = parse(tomllib.load(f))
    if schedule.version != version:
        raise ValueError(f"fee-schedule-{version}.toml declares version {schedule.version}")
    return schedule
