"""HTTP request and response models of intake, with their bounds.

Validation happens here, at the edge: a request that is not accepted gets a
422 naming each bad field (never echoing its value) and writes nothing.

The medical-screening questionnaire is the eligibility rule set's, so the two
bodies that carry its answers are made from the rule set in force
(``screening_schemas``): one required yes/no field per question. Their fixed
parts are declared here (``MedicalScreeningSubmission``, ``ReEvaluationSubmission``),
and the models made from the rules only say which questions ``answers`` has.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic.fields import FieldInfo

from carecoord_contracts.common import (
    US_STATES,
    ActorId,
    ConsentDocument,
    CoverageKind,
    Diastolic,
    EligibilityOutcome,
    Instrument,
    PastTimestamp,
    StateCode,
    Systolic,
)

from . import scoring
from .rules import RuleSet

_TIME_ZONES = frozenset(available_timezones())
_OLDEST_BIRTH_DATE = date(1900, 1, 1)


def _us_state(value: str) -> str:
    if value not in US_STATES:
        raise ValueError("not a US state code")
    return value


def _iana_zone(value: str) -> str:
    if value not in _TIME_ZONES:
        raise ValueError("not an IANA time zone (for example America/Chicago)")
    return value


def _plausible_birth_date(value: date) -> date:
    if value > date.today():
        raise ValueError("must not be in the future")
    if value < _OLDEST_BIRTH_DATE:
        raise ValueError(f"must not be before {_OLDEST_BIRTH_DATE.isoformat()}")
    return value


UsState = Annotated[StateCode, AfterValidator(_us_state)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_iana_zone)]
# Printable text without control characters.
Text = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]
Name = Annotated[Text, Field(min_length=1, max_length=64)]
FreeText = Annotated[str, Field(min_length=1, max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class Address(Strict):
    line1: Annotated[Text, Field(min_length=1, max_length=128)]
    line2: Annotated[Text, Field(max_length=128)] | None = None
    city: Annotated[Text, Field(min_length=1, max_length=64)]
    state: UsState
    postal_code: Annotated[str, Field(pattern=r"^\d{5}(-\d{4})?$")]


class Registration(Strict):
    external_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
    first_name: Name
    last_name: Name
    date_of_birth: Annotated[date, AfterValidator(_plausible_birth_date)]
    sex: Literal["F", "M", "U"] = Field(description="Administrative sex as claims use it: F, M or U (unknown)")
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ().-]{6,24}$")]
    address: Address
    state_of_residence: UsState
    time_zone: TimeZone


class Patient(BaseModel):
    """What the API returns about a patient: the pseudonymous id and non-identifying facts only."""

    patient_id: uuid.UUID
    state_of_residence: str
    time_zone: str
    registered_at: datetime


def _item(spec: scoring.InstrumentSpec) -> FieldInfo:
    bounds: FieldInfo = Field(ge=0, le=spec.max_item)
    return bounds


def _answers(spec: scoring.InstrumentSpec) -> FieldInfo:
    bounds: FieldInfo = Field(
        min_length=spec.items,
        max_length=spec.items,
        description=f"{spec.items} item answers in questionnaire order, each 0-{spec.max_item}",
    )
    return bounds


class Phq9Submission(Strict):
    instrument: Literal[Instrument.phq9]
    answers: Annotated[list[Annotated[StrictInt, _item(scoring.PHQ9)]], _answers(scoring.PHQ9)]


class Gad7Submission(Strict):
    instrument: Literal[Instrument.gad7]
    answers: Annotated[list[Annotated[StrictInt, _item(scoring.GAD7)]], _answers(scoring.GAD7)]


class Pcl5Submission(Strict):
    instrument: Literal[Instrument.pcl5]
    answers: Annotated[list[Annotated[StrictInt, _item(scoring.PCL5)]], _answers(scoring.PCL5)]


AssessmentSubmission = Annotated[Phq9Submission | Gad7Submission | Pcl5Submission, Field(discriminator="instrument")]


class AssessmentResult(BaseModel):
    assessment_id: uuid.UUID
    instrument: Instrument
    total: int
    severity_band: str
    item9_positive: bool | None
    provisional_ptsd: bool | None


class BloodPressureIn(Strict):
    systolic: Systolic
    diastolic: Diastolic
    measured_at: PastTimestamp


class Recorded(BaseModel):
    id: uuid.UUID


class CoverageIn(Strict):
    kind: CoverageKind
    payer_id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")] | None = Field(
        default=None, validate_default=True
    )
    member_id: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")] | None = Field(
        default=None, validate_default=True
    )
    plan: Annotated[Text, Field(min_length=1, max_length=128)] | None = Field(default=None, validate_default=True)

    @field_validator("payer_id", "member_id", "plan")
    @classmethod
    def insurance_details(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is CoverageKind.insurance and value is None:
            raise ValueError("required for insurance")
        if kind is CoverageKind.self_pay and value is not None:
            raise ValueError("must be absent for self-pay")
        return value


class OverrideIn(Strict):
    clinician_id: ActorId
    outcome: Literal[EligibilityOutcome.eligible, EligibilityOutcome.ineligible]
    reason: Annotated[FreeText, Field(description="Why; kept in intake only, encrypted, never in events or logs")]


class DecisionOut(BaseModel):
    decision_id: uuid.UUID
    outcome: EligibilityOutcome
    reasons: list[str]
    rule_version: str
    decided_at: datetime
    sequence: int = Field(description="1, 2, ... per patient; the highest is the decision in force")
    basis: str = Field(description="rules, clinician_override or clinician_re_evaluation")
    overrides_decision_id: uuid.UUID | None = Field(
        description="The decision this one superseded (a clinician's decision)"
    )
    overridden_by: str | None = Field(description="The clinician who made this decision; None for the rules' own")


class DecisionHistoryEntry(DecisionOut):
    clinician_reason: str | None = Field(description="Why the clinician decided (free text)")


class Residence(Strict):
    state_of_residence: UsState
    time_zone: TimeZone


class AssessmentSummary(BaseModel):
    total: int
    severity_band: str
    item9_positive: bool | None
    provisional_ptsd: bool | None
    submitted_at: datetime


class IntakeStatus(BaseModel):
    patient_id: uuid.UUID
    state_of_residence: str
    time_zone: str
    assessments: dict[Instrument, AssessmentSummary]
    medical_screening_done: bool
    blood_pressure_done: bool
    coverage_kind: CoverageKind | None
    missing: list[str] = Field(description="Intake steps still to do; the decision is made when none is left")
    decision: DecisionOut | None


# A consent document's version, as ConsentSigned carries it.
DocumentVersion = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z.-]+$")]


class ConsentDocumentText(BaseModel):
    """One version of a consent document: the exact text a signature under this version agrees to."""

    document: ConsentDocument
    version: str
    title: str
    text: str = Field(description="The document in Markdown")
    current: bool = Field(description="Whether this is the version a patient signs now")


class ConsentIn(Strict):
    """The patient signs the version of the document they read; it must be the current one."""

    document: ConsentDocument
    document_version: DocumentVersion


class ConsentState(BaseModel):
    """The patient's standing consent to one document."""

    document: ConsentDocument
    current_version: str = Field(description="The version a patient signs now")
    status: Literal["signed", "withdrawn", "never_signed"]
    document_version: str | None = Field(description="The version last signed (or withdrawn)")
    signed_at: datetime | None
    withdrawn_at: datetime | None
    signed_version_is_current: bool


class PatientConsents(BaseModel):
    patient_id: uuid.UUID
    consents: list[ConsentState]


class ClaimAddress(BaseModel):
    line1: str
    city: str
    state: str
    postal_code: str


class ClaimCoverage(BaseModel):
    payer_id: str
    member_id: str
    plan: str


class ClaimDemographics(BaseModel):
    patient_id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: date
    sex: Literal["F", "M", "U"]
    address: ClaimAddress
    coverage: ClaimCoverage | None


class PatientContact(BaseModel):
    """Where engagement reaches the patient (PHI): read at send time, used for one message, never stored there."""

    patient_id: uuid.UUID
    email: str
    phone: str
    time_zone: str = Field(description="IANA zone: quiet hours are the patient's local night")
    state_of_residence: str


class ScreeningAnswers(BaseModel):
    """The medical-screening answers, {question code: answered yes}; its fields are the rule set's questions."""

    model_config = ConfigDict(extra="forbid")


class MedicalScreeningSubmission(Strict):
    """The medical-screening body as the routes read it; the body model of the rules in force subclasses it."""

    answers: ScreeningAnswers
    notes: FreeText | None = Field(default=None, description="Anything else; encrypted, stays in intake")


class ReEvaluationSubmission(Strict):
    """The re-evaluation body as the routes read it; the body model of the rules in force subclasses it."""

    clinician_id: ActorId
    reason: FreeText = Field(
        description="Why (the new information); kept in intake only, encrypted, never in events or logs"
    )
    residence: Residence | None = Field(default=None, description="A move: the new state of residence and time zone")
    blood_pressure: BloodPressureIn | None = Field(default=None, description="A repeat reading")
    medical_screening_answers: ScreeningAnswers | None = Field(
        default=None, description="Updated screening answers: every question answered yes or no"
    )


@dataclass(frozen=True)
class ScreeningSchemas:
    """The body models made from one rule set's questionnaire."""

    medical_screening: type[MedicalScreeningSubmission]
    re_evaluation: type[ReEvaluationSubmission]


def screening_schemas(rules: RuleSet) -> ScreeningSchemas:
    """One required yes/no field per question of the rule set: an unanswered question is a 422, not a 'no'."""
    questions: dict[str, Any] = {q.code: (StrictBool, Field(description=q.text)) for q in rules.questions}
    answers = create_model("MedicalScreeningAnswers", __base__=ScreeningAnswers, **questions)
    fixed = ReEvaluationSubmission.model_fields["medical_screening_answers"]
    return ScreeningSchemas(
        medical_screening=create_model(
            "MedicalScreeningIn", __base__=MedicalScreeningSubmission, answers=(answers, ...)
        ),
        re_evaluation=create_model(
            "ReEvaluationIn",
            __base__=ReEvaluationSubmission,
            medical_screening_answers=(answers | None, Field(default=None, description=fixed.description)),
        ),
    )
