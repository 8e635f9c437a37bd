"""Intake's FHIR R4 resources: the patient (Patient) and the screening totals scored at intake (Observation).

Pure mappings from intake's rows to FHIR JSON, and the :class:`FhirResource` list ``fhir_router``
serves under ``/fhir/R4/`` (reads through queries.py).

Patient (id: our pseudonymous patient UUID)
    ``identifier``: the same UUID under a local identifier system (``PATIENT_IDENTIFIER_SYSTEM``);
    ``name`` (official: family, given), ``telecom`` (phone, email), ``gender`` (intake's
    administrative sex F/M/U as male/female/unknown, http://hl7.org/fhir/R4/valueset-administrative-gender.html),
    ``birthDate``, and ``address`` with the state and country only.
    Searched with ``_id=<patient id>``.

Observation (id: the assessment row's id; one per submitted questionnaire, a resubmission too)
    ``category`` survey (http://terminology.hl7.org/CodeSystem/observation-category); ``code`` the LOINC
    total score of the instrument (``carecoord_shared.http.fhir.SCREENING_TOTALS``: PHQ-9 44261-6, GAD-7 70274-6, PCL-5 101698-9);
    ``valueInteger`` the total; ``effectiveDateTime`` when it was submitted and scored (the same moment
    in intake); ``status`` final (a score is never amended: a resubmission is another Observation, and
    intake's decision uses the latest of each instrument); ``subject`` Patient/<id>; ``interpretation``
    the instrument's severity band (scoring.py) in a local code system per instrument under
    ``CODE_SYSTEM_BASE``. Searched with ``patient=`` and ``code=`` (LOINC, ``http://loinc.org|<code>``
    or bare, comma-separated).

Deliberately left out: the street address, city and postal code (the state is what care and
licensing use; ``address.state`` is the state of residence, which a re-evaluation after a move
updates, while the registered postal address is not); the patient app's external id; the item
answers (an EHR wanting them needs QuestionnaireResponse, not served); PHQ-9 item 9 and the PCL-5
provisional diagnosis (flags, not totals); blood pressure, medical screening, coverage and the
eligibility decisions (other resources, not served here).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from carecoord_contracts.common import Instrument
from carecoord_shared.auth import Principal
from carecoord_shared.errors import NotFound
from carecoord_shared.http.fhir import (
    CODE_PARAM,
    CODE_SYSTEM_BASE,
    MAX_COUNT,
    MAX_OFFSET,
    OBSERVATION_CATEGORY,
    SCREENING_TOTALS,
    FhirResource,
    by_code,
    coding,
    concept,
    instant,
    reference,
    uuid_id,
)
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import queries
from .phi import Demographics, PhiCipher

# Our own identifier of a patient: the pseudonymous id every service knows them by.
PATIENT_IDENTIFIER_SYSTEM = "https://carecoord.example/fhir/sid/patient-id"


# http://hl7.org/fhir/R4/valueset-administrative-gender.html; intake's sex is administrative (schemas.Registration).
GENDER = {"F": "female", "M": "male", "U": "unknown"}


def severity_system(instrument: Instrument) -> str:
    """The local code system of an instrument's severity bands (scoring.py: the instrument's published bands)."""
    return f"{CODE_SYSTEM_BASE}/{instrument.value}-severity"


def patient(row: Mapping[str, Any], who: Demographics) -> dict[str, Any]:
    """A patients row and its decrypted demographics as a FHIR Patient."""
    patient_id = str(row["patient_id"])
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"use": "usual", "system": PATIENT_IDENTIFIER_SYSTEM, "value": patient_id}],
        "name": [{"use": "official", "family": who.last_name, "given": [who.first_name]}],
        "telecom": [{"system": "phone", "value": who.phone}, {"system": "email", "value": who.email}],
        "gender": GENDER[who.sex],
        "birthDate": who.date_of_birth.isoformat(),
        "address": [{"use": "home", "state": row["state_of_residence"], "country": "US"}],
    }


def observation(row: Mapping[str, Any]) -> dict[str, Any]:
    """An assessments row as a FHIR Observation of the instrument's total score."""
    instrument = Instrument(row["instrument"])
    system, code, display = SCREENING_TOTALS[instrument.value]
    band = row["severity_band"]
    return {
        "resourceType": "Observation",
        "id": str(row["assessment_id"]),
        "status": "final",
        "category": [concept(OBSERVATION_CATEGORY, "survey", "Survey")],
        "code": {"coding": [coding(system, code, display)], "text": f"{instrument.value} total score"},
        "subject": reference("Patient", row["patient_id"]),
        "effectiveDateTime": instant(row["submitted_at"]),
        "valueInteger": row["total"],
        "interpretation": [concept(severity_system(instrument), band, band.replace("_", " "))],
    }


def resources(cipher: PhiCipher) -> list[FhirResource]:
    """What intake serves under /fhir/R4/, with the audit rows of the existing reads of the same data."""

    async def patient_owner(_uow: UnitOfWork, resource_id: str) -> uuid.UUID:
        return uuid_id(resource_id, "patient")

    async def read_patient(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
        row, who = await queries.demographics(uow, cipher, uuid_id(resource_id, "patient"))
        return patient(row._asdict(), who)

    async def search_patient(uow: UnitOfWork, patient_id: uuid.UUID, principal: Principal) -> list[dict[str, Any]]:
        try:
            return [await read_patient(uow, str(patient_id), principal)]
        except NotFound:
            return []

    async def observation_owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
        return await queries.assessment_owner(uow, uuid_id(resource_id, "observation"))

    async def read_observation(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
        return observation(await queries.assessment(uow, uuid_id(resource_id, "observation")))

    async def search_observations(
        uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal
    ) -> list[dict[str, Any]]:
        return [observation(r) for r in await queries.assessment_history(uow, patient_id, MAX_OFFSET + MAX_COUNT)]

    return [
        # Names, birth date and contact details: audited under a resource of their own, apart from
        # GET /v1/patients/{id} ("patient"), which shows none of them.
        FhirResource(
            type="Patient",
            audit_resource="patient-demographics",
            owner=patient_owner,
            read=read_patient,
            search=search_patient,
            search_params=(),
        ),
        # The scores GET /v1/patients/{id}/intake shows.
        FhirResource(
            type="Observation",
            audit_resource="intake",
            owner=observation_owner,
            read=read_observation,
            search=search_observations,
            search_params=(("patient", "reference", "The patient (id or Patient/<id>); required"), CODE_PARAM),
            narrow=by_code,
        ),
    ]
