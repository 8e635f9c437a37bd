"""HTTP API for the patient app and clinicians' UIs, and the internal API billing reads demographics from.

Validation happens here, at the edge: a request that is not accepted gets a
422 naming each bad field (never echoing its value) and writes nothing.

Who may do what (carecoord_shared.auth; "own" = the token's patient, "licensed" =
a clinician licensed in the patient's state; every patient check is audited):

| route                                                   | patient | clinician          | operator | service |
|---------------------------------------------------------|---------|--------------------|----------|---------|
| POST /patients (register)                               | -       | in a licensed state (1) | -   | yes (1) |
| GET /patients/{id}, GET /patients/{id}/intake           | own     | licensed           | -        | any     |
| POST /patients/{id}/assessments, /medical-screening, /blood-pressure | own | licensed  | -        | any     |
| PUT /patients/{id}/coverage                             | own     | licensed           | -        | any     |
| POST /patients/{id}/eligibility/override                | -       | licensed, own name (2) | -    | any     |
| POST /patients/{id}/eligibility/re-evaluation           | -       | licensed, own name (4) | -    | -       |
| GET /patients/{id}/eligibility/decisions                | -       | licensed           | -        | any     |
| GET /internal/patients/{id}/claim-demographics          | -       | -                  | -        | any (3) |

(1) Registration creates the patient id, so no patient token can exist for it
yet: the patient app's backend registers its users as a service (it has
authenticated them itself), and a clinician registers a patient in
staff-assisted intake, only in a state they are licensed in (the same rule as
reading the patient afterwards). Questionnaires, the blood-pressure reading and
the coverage declaration are the patient's own answers: the patient submits
their own, a licensed clinician may enter them with the patient. (2) Deciding a
needs-review intake is a clinical decision: a licensed clinician in their own
name (clinician_id), or a service recording one. (3) Names, date of birth,
address and member id leave intake only here, to billing calling as a service.
Operators reach none of it. (4) Re-evaluating after new information is a
clinician's own act: only a clinician, in their own name, licensed in the
patient's state and, when the patient moved, in the new state too.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Response, status
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

from carecoord_shared.auth import Access, Role, allow
from carecoord_shared.contracts.common import (
    US_STATES,
    ActorId,
    CoverageKind,
    Diastolic,
    EligibilityOutcome,
    Instrument,
    PastTimestamp,
    StateCode,
    Systolic,
)
from carecoord_shared.errors import Forbidden
from carecoord_shared.service import UowDep

from . import scoring
from .intake import (
    PHI_FIELDS,
    Demographics,
    Intake,
    NewInformation,
    current_decision,
    decision_history,
    intake_inputs,
    latest_coverage,
    patient_row,
)
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


def _answers_of(spec: scoring.InstrumentSpec) -> Any:
    item = Annotated[StrictInt, Field(ge=0, le=spec.max_item)]
    return Annotated[
        list[item],  # type: ignore[valid-type]
        Field(
            min_length=spec.items,
            max_length=spec.items,
            description=f"{spec.items} item answers in questionnaire order, each 0-{spec.max_item}",
        ),
    ]


class Phq9Submission(Strict):
    instrument: Literal[Instrument.phq9]
    answers: _answers_of(scoring.PHQ9)  # type: ignore[valid-type]


class Gad7Submission(Strict):
    instrument: Literal[Instrument.gad7]
    answers: _answers_of(scoring.GAD7)  # type: ignore[valid-type]


class Pcl5Submission(Strict):
    instrument: Literal[Instrument.pcl5]
    answers: _answers_of(scoring.PCL5)  # type: ignore[valid-type]


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


def _screening_model(rules: RuleSet) -> type[BaseModel]:
    """One required yes/no field per question of the current rule set: an unanswered question is a 422, not a 'no'."""
    answers = create_model(  # type: ignore[call-overload]
        "MedicalScreeningAnswers",
        __config__=ConfigDict(extra="forbid"),
        **{q.code: (StrictBool, Field(description=q.text)) for q in rules.questions},
    )
    return create_model(  # type: ignore[call-overload, no-any-return]
        "MedicalScreeningIn",
        __base__=Strict,
        answers=(answers, ...),
        notes=(FreeText | None, Field(default=None, description="Anything else; encrypted, stays in intake")),
    )


# Access as each kind of route needs it (see the table above).
PatientCare = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
ClinicianOrService = Annotated[Access, allow(Role.CLINICIAN, Role.SERVICE)]
ClinicianOnly = Annotated[Access, allow(Role.CLINICIAN)]
ServiceOnly = Annotated[Access, allow(Role.SERVICE)]


def _re_evaluation_model(screening_model: type[BaseModel]) -> type[BaseModel]:
    answers = screening_model.model_fields["answers"].annotation
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ReEvaluationIn",
        __base__=Strict,
        clinician_id=(ActorId, ...),
        reason=(
            FreeText,
            Field(description="Why (the new information); kept in intake only, encrypted, never in events or logs"),
        ),
        residence=(
            Residence | None,
            Field(default=None, description="A move: the new state of residence and time zone"),
        ),
        blood_pressure=(BloodPressureIn | None, Field(default=None, description="A repeat reading")),
        medical_screening_answers=(
            answers | None,  # type: ignore[operator]
            Field(default=None, description="Updated screening answers: every question answered yes or no"),
        ),
    )


def _history_entry(intake: Intake, row: Any) -> dict[str, Any]:
    return {
        **row._asdict(),
        "clinician_reason": intake.cipher.decrypt(row.override_reason_enc) if row.override_reason_enc else None,
    }


def build_router(intake: Intake) -> APIRouter:
    router = APIRouter(prefix="/v1")
    screening_model = _screening_model(intake.rules)
    re_evaluation_model = _re_evaluation_model(screening_model)

    @router.post(
        "/patients",
        status_code=status.HTTP_201_CREATED,
        response_model=Patient,
        tags=["patients"],
        responses={200: {"description": "Already registered under this external id; the first registration stands."}},
    )
    async def register(body: Registration, uow: UowDep, response: Response, access: ClinicianOrService) -> Any:
        if access.principal.role is Role.CLINICIAN and not access.principal.licensed_in(body.state_of_residence):
            raise Forbidden("a clinician registers patients only in states they are licensed in")
        who = Demographics(**body.model_dump(include=set(PHI_FIELDS)))
        async with uow.transaction() as tx:
            row, created = await intake.register(
                tx,
                external_id=body.external_id,
                state_of_residence=body.state_of_residence,
                time_zone=body.time_zone,
                who=who,
            )
        # After the write: the id exists only now. An external id already registered answers with
        # that patient, so the check also keeps a clinician from learning of one outside their states.
        await access.patient(row.patient_id, "register" if created else "read", "patient")
        if not created:
            response.status_code = status.HTTP_200_OK
        return row._asdict()

    @router.get("/patients/{patient_id}", response_model=Patient, tags=["patients"])
    async def get_patient(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "read", "patient")
        async with uow.sessions() as session:
            return (await patient_row(session, patient_id))._asdict()

    @router.post(
        "/patients/{patient_id}/assessments",
        status_code=status.HTTP_201_CREATED,
        response_model=AssessmentResult,
        tags=["screening"],
        summary="Submit PHQ-9, GAD-7 or PCL-5 answers; the latest of each instrument counts",
        responses={409: {"description": "The eligibility decision is already made."}},
    )
    async def submit_assessment(
        patient_id: uuid.UUID, body: AssessmentSubmission, uow: UowDep, access: PatientCare
    ) -> Any:
        await access.patient(patient_id, "submit", "assessment")
        async with uow.transaction() as tx:
            assessment_id, result = await intake.record_assessment(tx, patient_id, body.instrument, body.answers)
        return {"assessment_id": assessment_id, **result.__dict__}

    async def submit_medical_screening(patient_id: uuid.UUID, body: Any, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "submit", "medical-screening")
        async with uow.transaction() as tx:
            screening_id, _, _ = await intake.record_medical_screening(
                tx, patient_id, body.answers.model_dump(), body.notes
            )
        return {"id": screening_id}

    # The body's model is built from the rule set at run time, so it is attached here, not spelled in the signature.
    submit_medical_screening.__annotations__["body"] = screening_model
    router.post(
        "/patients/{patient_id}/medical-screening",
        status_code=status.HTTP_201_CREATED,
        response_model=Recorded,
        tags=["screening"],
        summary="Submit the medical-screening questionnaire (every question answered yes or no)",
        responses={409: {"description": "The eligibility decision is already made."}},
    )(submit_medical_screening)

    @router.post(
        "/patients/{patient_id}/blood-pressure",
        status_code=status.HTTP_201_CREATED,
        response_model=Recorded,
        tags=["screening"],
        responses={409: {"description": "The eligibility decision is already made."}},
    )
    async def submit_blood_pressure(
        patient_id: uuid.UUID, body: BloodPressureIn, uow: UowDep, access: PatientCare
    ) -> Any:
        await access.patient(patient_id, "submit", "blood-pressure")
        async with uow.transaction() as tx:
            reading_id = await intake.record_blood_pressure(
                tx, patient_id, systolic=body.systolic, diastolic=body.diastolic, measured_at=body.measured_at
            )
        return {"id": reading_id}

    @router.put(
        "/patients/{patient_id}/coverage",
        status_code=status.HTTP_201_CREATED,
        response_model=Recorded,
        tags=["coverage"],
        summary="Declare insurance (payer id, member id, plan) or self-pay; the latest declaration counts",
    )
    async def declare_coverage(patient_id: uuid.UUID, body: CoverageIn, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "declare", "coverage")
        async with uow.transaction() as tx:
            coverage_id = await intake.declare_coverage(
                tx, patient_id, kind=body.kind, payer_id=body.payer_id, member_id=body.member_id, plan=body.plan
            )
        return {"id": coverage_id}

    @router.get("/patients/{patient_id}/intake", response_model=IntakeStatus, tags=["eligibility"])
    async def intake_status(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "read", "intake")
        async with uow.sessions() as session:
            patient = await patient_row(session, patient_id)
            inputs = await intake_inputs(session, patient_id)
            decision = await current_decision(session, patient_id)
        return {
            "patient_id": patient_id,
            "state_of_residence": patient.state_of_residence,
            "time_zone": patient.time_zone,
            "assessments": {i: row._asdict() for i, row in inputs.scores.items()},
            "medical_screening_done": inputs.screening is not None,
            "blood_pressure_done": inputs.blood_pressure is not None,
            "coverage_kind": inputs.coverage.kind if inputs.coverage else None,
            "missing": inputs.missing,
            "decision": decision._asdict() if decision else None,
        }

    @router.post(
        "/patients/{patient_id}/eligibility/override",
        response_model=DecisionOut,
        tags=["eligibility"],
        summary="A clinician decides a needs-review intake (eligible or ineligible), saying why",
        responses={409: {"description": "The current decision is not needs_review."}},
    )
    async def override(patient_id: uuid.UUID, body: OverrideIn, uow: UowDep, access: ClinicianOrService) -> Any:
        await access.patient(patient_id, "decide", "eligibility")
        access.acting_clinician(body.clinician_id)
        async with uow.transaction() as tx:
            await intake.override(
                tx, patient_id, outcome=body.outcome, clinician_id=body.clinician_id, reason=body.reason
            )
        async with uow.sessions() as session:
            return (await current_decision(session, patient_id))._asdict()  # type: ignore[union-attr]

    async def re_evaluate(patient_id: uuid.UUID, body: Any, uow: UowDep, access: ClinicianOnly) -> Any:
        await access.patient(patient_id, "re-evaluate", "eligibility")
        access.acting_clinician(body.clinician_id)
        if body.residence is not None and not access.principal.licensed_in(body.residence.state_of_residence):
            raise Forbidden("a clinician moves a patient only to a state they are licensed in")
        bp = body.blood_pressure
        new = NewInformation(
            state_of_residence=body.residence.state_of_residence if body.residence else None,
            time_zone=body.residence.time_zone if body.residence else None,
            systolic=bp.systolic if bp else None,
            diastolic=bp.diastolic if bp else None,
            measured_at=bp.measured_at if bp else None,
            screening_answers=body.medical_screening_answers.model_dump() if body.medical_screening_answers else None,
        )
        async with uow.transaction() as tx:
            await intake.re_evaluate(tx, patient_id, clinician_id=body.clinician_id, reason=body.reason, new=new)
        async with uow.sessions() as session:
            return (await current_decision(session, patient_id))._asdict()  # type: ignore[union-attr]

    re_evaluate.__annotations__["body"] = re_evaluation_model
    router.post(
        "/patients/{patient_id}/eligibility/re-evaluation",
        response_model=DecisionOut,
        tags=["eligibility"],
        summary="A clinician re-evaluates eligibility after new information; the new decision supersedes the current one",
        responses={409: {"description": "There is no decision yet (the intake is not complete)."}},
    )(re_evaluate)

    @router.get(
        "/patients/{patient_id}/eligibility/decisions",
        response_model=list[DecisionHistoryEntry],
        tags=["eligibility"],
        summary="Every eligibility decision about the patient, first to latest, with who decided and why",
    )
    async def decisions(patient_id: uuid.UUID, uow: UowDep, access: ClinicianOrService) -> Any:
        await access.patient(patient_id, "read", "eligibility-decisions")
        async with uow.sessions() as session:
            await patient_row(session, patient_id)
            return [_history_entry(intake, row) for row in await decision_history(session, patient_id)]

    @router.get(
        "/internal/patients/{patient_id}/claim-demographics",
        response_model=ClaimDemographics,
        tags=["internal"],
        summary="Claim demographics for billing (a service's bearer token; PHI leaves intake only through here)",
        responses={404: {"description": "Unknown patient."}},
    )
    async def claim_demographics(patient_id: uuid.UUID, uow: UowDep, access: ServiceOnly) -> Any:
        await access.patient(patient_id, "read", "claim-demographics")
        async with uow.sessions() as session:
            patient = await patient_row(session, patient_id)
            coverage = await latest_coverage(session, patient_id)
        who = intake.demographics(patient)
        insured = coverage is not None and coverage.kind == CoverageKind.insurance.value
        return {
            "patient_id": patient_id,
            "first_name": who.first_name,
            "last_name": who.last_name,
            "date_of_birth": who.date_of_birth,
            "sex": who.sex,
            "address": who.address,
            "coverage": {
                "payer_id": coverage.payer_id,
                "member_id": intake.cipher.decrypt(coverage.member_id_enc),
                "plan": coverage.plan,
            }
            if insured
            else None,
        }

    return router
