"""Value types shared by several contracts: bounded, enumerated, validated at the edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

# Two-letter USPS codes of the states and DC; which of them are served is configuration.
US_STATES = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
    ]
)

# Clocks of producers and consumers disagree a little; beyond this a timestamp "from the future" is wrong.
CLOCK_SKEW = timedelta(minutes=5)


def _not_in_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


# A producer's clock may be off by more than CLOCK_SKEW (a host whose time sync failed):
# its events are flagged, not refused (messaging.clock_skew). A date further ahead than
# this is no clock error but a broken or hostile producer (year 2999), and is refused.
PRODUCER_CLOCK_LIMIT = timedelta(days=1)


def _not_implausibly_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + PRODUCER_CLOCK_LIMIT:
        raise ValueError("must not be more than a day in the future")
    return value


def _not_epoch_number(value: object) -> object:
    # pydantic reads a bare number as Unix time; the contract says an ISO 8601 string.
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 date-time string, not a number")
    return value


def _iana_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone") from exc
    return value


StateCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="USPS state code")]
ShortCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$", description="snake_case code")]
ShortCodes = Annotated[list[ShortCode], Field(max_length=20)]
ActorId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="pseudonymous staff id")
]
Milligrams = Annotated[int, Field(ge=1, le=1000, description="oral ketamine dose in mg")]
Cents = Annotated[int, Field(ge=0, le=100_000_000, description="money in integer cents (USD)")]
SignedCents = Annotated[
    int, Field(ge=-100_000_000, le=100_000_000, description="money in integer cents (USD), may be negative")
]
Timestamp = Annotated[AwareDatetime, BeforeValidator(_not_epoch_number)]
PastTimestamp = Annotated[Timestamp, AfterValidator(_not_in_future)]
# When a producer says its event happened: its own clock, which may run ahead (see above).
ProducerTimestamp = Annotated[Timestamp, AfterValidator(_not_implausibly_future)]
IanaTimeZone = Annotated[
    str, Field(min_length=3, max_length=64, description="IANA time zone"), AfterValidator(_iana_zone)
]
Systolic = Annotated[int, Field(ge=50, le=300, description="mmHg")]
Diastolic = Annotated[int, Field(ge=20, le=200, description="mmHg")]
HeartRate = Annotated[int, Field(ge=20, le=250, description="beats per minute")]
# CTCAE-style grade: 1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death.
Grade = Annotated[int, Field(ge=1, le=5, description="CTCAE-style grade 1-5")]
RuleVersion = Annotated[str, Field(min_length=1, max_length=40)]
CptCode = Annotated[str, Field(pattern=r"^\d{4}[0-9A-Z]$")]


def _icd10cm_without_dot(value: str) -> str:
    return value.replace(".", "")


# An ICD-10-CM code as a clinician writes it (F43.10) or as X12 carries it (F4310):
# a letter, a digit, a letter or digit, then up to four more letters or digits, the
# dot (if written) only after the third character. Stored and sent without the dot.
DiagnosisCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$",
        description="ICD-10-CM code, e.g. F43.10 or F4310 (sent without the dot)",
    ),
    AfterValidator(_icd10cm_without_dot),
]


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("each diagnosis code at most once")
    return values


# At least one; at most 12, what one X12 837P HI segment carries (principal first).
DiagnosisCodes = Annotated[list[DiagnosisCode], Field(min_length=1, max_length=12), AfterValidator(_distinct)]


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


class AppointmentType(StrEnum):
    initial_evaluation = "initial_evaluation"
    preparation = "preparation"
    dosing_session = "dosing_session"
    integration = "integration"
    follow_up = "follow_up"
    urgent_review = "urgent_review"


class CareRole(StrEnum):
    """A clinician's place in one patient's care team."""

    prescriber = "prescriber"
    therapist = "therapist"


class AssignmentBasis(StrEnum):
    """Why a review is with the clinician it is assigned to (and why they may read the patient's chart)."""

    prescriber = "prescriber"  # the patient's prescribing clinician, available before the review is due
    on_call = "on_call"  # the prescriber was not available before it was due, or it went overdue
    clinical_lead = "clinical_lead"  # still not acknowledged after the on-call clinician was paged
    reassigned = "reassigned"  # a clinician or operator gave it to someone by hand
    unassigned = "unassigned"  # nobody could take it: no prescriber known and nobody on call


class ConsentDocument(StrEnum):
    """The consent documents a patient signs; each is versioned (intake publishes the texts)."""

    ketamine_treatment = "ketamine_treatment"  # informed consent to at-home ketamine, with its risks
    telehealth = "telehealth"
    sms_contact = "sms_contact"  # contact by text message


class Instrument(StrEnum):
    phq9 = "phq9"
    gad7 = "gad7"
    pcl5 = "pcl5"


class Indication(StrEnum):
    """What the treatment plan treats; the titration rules map it to the instrument that measures response."""

    ptsd = "ptsd"
    depression = "depression"
    anxiety = "anxiety"


class EligibilityOutcome(StrEnum):
    eligible = "eligible"
    ineligible = "ineligible"
    needs_review = "needs_review"


class CoverageKind(StrEnum):
    insurance = "insurance"
    self_pay = "self_pay"


class ReadingContext(StrEnum):
    pre_dose = "pre_dose"
    post_dose = "post_dose"
    routine = "routine"
