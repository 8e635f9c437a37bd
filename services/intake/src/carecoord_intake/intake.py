"""Intake's use cases: each records a submission and the events it causes in the caller's transaction.

Each is shaped load, decide, save, emit: it loads (and locks) the patient and what
the decision looks at, the pure ``domain``, ``scoring`` and ``rules`` decide, and it
writes the rows and the events of that decision in the one transaction.

Every change first locks the patient's row, so submissions about one patient
are serialised: the submission that completes the intake is the only one that
sees it complete, and exactly one automatic decision is made. The decision is
made, with no further call, as soon as the assessments, the medical
screening, a blood-pressure reading and the coverage are all in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_contracts.common import ConsentDocument, CoverageKind, EligibilityOutcome, Instrument
from carecoord_contracts.intake import (
    AssessmentScored,
    ConsentSigned,
    ConsentWithdrawn,
    CoverageDeclared,
    EligibilityDetermined,
    MedicalScreeningCompleted,
    PatientRegistered,
)
from carecoord_shared.errors import NotCurrentVersion, NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from . import consents, domain, scoring
from .consents import ConsentLibrary
from .domain import EligibilityDecision
from .models import (
    assessments,
    blood_pressure_readings,
    coverages,
    eligibility_decisions,
    medical_screenings,
    patient_consents,
    patients,
)
from .phi import Demographics, PhiCipher, encrypt_demographics
from .queries import consent_states, current_decision, intake_inputs
from .rules import Facts, RuleSet

log = structlog.get_logger("carecoord.intake")


@dataclass(frozen=True)
class NewInformation:
    """What a clinician's re-evaluation brings; each part optional (none: the same facts under the rules in force)."""

    state_of_residence: str | None = None
    time_zone: str | None = None
    systolic: int | None = None
    diastolic: int | None = None
    measured_at: datetime | None = None
    screening_answers: Mapping[str, bool] | None = None


@dataclass(frozen=True)
class Intake:
    rules: RuleSet
    cipher: PhiCipher
    served_states: frozenset[str]
    consent_texts: ConsentLibrary = field(default_factory=consents.load)

    # -- registration -------------------------------------------------------------------

    async def register(
        self, tx: Transaction, *, external_id: str, state_of_residence: str, time_zone: str, who: Demographics
    ) -> tuple[Row[Any], bool]:
        """The patient row and whether this call created it (idempotent on the external id)."""
        patient_id = uuid.uuid4()
        residence = {"state_of_residence": state_of_residence, "time_zone": time_zone}
        created = (
            await tx.session.execute(
                pg_insert(patients)
                .values(
                    patient_id=patient_id,
                    external_id=external_id,
                    **residence,
                    **encrypt_demographics(self.cipher, who),
                )
                .on_conflict_do_nothing(index_elements=[patients.c.external_id])
                .returning(patients.c.patient_id)
            )
        ).first()
        if created:
            tx.emit(PatientRegistered(**residence), patient_id=patient_id)
        row = (await tx.session.execute(select(patients).where(patients.c.external_id == external_id))).one()
        return row, created is not None

    # -- submissions --------------------------------------------------------------------

    async def record_assessment(
        self, tx: Transaction, patient_id: uuid.UUID, instrument: Instrument, answers: list[int]
    ) -> tuple[uuid.UUID, scoring.Score]:
        patient = await self._lock_undecided(tx, patient_id)
        result = scoring.score(instrument, answers)
        assessment_id = uuid.uuid4()
        # What the row and the event both say of the score.
        scored: dict[str, Any] = {
            "total": result.total,
            "severity_band": result.severity_band,
            "item9_positive": result.item9_positive,
            "provisional_ptsd": result.provisional_ptsd,
        }
        await tx.session.execute(
            insert(assessments).values(
                assessment_id=assessment_id,
                patient_id=patient_id,
                instrument=instrument.value,
                answers=list(answers),
                submitted_at=datetime.now(UTC),
                **scored,
            )
        )
        tx.emit(
            AssessmentScored(
                assessment_id=assessment_id, instrument=instrument, loinc_code=result.loinc_code, **scored
            ),
            patient_id=patient_id,
        )
        await self._decide_if_complete(tx, patient)
        return assessment_id, result

    async def record_medical_screening(
        self, tx: Transaction, patient_id: uuid.UUID, answers: Mapping[str, bool], notes: str | None
    ) -> tuple[uuid.UUID, tuple[str, ...], tuple[str, ...]]:
        patient = await self._lock_undecided(tx, patient_id)
        screening_id, exclusions, review = await self._save_screening(tx, patient_id, answers, notes, datetime.now(UTC))
        await self._decide_if_complete(tx, patient)
        return screening_id, exclusions, review

    async def record_blood_pressure(
        self, tx: Transaction, patient_id: uuid.UUID, *, systolic: int, diastolic: int, measured_at: datetime
    ) -> uuid.UUID:
        patient = await self._lock_undecided(tx, patient_id)
        reading_id = await self._save_reading(tx, patient_id, systolic, diastolic, measured_at, datetime.now(UTC))
        await self._decide_if_complete(tx, patient)
        return reading_id

    async def declare_coverage(
        self,
        tx: Transaction,
        patient_id: uuid.UUID,
        *,
        kind: CoverageKind,
        payer_id: str | None,
        member_id: str | None,
        plan: str | None,
    ) -> uuid.UUID:
        """Coverage may change at any time, also after the decision: the latest declaration counts."""
        patient = await self._lock(tx, patient_id)
        coverage_id = uuid.uuid4()
        await tx.session.execute(
            insert(coverages).values(
                coverage_id=coverage_id,
                patient_id=patient_id,
                kind=kind.value,
                payer_id=payer_id,
                member_id_enc=self.cipher.encrypt_optional(member_id),
                plan=plan,
                declared_at=datetime.now(UTC),
            )
        )
        tx.emit(
            CoverageDeclared(
                coverage_id=coverage_id, kind=kind, payer_id=payer_id, state_of_residence=patient.state_of_residence
            ),
            patient_id=patient_id,
        )
        if await current_decision(tx.session, patient_id) is None:
            await self._decide_if_complete(tx, patient)
        return coverage_id

    # -- consent ------------------------------------------------------------------------

    async def sign_consent(
        self,
        tx: Transaction,
        patient_id: uuid.UUID,
        *,
        document: ConsentDocument,
        document_version: str,
        actor_role: str,
        actor: str,
    ) -> bool:
        """The patient signs the version in force of a document; False: it already stands (nothing new).

        Only the current text can be signed (NotCurrentVersion names it): a patient who read an older
        text has not read what they would be agreeing to."""
        await self._lock(tx, patient_id)
        current = self.consent_texts.current(document)
        if document_version != current.version:
            raise NotCurrentVersion(
                f"{document} is signed at its current version {current.version}, not {document_version}: "
                "read that text (GET /v1/consent-documents) and sign it",
                current.version,
            )
        latest = (await consent_states(tx.session, patient_id)).get(document.value)
        if latest is not None and latest.action == "signed" and latest.document_version == current.version:
            return False
        now = datetime.now(UTC)
        await self._save_consent(tx, patient_id, document, current.version, "signed", now, actor_role, actor)
        tx.emit(
            ConsentSigned(document=document, document_version=current.version, signed_at=now), patient_id=patient_id
        )
        return True

    async def withdraw_consent(
        self, tx: Transaction, patient_id: uuid.UUID, *, document: ConsentDocument, actor_role: str, actor: str
    ) -> None:
        """Withdraw the standing consent to a document, whatever version was signed (409 when none stands)."""
        await self._lock(tx, patient_id)
        latest = (await consent_states(tx.session, patient_id)).get(document.value)
        if latest is None or latest.action != "signed":
            raise RuleViolation(f"there is no signed {document} consent to withdraw")
        now = datetime.now(UTC)
        await self._save_consent(tx, patient_id, document, latest.document_version, "withdrawn", now, actor_role, actor)
        tx.emit(
            ConsentWithdrawn(document=document, document_version=latest.document_version, withdrawn_at=now),
            patient_id=patient_id,
        )

    async def _save_consent(
        self,
        tx: Transaction,
        patient_id: uuid.UUID,
        document: ConsentDocument,
        version: str,
        action: str,
        at: datetime,
        actor_role: str,
        actor: str,
    ) -> None:
        await tx.session.execute(
            insert(patient_consents).values(
                consent_id=uuid.uuid4(),
                patient_id=patient_id,
                document=document.value,
                document_version=version,
                action=action,
                at=at,
                actor_role=actor_role,
                actor=actor,
            )
        )
        log.info("intake.consent", patient_id=str(patient_id), document=document.value, version=version, action=action)

    # -- the decision -------------------------------------------------------------------

    async def override(
        self,
        tx: Transaction,
        patient_id: uuid.UUID,
        *,
        outcome: EligibilityOutcome,
        clinician_id: str,
        reason: str,
    ) -> uuid.UUID:
        """A clinician decides a needs-review intake; who and why are recorded with the new decision."""
        patient = await self._lock(tx, patient_id)
        current = await current_decision(tx.session, patient_id)
        decision = domain.override(current, outcome=outcome, clinician_id=clinician_id)
        return await self._save_decision(tx, patient, decision, clinician_reason=reason)

    async def re_evaluate(
        self, tx: Transaction, patient_id: uuid.UUID, *, clinician_id: str, reason: str, new: NewInformation
    ) -> uuid.UUID:
        """A clinician re-runs the eligibility rules after new information; the result supersedes the current decision.

        The new information is recorded as intake data (a repeat blood-pressure reading, updated
        screening answers, a new state of residence and time zone) and the rules in force decide
        again, so a re-evaluation can never pass an exclusion the rules make: a needs_review
        result is then decided with an override. Who, why and which decision it supersedes are
        recorded with the new decision.
        """
        patient = await self._lock(tx, patient_id)
        current = await current_decision(tx.session, patient_id)
        if current is None:
            raise RuleViolation("there is no eligibility decision to re-evaluate yet: the intake is not complete")
        now = datetime.now(UTC)
        if new.state_of_residence is not None:
            assert new.time_zone is not None
            residence = {"state_of_residence": new.state_of_residence, "time_zone": new.time_zone}
            moved = (new.state_of_residence, new.time_zone) != (patient.state_of_residence, patient.time_zone)
            await tx.session.execute(update(patients).where(patients.c.patient_id == patient_id).values(**residence))
            patient = await self._lock(tx, patient_id)
            if moved:
                # Every service keeps the patient's state (licensing) and zone from this event: announce the move.
                tx.emit(PatientRegistered(**residence), patient_id=patient_id)
        if new.systolic is not None:
            assert new.diastolic is not None and new.measured_at is not None
            await self._save_reading(tx, patient_id, new.systolic, new.diastolic, new.measured_at, now)
        if new.screening_answers is not None:
            await self._save_screening(tx, patient_id, new.screening_answers, None, now)
        decision = domain.re_evaluation(
            self.rules, await self._facts(tx, patient), current=current, clinician_id=clinician_id
        )
        return await self._save_decision(tx, patient, decision, clinician_reason=reason)

    async def _decide_if_complete(self, tx: Transaction, patient: Row[Any]) -> None:
        inputs = await intake_inputs(tx.session, patient.patient_id)
        if inputs.missing:
            return
        decision = domain.by_rules(self.rules.evaluate(await self._facts(tx, patient)))
        await self._save_decision(tx, patient, decision)

    async def _facts(self, tx: Transaction, patient: Row[Any]) -> Facts:
        return domain.facts(
            await intake_inputs(tx.session, patient.patient_id),
            date_of_birth=date.fromisoformat(self.cipher.decrypt(patient.date_of_birth_enc)),
            state_of_residence=patient.state_of_residence,
            served_states=self.served_states,
            today=datetime.now(UTC).date(),
        )

    # -- saving -------------------------------------------------------------------------

    async def _save_screening(
        self, tx: Transaction, patient_id: uuid.UUID, answers: Mapping[str, bool], notes: str | None, now: datetime
    ) -> tuple[uuid.UUID, tuple[str, ...], tuple[str, ...]]:
        """Record screening answers with what the questionnaire finds in them, and announce the findings."""
        exclusions, review = self.rules.screening_findings(domain.conditions(answers))
        screening_id = uuid.uuid4()
        findings = {"exclusions": list(exclusions), "needs_review": list(review)}
        await tx.session.execute(
            insert(medical_screenings).values(
                screening_id=screening_id,
                patient_id=patient_id,
                answers=dict(answers),
                notes_enc=self.cipher.encrypt_optional(notes),
                rule_version=self.rules.version,
                submitted_at=now,
                **findings,
            )
        )
        tx.emit(MedicalScreeningCompleted(screening_id=screening_id, **findings), patient_id=patient_id)
        return screening_id, exclusions, review

    async def _save_reading(
        self,
        tx: Transaction,
        patient_id: uuid.UUID,
        systolic: int,
        diastolic: int,
        measured_at: datetime,
        now: datetime,
    ) -> uuid.UUID:
        reading_id = uuid.uuid4()
        await tx.session.execute(
            insert(blood_pressure_readings).values(
                reading_id=reading_id,
                patient_id=patient_id,
                systolic=systolic,
                diastolic=diastolic,
                measured_at=measured_at,
                recorded_at=now,
            )
        )
        return reading_id

    async def _save_decision(
        self, tx: Transaction, patient: Row[Any], decision: EligibilityDecision, *, clinician_reason: str | None = None
    ) -> uuid.UUID:
        """Write the decision with the next sequence number, and announce it."""
        decision_id = uuid.uuid4()
        # The patient's row is locked (every caller took _lock), so the next number is this one's.
        sequence = 1 + (
            await tx.session.scalar(
                select(func.coalesce(func.max(eligibility_decisions.c.sequence), 0)).where(
                    eligibility_decisions.c.patient_id == patient.patient_id
                )
            )
            or 0
        )
        # What the row and the event both say of the decision.
        decided: dict[str, Any] = {
            "decision_id": decision_id,
            "reasons": decision.reasons,
            "rule_version": decision.rule_version,
            "overridden_by": decision.overridden_by,
            "sequence": sequence,
        }
        await tx.session.execute(
            insert(eligibility_decisions).values(
                patient_id=patient.patient_id,
                outcome=decision.outcome.value,
                basis=decision.basis,
                decided_at=datetime.now(UTC),
                overrides_decision_id=decision.overrides,
                override_reason_enc=self.cipher.encrypt_optional(clinician_reason),
                **decided,
            )
        )
        tx.emit(
            EligibilityDetermined(
                outcome=decision.outcome,
                state_of_residence=patient.state_of_residence,
                time_zone=patient.time_zone,
                supersedes_decision_id=decision.overrides,
                **decided,
            ),
            patient_id=patient.patient_id,
        )
        log.info(
            "intake.eligibility_decided",
            patient_id=str(patient.patient_id),
            outcome=decision.outcome.value,
            rule_version=decision.rule_version,
            basis=decision.basis,
            sequence=sequence,
        )
        return decision_id

    # -- locking ------------------------------------------------------------------------

    async def _lock(self, tx: Transaction, patient_id: uuid.UUID) -> Row[Any]:
        row = (
            await tx.session.execute(select(patients).where(patients.c.patient_id == patient_id).with_for_update())
        ).first()
        if row is None:
            raise NotFound(f"no patient {patient_id}")
        return row

    async def _lock_undecided(self, tx: Transaction, patient_id: uuid.UUID) -> Row[Any]:
        row = await self._lock(tx, patient_id)
        if await current_decision(tx.session, patient_id) is not None:
            raise RuleViolation("the eligibility decision is made; screening answers can no longer change")
        return row
