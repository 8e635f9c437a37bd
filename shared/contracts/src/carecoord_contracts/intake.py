"""Events produced by the intake service. Pseudonymous ids and coded facts only:
names, dates of birth, contact details and member ids stay in intake."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from .common import (
    ConsentDocument,
    CoverageKind,
    EligibilityOutcome,
    IanaTimeZone,
    Instrument,
    RuleVersion,
    ShortCode,
    ShortCodes,
    StateCode,
    Timestamp,
)
from .envelope import Event


class PatientRegistered(Event):
    """A patient enrolled; the pseudonymous patient id is the envelope's key.

    Sent again, with the new values, when a clinician's re-evaluation records a move (state of
    residence or time zone): consumers keep the latest (licensing checks and local times use it)."""

    event_type = "PatientRegistered"
    version = 1

    state_of_residence: StateCode
    time_zone: IanaTimeZone


class AssessmentScored(Event):
    """A screening instrument was scored (PHQ-9, GAD-7 or PCL-5)."""

    event_type = "AssessmentScored"
    version = 1

    assessment_id: uuid.UUID
    instrument: Instrument
    total: Annotated[int, Field(ge=0, le=80)]
    severity_band: ShortCode
    loinc_code: Annotated[str, Field(pattern=r"^\d{1,7}-\d$")] | None = None
    item9_positive: bool | None = Field(default=None, description="PHQ-9 only: thoughts of self-harm answered above 0")
    provisional_ptsd: bool | None = Field(default=None, description="PCL-5 only: the DSM-5 provisional diagnosis rule")


class MedicalScreeningCompleted(Event):
    event_type = "MedicalScreeningCompleted"
    version = 1

    screening_id: uuid.UUID
    exclusions: ShortCodes
    needs_review: ShortCodes


class EligibilityDetermined(Event):
    event_type = "EligibilityDetermined"
    version = 1

    decision_id: uuid.UUID
    outcome: EligibilityOutcome
    reasons: ShortCodes
    rule_version: RuleVersion
    state_of_residence: StateCode
    time_zone: IanaTimeZone
    overridden_by: Annotated[str, Field(max_length=64)] | None = Field(
        default=None,
        description="The clinician who made this decision (an override or a re-evaluation); None for the rules' own",
    )
    sequence: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="1, 2, ... per patient: a later decision supersedes an earlier one; apply the highest seen (None from an older producer)",
    )
    supersedes_decision_id: uuid.UUID | None = Field(default=None, description="The decision this one replaces, if any")


class CoverageDeclared(Event):
    """Insurance or self-pay declared; billing fetches the member id from intake when it needs it."""

    event_type = "CoverageDeclared"
    version = 1

    coverage_id: uuid.UUID
    kind: CoverageKind
    payer_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")] | None = None
    state_of_residence: StateCode


class ConsentSigned(Event):
    """The patient signed a version of a consent document through the API (``version`` names the text)."""

    event_type = "ConsentSigned"
    version = 1

    document: ConsentDocument
    document_version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z.-]+$")]
    signed_at: Timestamp


class ConsentWithdrawn(Event):
    """The patient withdrew their consent to a document (whatever version they had signed). Withdrawing
    ``ketamine_treatment`` holds the treatment plan and opens a clinician review; ``sms_contact`` stops text
    messages."""

    event_type = "ConsentWithdrawn"
    version = 1

    document: ConsentDocument
    document_version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z.-]+$")]
    withdrawn_at: Timestamp
