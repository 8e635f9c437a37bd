"""Intake's read side: what the routes present, and the reads the use cases load inside their transaction.

The session-level reads (``patient_row``, ``intake_inputs``, ``current_decision``, ...) take a
session, so a use case runs them in its own transaction; each presenting query (taking the unit
of work) opens one session for its request. PHI is decrypted here only for the answers that
carry it: the clinician's reasons in the decision history, billing's claim demographics and the
FHIR Patient resource (fhir.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.common import CoverageKind, Instrument
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, page_of, paginate

from .domain import IntakeInputs
from .models import (
    assessments,
    blood_pressure_readings,
    coverages,
    eligibility_decisions,
    medical_screenings,
    patient_consents,
    patients,
)
from .phi import Demographics, PhiCipher, decrypt_demographics

# -- reads inside a session (also the use cases' loads) ----------------------------------


async def _latest(session: AsyncSession, table: Table, patient_id: uuid.UUID, at: str, **where: Any) -> Row[Any] | None:
    query = select(table).where(table.c.patient_id == patient_id, *(table.c[k] == v for k, v in where.items()))
    return (await session.execute(query.order_by(table.c[at].desc()).limit(1))).first()


async def intake_inputs(session: AsyncSession, patient_id: uuid.UUID) -> IntakeInputs:
    """The latest submission of each kind (a resubmission replaces the earlier one)."""
    scores = {}
    for instrument in Instrument:
        row = await _latest(session, assessments, patient_id, "submitted_at", instrument=instrument.value)
        if row is not None:
            scores[instrument] = row
    return IntakeInputs(
        scores=scores,
        screening=await _latest(session, medical_screenings, patient_id, "submitted_at"),
        blood_pressure=await _latest(session, blood_pressure_readings, patient_id, "recorded_at"),
        coverage=await latest_coverage(session, patient_id),
    )


async def latest_coverage(session: AsyncSession, patient_id: uuid.UUID) -> Row[Any] | None:
    return await _latest(session, coverages, patient_id, "declared_at")


async def current_decision(session: AsyncSession, patient_id: uuid.UUID) -> Row[Any] | None:
    """The decision in force: the highest sequence (a re-evaluation or an override supersedes the one before)."""
    return await _latest(session, eligibility_decisions, patient_id, "sequence")


async def decision_history(session: AsyncSession, patient_id: uuid.UUID) -> list[Row[Any]]:
    """Every eligibility decision about the patient, first to latest."""
    query = select(eligibility_decisions).where(eligibility_decisions.c.patient_id == patient_id)
    return list((await session.execute(query.order_by(eligibility_decisions.c.sequence))).all())


async def consent_states(session: AsyncSession, patient_id: uuid.UUID) -> dict[str, Row[Any]]:
    """The latest signature or withdrawal of each document the patient has acted on, by document."""
    c = patient_consents.c
    rows = await session.execute(
        select(patient_consents)
        .where(c.patient_id == patient_id)
        .distinct(c.document)
        .order_by(c.document, c.at.desc(), c.consent_id)
    )
    return {row.document: row for row in rows}


async def patient_row(session: AsyncSession, patient_id: uuid.UUID) -> Row[Any]:
    row = (await session.execute(select(patients).where(patients.c.patient_id == patient_id))).first()
    if row is None:
        raise NotFound(f"no patient {patient_id}")
    return row


# -- what the routes present (one session per request) ----------------------------------


async def patient(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, object]:
    async with uow.sessions() as session:
        return (await patient_row(session, patient_id))._asdict()


async def intake_status(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, object]:
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


async def consents(uow: UnitOfWork, patient_id: uuid.UUID, current: Mapping[str, str]) -> dict[str, object]:
    """The patient's standing consent to each document (``current``: document -> the version signed now)."""
    async with uow.sessions() as session:
        await patient_row(session, patient_id)
        states = await consent_states(session, patient_id)
    return {
        "patient_id": patient_id,
        "consents": [consent_state(document, version, states.get(document)) for document, version in current.items()],
    }


def consent_state(document: str, current_version: str, latest: Row[Any] | None) -> dict[str, object]:
    """One document's standing: signed (which version, when, whether it is the current text), withdrawn, or never."""
    signed = latest is not None and latest.action == "signed"
    return {
        "document": document,
        "current_version": current_version,
        "status": "never_signed" if latest is None else latest.action,
        "document_version": latest.document_version if latest is not None else None,
        "signed_at": latest.at if signed and latest is not None else None,
        "withdrawn_at": latest.at if latest is not None and not signed else None,
        "signed_version_is_current": signed and latest is not None and latest.document_version == current_version,
    }


async def decision_in_force(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, object]:
    """The current decision, after a clinician's decision made one (so there is one)."""
    async with uow.sessions() as session:
        decision = await current_decision(session, patient_id)
    assert decision is not None, "read after a decision was recorded"
    return decision._asdict()


# The decision history, first to latest: a page at a time (a patient's sequence numbers are unique).
DECISIONS_IN_ORDER = Ordering(
    "eligibility-decisions.sequence",
    (SortKey(eligibility_decisions.c.sequence), SortKey(eligibility_decisions.c.decision_id)),
)


async def decisions(uow: UnitOfWork, cipher: PhiCipher, patient_id: uuid.UUID, page: PageRequest) -> dict[str, object]:
    """A page of the decision history with each clinician's reason decrypted (404 for an unknown patient)."""
    query = select(eligibility_decisions).where(eligibility_decisions.c.patient_id == patient_id)
    async with uow.sessions() as session:
        await patient_row(session, patient_id)
        rows = [
            {
                **row._asdict(),
                "clinician_reason": cipher.decrypt(row.override_reason_enc) if row.override_reason_enc else None,
            }
            for row in await session.execute(paginate(query, DECISIONS_IN_ORDER, page))
        ]
    return page_of(rows, DECISIONS_IN_ORDER, page)


async def claim_demographics(uow: UnitOfWork, cipher: PhiCipher, patient_id: uuid.UUID) -> dict[str, object]:
    """Names, date of birth, address and member id: PHI leaves intake only through here, to billing."""
    async with uow.sessions() as session:
        patient = await patient_row(session, patient_id)
        coverage = await latest_coverage(session, patient_id)
    who = decrypt_demographics(cipher, patient)
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
            "member_id": cipher.decrypt(coverage.member_id_enc),
            "plan": coverage.plan,
        }
        if coverage is not None and insured
        else None,
    }


async def contact(uow: UnitOfWork, cipher: PhiCipher, patient_id: uuid.UUID) -> dict[str, object]:
    """Email, phone and time zone, for engagement to send one message (404 for an unknown patient)."""
    async with uow.sessions() as session:
        patient = await patient_row(session, patient_id)
    return {
        "patient_id": patient_id,
        "email": cipher.decrypt(patient.email_enc),
        "phone": cipher.decrypt(patient.phone_enc),
        "time_zone": patient.time_zone,
        "state_of_residence": patient.state_of_residence,
    }


async def demographics(uow: UnitOfWork, cipher: PhiCipher, patient_id: uuid.UUID) -> tuple[Row[Any], Demographics]:
    """The patient row and its decrypted demographics, for the FHIR Patient resource (404 for an unknown patient)."""
    async with uow.sessions() as session:
        row = await patient_row(session, patient_id)
    return row, decrypt_demographics(cipher, row)


async def assessment_owner(uow: UnitOfWork, assessment_id: uuid.UUID) -> uuid.UUID:
    """Whose assessment this is (404 when there is none), before anything else about it is read."""
    async with uow.sessions() as session:
        owner: uuid.UUID | None = await session.scalar(
            select(assessments.c.patient_id).where(assessments.c.assessment_id == assessment_id)
        )
    if owner is None:
        raise NotFound(f"no assessment {assessment_id}")
    return owner


async def assessment(uow: UnitOfWork, assessment_id: uuid.UUID) -> dict[str, Any]:
    async with uow.sessions() as session:
        row = (await session.execute(select(assessments).where(assessments.c.assessment_id == assessment_id))).first()
    if row is None:
        raise NotFound(f"no assessment {assessment_id}")
    return row._asdict()


async def assessment_history(uow: UnitOfWork, patient_id: uuid.UUID, limit: int) -> list[dict[str, Any]]:
    """Every questionnaire the patient submitted (a resubmission too), first to latest, at most ``limit``."""
    query = (
        select(assessments)
        .where(assessments.c.patient_id == patient_id)
        .order_by(assessments.c.submitted_at, assessments.c.assessment_id)
        .limit(limit)
    )
    async with uow.sessions() as session:
        return [row._asdict() for row in (await session.execute(query)).all()]
