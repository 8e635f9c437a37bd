"""HTTP routes for the patient app and clinicians' UIs, and the service-only routes billing reads demographics
and engagement reads contact details from.

Each route authorises, calls one use case (intake.py) or query (queries.py) and presents
the answer; the request and response models, and their bounds, are schemas.py.

Who may do what (carecoord_shared.auth; "own" = the token's patient, "licensed" =
a clinician licensed in the patient's state AND related to them: on their care team or
assigned a review of theirs, learnt from scheduling and safety, ADR 0015; every patient
check is audited, an allowed one with its basis):

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
| GET /consent-documents, /consent-documents/{doc}/{ver}  | yes     | yes                | yes      | yes     |
| GET /patients/{id}/consents                             | own     | licensed           | -        | any     |
| POST /patients/{id}/consents (sign) (6)                 | own     | -                  | -        | -       |
| POST /patients/{id}/consents/{doc}/withdrawal (6)       | own     | licensed           | -        | -       |
| GET /patients/{id}/contact                              | -       | -                  | -        | any (7) |
| GET /fhir/R4/Patient?_id=, /fhir/R4/Patient/{id} (5)    | own     | licensed           | -        | any     |
| GET /fhir/R4/Observation?patient=, /Observation/{id}    | own     | licensed           | -        | any     |
| GET /fhir/R4/metadata                                   | yes     | yes                | yes      | yes     |

(1) Registration creates the patient id, so no patient token can exist for it
yet: the patient app's backend registers its users as a service (it has
authenticated them itself), and a clinician registers a patient in
staff-assisted intake, only in a state they are licensed in (the same rule as
reading the patient afterwards). Questionnaires, the blood-pressure reading and
the coverage declaration are the patient's own answers: the patient submits
their own, a licensed clinician may enter them with the patient. (2) Deciding a
needs-review intake is a clinical decision: a licensed clinician in their own
name (clinician_id), or a service recording one. (3) Names, date of birth,
address and member id leave intake here, to billing calling as a service, and
in the FHIR Patient (5). Operators reach none of it. (4) Re-evaluating after new information is a
clinician's own act: only a clinician, in their own name, licensed in the
patient's state and, when the patient moved, in the new state too.
(5) The FHIR Patient carries names, birth date, sex and contact details (fhir.py):
the patient their own, a clinician licensed in the patient's state, a service.
This reaches further than the v1 routes, where only billing sees demographics;
its audit rows say ``patient-demographics``, apart from GET /patients/{id}. The FHIR
routes are carecoord_shared.http.fhir's (fhir_router; the metadata names no patient).
(6) Consent (ADR 0016): only the patient signs, their own act (the app's back end calls with the
patient's token); a withdrawal is honoured however it is made, so a licensed clinician the patient
told records it in their own name. No service signs or withdraws for anyone.
(7) Email, phone and time zone leave intake here, to engagement calling as a service when it sends a
notification (ADR 0017: it keeps none of it); audited as ``patient-contact``. No human role reads it: a
clinician who must call the patient does so from the chart's FHIR Patient.

A change's check and audit row run in the change's own transaction
(``Access.transaction``): one commit; a refusal commits its denied row alone, and
a change that then fails (409) still leaves its allowed row. The own-name and
new-state checks of (2) and (4) come after the patient check, inside it (a
refusal there keeps the allowed row). Registration is checked after its commit,
in a transaction of its own: the patient id exists only then.
"""

# No `from __future__ import annotations` here: the medical-screening and re-evaluation bodies are
# models made from the rule set when the router is built, and FastAPI reads a parameter's model
# from its annotation, which then has to be the object itself rather than a name in this module.

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from carecoord_contracts.common import ConsentDocument
from carecoord_shared.auth import Access, Role
from carecoord_shared.errors import Forbidden, NotFound
from carecoord_shared.http import IDEMPOTENT, PageDep, UowDep, allow
from carecoord_shared.pagination import Page

from . import queries
from .intake import Intake, NewInformation
from .phi import PHI_FIELDS, Demographics
from .schemas import (
    AssessmentResult,
    AssessmentSubmission,
    BloodPressureIn,
    ClaimDemographics,
    ConsentDocumentText,
    ConsentIn,
    ConsentState,
    CoverageIn,
    DecisionHistoryEntry,
    DecisionOut,
    DocumentVersion,
    IntakeStatus,
    MedicalScreeningSubmission,
    OverrideIn,
    Patient,
    PatientConsents,
    PatientContact,
    Recorded,
    ReEvaluationSubmission,
    Registration,
    screening_schemas,
)

# The basis of a registering clinician's access to the patient they have just registered.
REGISTRAR = "registrar"

# Access as each kind of route needs it (see the table above).
PatientCare = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
ClinicianOrService = Annotated[Access, allow(Role.CLINICIAN, Role.SERVICE)]
ClinicianOnly = Annotated[Access, allow(Role.CLINICIAN)]
ServiceOnly = Annotated[Access, allow(Role.SERVICE)]
# The consent texts are no one's data: whoever is signed in reads them.
Anyone = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)]
PatientOnly = Annotated[Access, allow(Role.PATIENT)]
PatientOrClinician = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN)]


def _text(text: object) -> dict[str, object]:
    return dict(vars(text))


def build_router(intake: Intake) -> APIRouter:
    router = APIRouter(prefix="/v1")
    # The bodies carrying screening answers have one field per question of the rule set in force.
    questionnaire = screening_schemas(intake.rules)
    MedicalScreeningIn = questionnaire.medical_screening
    ReEvaluationIn = questionnaire.re_evaluation

    @router.post(
        "/patients",
        status_code=status.HTTP_201_CREATED,
        response_model=Patient,
        tags=["patients"],
        responses={200: {"description": "Already registered under this external id; the first registration stands."}},
        dependencies=[IDEMPOTENT],
    )
    async def register(
        body: Registration, uow: UowDep, response: Response, access: ClinicianOrService
    ) -> dict[str, object]:
        if access.principal.role is Role.CLINICIAN and not access.principal.licensed_in(body.state_of_residence):
            raise Forbidden("a clinician registers patients only in states they are licensed in")
        async with uow.transaction() as tx:
            row, created = await intake.register(
                tx,
                external_id=body.external_id,
                state_of_residence=body.state_of_residence,
                time_zone=body.time_zone,
                who=Demographics(**body.model_dump(include=set(PHI_FIELDS))),
            )
        # After the write: the id exists only now. An external id already registered answers with
        # that patient, so the check also keeps a clinician from learning of one outside their states.
        # A clinician registering a new patient is the one relation they have yet (the care team comes
        # from scheduling's bookings); an existing patient needs a learnt one, as every read does.
        if created:
            await access.patient(row.patient_id, "register", "patient", relation=REGISTRAR)
        else:
            await access.patient(row.patient_id, "read", "patient")
        if not created:
            response.status_code = status.HTTP_200_OK
        return row._asdict()

    @router.get("/patients/{patient_id}", response_model=Patient, tags=["patients"])
    async def get_patient(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> dict[str, object]:
        await access.patient(patient_id, "read", "patient")
        return await queries.patient(uow, patient_id)

    @router.post(
        "/patients/{patient_id}/assessments",
        status_code=status.HTTP_201_CREATED,
        response_model=AssessmentResult,
        tags=["screening"],
        summary="Submit PHQ-9, GAD-7 or PCL-5 answers; the latest of each instrument counts",
        responses={409: {"description": "The eligibility decision is already made."}},
        dependencies=[IDEMPOTENT],
    )
    async def submit_assessment(
        patient_id: uuid.UUID, body: AssessmentSubmission, uow: UowDep, access: PatientCare
    ) -> dict[str, object]:
        async with access.transaction(uow, patient_id, "submit", "assessment") as tx:
            assessment_id, result = await intake.record_assessment(tx, patient_id, body.instrument, body.answers)
        return {"assessment_id": assessment_id, **result.__dict__}

    @router.post(
        "/patients/{patient_id}/medical-screening",
        status_code=status.HTTP_201_CREATED,
        response_model=Recorded,
        tags=["screening"],
        summary="Submit the medical-screening questionnaire (every question answered yes or no)",
        responses={409: {"description": "The eligibility decision is already made."}},
        dependencies=[IDEMPOTENT],
    )
    async def submit_medical_screening(
        patient_id: uuid.UUID,
        body: MedicalScreeningIn,  # type: ignore[valid-type]  # a MedicalScreeningSubmission made from the rules
        uow: UowDep,
        access: PatientCare,
    ) -> dict[str, object]:
        screening: MedicalScreeningSubmission = body
        async with access.transaction(uow, patient_id, "submit", "medical-screening") as tx:
            screening_id, _, _ = await intake.record_medical_screening(
                tx, patient_id, screening.answers.model_dump(), screening.notes
            )
        return {"id": screening_id}

    @router.post(
        "/patients/{patient_id}/blood-pressure",
        status_code=status.HTTP_201_CREATED,
        response_model=Recorded,
        tags=["screening"],
        responses={409: {"description": "The eligibility decision is already made."}},
        dependencies=[IDEMPOTENT],
    )
    async def submit_blood_pressure(
        patient_id: uuid.UUID, body: BloodPressureIn, uow: UowDep, access: PatientCare
    ) -> dict[str, object]:
        async with access.transaction(uow, patient_id, "submit", "blood-pressure") as tx:
            reading_id = await intake.record_blood_pressure(tx, patient_id, **body.model_dump())
        return {"id": reading_id}

    @router.put(
        "/patients/{patient_id}/coverage",
        status_code=status.HTTP_201_CREATED,
        response_model=Recorded,
        tags=["coverage"],
        summary="Declare insurance (payer id, member id, plan) or self-pay; the latest declaration counts",
    )
    async def declare_coverage(
        patient_id: uuid.UUID, body: CoverageIn, uow: UowDep, access: PatientCare
    ) -> dict[str, object]:
        async with access.transaction(uow, patient_id, "declare", "coverage") as tx:
            coverage_id = await intake.declare_coverage(tx, patient_id, **body.model_dump())
        return {"id": coverage_id}

    @router.get("/patients/{patient_id}/intake", response_model=IntakeStatus, tags=["eligibility"])
    async def intake_status(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> dict[str, object]:
        await access.patient(patient_id, "read", "intake")
        return await queries.intake_status(uow, patient_id)

    @router.post(
        "/patients/{patient_id}/eligibility/override",
        response_model=DecisionOut,
        tags=["eligibility"],
        summary="A clinician decides a needs-review intake (eligible or ineligible), saying why",
        responses={409: {"description": "The current decision is not needs_review."}},
        dependencies=[IDEMPOTENT],
    )
    async def override(
        patient_id: uuid.UUID, body: OverrideIn, uow: UowDep, access: ClinicianOrService
    ) -> dict[str, object]:
        # The patient check (and its audit row) comes first, then the own-name check: a refusal of the
        # latter rolls the transaction back, so its allowed row is written on its own (Access.transaction).
        async with access.transaction(uow, patient_id, "decide", "eligibility") as tx:
            access.acting_clinician(body.clinician_id)
            await intake.override(tx, patient_id, **body.model_dump())
        return await queries.decision_in_force(uow, patient_id)

    @router.post(
        "/patients/{patient_id}/eligibility/re-evaluation",
        response_model=DecisionOut,
        tags=["eligibility"],
        summary="A clinician re-evaluates eligibility after new information; the new decision supersedes the current one",
        responses={409: {"description": "There is no decision yet (the intake is not complete)."}},
        dependencies=[IDEMPOTENT],
    )
    async def re_evaluate(
        patient_id: uuid.UUID,
        body: ReEvaluationIn,  # type: ignore[valid-type]  # a ReEvaluationSubmission made from the rules
        uow: UowDep,
        access: ClinicianOnly,
    ) -> dict[str, object]:
        asked: ReEvaluationSubmission = body
        # As override: the patient check and its audit row first, then the caller's own checks.
        async with access.transaction(uow, patient_id, "re-evaluate", "eligibility") as tx:
            access.acting_clinician(asked.clinician_id)
            if asked.residence is not None and not access.principal.licensed_in(asked.residence.state_of_residence):
                raise Forbidden("a clinician moves a patient only to a state they are licensed in")
            new = NewInformation(
                **(asked.residence.model_dump() if asked.residence else {}),
                **(asked.blood_pressure.model_dump() if asked.blood_pressure else {}),
                screening_answers=asked.medical_screening_answers.model_dump()
                if asked.medical_screening_answers
                else None,
            )
            await intake.re_evaluate(tx, patient_id, clinician_id=asked.clinician_id, reason=asked.reason, new=new)
        return await queries.decision_in_force(uow, patient_id)

    @router.get(
        "/patients/{patient_id}/eligibility/decisions",
        response_model=Page[DecisionHistoryEntry],
        tags=["eligibility"],
        summary="The eligibility decisions about the patient, first to latest, a page at a time, with who decided and why",
    )
    async def decisions(
        patient_id: uuid.UUID, uow: UowDep, access: ClinicianOrService, page: PageDep
    ) -> dict[str, object]:
        await access.patient(patient_id, "read", "eligibility-decisions")
        return await queries.decisions(uow, intake.cipher, patient_id, page)

    # --- consent (ADR 0016) ---

    @router.get("/consent-documents", response_model=list[ConsentDocumentText], tags=["consent"])
    async def consent_documents(_access: Anyone) -> list[dict[str, object]]:
        """The version in force of each consent document, with its text."""
        return [_text(t) for t in intake.consent_texts.all_current()]

    @router.get(
        "/consent-documents/{document}/{version}",
        response_model=ConsentDocumentText,
        tags=["consent"],
        responses={404: {"description": "No such version of the document."}},
    )
    async def consent_document(
        document: ConsentDocument, version: Annotated[DocumentVersion, Path()], _access: Anyone
    ) -> dict[str, object]:
        """One version of a document, current or not: the exact text a signature under it agreed to."""
        text = intake.consent_texts.version(document, version)
        if text is None:
            raise NotFound(f"no version {version} of the {document} consent document")
        return _text(text)

    @router.get("/patients/{patient_id}/consents", response_model=PatientConsents, tags=["consent"])
    async def patient_consents(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> dict[str, object]:
        await access.patient(patient_id, "read", "consents")
        return await queries.consents(uow, patient_id, _current_versions())

    @router.post(
        "/patients/{patient_id}/consents",
        status_code=status.HTTP_201_CREATED,
        response_model=ConsentState,
        tags=["consent"],
        summary="The patient signs the current version of a consent document",
        responses={
            200: {"description": "This version already stands signed; nothing new is recorded."},
            409: {"description": "Not the current version (`version_not_current`, with `current_version`)."},
        },
        dependencies=[IDEMPOTENT],
    )
    async def sign_consent(
        patient_id: uuid.UUID, body: ConsentIn, uow: UowDep, response: Response, access: PatientOnly
    ) -> dict[str, object]:
        # Only the patient signs: a signature is their own act, which no clinician or service can make for
        # them (the app's back end authenticates the patient and calls with the patient's token).
        async with access.transaction(uow, patient_id, "sign", "consent", body.document.value) as tx:
            signed = await intake.sign_consent(
                tx,
                patient_id,
                document=body.document,
                document_version=body.document_version,
                actor_role=str(access.principal.role),
                actor=access.principal.subject,
            )
        if not signed:
            response.status_code = status.HTTP_200_OK
        return await _consent_state(uow, patient_id, body.document)

    @router.post(
        "/patients/{patient_id}/consents/{document}/withdrawal",
        response_model=ConsentState,
        tags=["consent"],
        summary="Withdraw the patient's consent to a document (the patient, or a clinician they told)",
        responses={409: {"description": "No signed consent to this document stands."}},
        dependencies=[IDEMPOTENT],
    )
    async def withdraw_consent(
        patient_id: uuid.UUID, document: ConsentDocument, uow: UowDep, access: PatientOrClinician
    ) -> dict[str, object]:
        # A withdrawal is honoured however the patient makes it: in the app, or by telling a clinician, who
        # records it in their own name (the row's actor). A service cannot withdraw for anyone.
        async with access.transaction(uow, patient_id, "withdraw", "consent", document.value) as tx:
            await intake.withdraw_consent(
                tx,
                patient_id,
                document=document,
                actor_role=str(access.principal.role),
                actor=access.principal.subject,
            )
        return await _consent_state(uow, patient_id, document)

    def _current_versions() -> dict[str, str]:
        return {t.document.value: t.version for t in intake.consent_texts.all_current()}

    async def _consent_state(uow: UowDep, patient_id: uuid.UUID, document: ConsentDocument) -> dict[str, object]:
        current = {document.value: intake.consent_texts.current(document).version}
        answer = await queries.consents(uow, patient_id, current)
        states: list[dict[str, object]] = answer["consents"]  # type: ignore[assignment]
        return states[0]

    @router.get(
        "/internal/patients/{patient_id}/claim-demographics",
        response_model=ClaimDemographics,
        tags=["internal"],
        summary="Claim demographics for billing (a service's bearer token; PHI leaves intake only through here)",
        responses={404: {"description": "Unknown patient."}},
    )
    async def claim_demographics(patient_id: uuid.UUID, uow: UowDep, access: ServiceOnly) -> dict[str, object]:
        await access.patient(patient_id, "read", "claim-demographics")
        return await queries.claim_demographics(uow, intake.cipher, patient_id)

    @router.get(
        "/patients/{patient_id}/contact",
        response_model=PatientContact,
        tags=["internal"],
        summary="Where to reach the patient, for engagement's notifications (a service's bearer token; PHI)",
        responses={404: {"description": "Unknown patient."}},
    )
    async def contact(patient_id: uuid.UUID, uow: UowDep, access: ServiceOnly) -> dict[str, object]:
        await access.patient(patient_id, "read", "patient-contact")
        return await queries.contact(uow, intake.cipher, patient_id)

    return router
