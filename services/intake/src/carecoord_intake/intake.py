"""Intake's use cases: each records a submission and the events it causes in the caller's transaction.

Every change first locks the patient's row, so submissions about one patient
are serialised: the submission that completes the intake is the only one that
sees it complete, and exactly one automatic decision is made. The decision is
made, with no further call, as soon as the assessments, the medical
screening, a blood-pressure reading and the coverage are all in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.contracts.common import CoverageKind, EligibilityOutcome, Instrument
from carecoord_shared.contracts.intake import (
    AssessmentScored,
    CoverageDeclared,
    EligibilityDetermined,
    MedicalScreeningCompleted,
    PatientRegistered,
)
from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from . import scoring
from .models import (
    assessments,
    blood_pressure_readings,
    coverages,
    eligibility_decisions,
    medical_screenings,
    patients,
)
from .phi import PhiCipher
from .rules import Facts, RuleSet, age_on

log = structlog.get_logger("carecoord.intake")

PHI_FIELDS = ("first_name", "last_name", "date_of_birth", "sex", "email", "phone", "address")
OVERRIDE_REASON = "clinician_override"
RE_EVALUATION_REASON = "clinician_re_evaluation"


class Basis:
    """What made an eligibility decision (the decision row's ``basis``)."""

    rules = "rules"
    clinician_override = OVERRIDE_REASON
    clinician_re_evaluation = RE_EVALUATION_REASON


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
class Demographics:
    """PHI as the API received it; only ever stored encrypted."""

    first_name: str
    last_name: str
    date_of_birth: date
    sex: str
    email: str
    phone: str
    address: Mapping[str, str | None]


@dataclass(frozen=True)
class Intake:
    rules: RuleSet
    cipher: PhiCipher
    served_states: frozenset[str]

    # -- registration -------------------------------------------------------------------

    async def register(
        self, tx: Transaction, *, external_id: str, state_of_residence: str, time_zone: str, who: Demographics
    ) -> tuple[Any, bool]:
        """The patient row and whether this call created it (idempotent on the external id)."""
        patient_id = uuid.uuid4()
        created = (
            await tx.session.execute(
                pg_insert(patients)
                .values(
                    patient_id=patient_id,
                    external_id=external_id,
                    state_of_residence=state_of_residence,
                    time_zone=time_zone,
                    **self._encrypt_demographics(who),
                )
                .on_conflict_do_nothing(index_elements=[patients.c.external_id])
                .returning(patients.c.patient_id)
            )
        ).first()
        if created:
            tx.emit(
                PatientRegistered(state_of_residence=state_of_residence, time_zone=time_zone), patient_id=patient_id
            )
        row = (await tx.session.execute(select(patients).where(patients.c.external_id == external_id))).one()
        return row, created is not None

    def _encrypt_demographics(self, who: Demographics) -> dict[str, str]:
        plain = {
            "first_name": who.first_name,
            "last_name": who.last_name,
            "date_of_birth": who.date_of_birth.isoformat(),
            "sex": who.sex,
            "email": who.email,
            "phone": who.phone,
            "address": json.dumps(dict(who.address), sort_keys=True),
        }
        return {f"{name}_enc": self.cipher.encrypt(plain[name]) for name in PHI_FIELDS}

    def demographics(self, row: Any) -> Demographics:
        return Demographics(
            first_name=self.cipher.decrypt(row.first_name_enc),
            last_name=self.cipher.decrypt(row.last_name_enc),
            date_of_birth=date.fromisoformat(self.cipher.decrypt(row.date_of_birth_enc)),
            sex=self.cipher.decrypt(row.sex_enc),
            email=self.cipher.decrypt(row.email_enc),
            phone=self.cipher.decrypt(row.phone_enc),
            address=json.loads(self.cipher.decrypt(row.address_enc)),
        )

    # -- submissions --------------------------------------------------------------------

    async def record_assessment(
        self, tx: Transaction, patient_id: uuid.UUID, instrument: Instrument, answers: list[int]
    ) -> tuple[uuid.UUID, scoring.Score]:
        patient = await self._lock_undecided(tx, patient_id)
        result = scoring.score(instrument, answers)
        assessment_id = uuid.uuid4()
        await tx.session.execute(
            insert(assessments).values(
                assessment_id=assessment_id,
                patient_id=patient_id,
                instrument=instrument.value,
                answers=list(answers),
                total=result.total,
                severity_band=result.severity_band,
                item9_positive=result.item9_positive,
                provisional_ptsd=result.provisional_ptsd,
                submitted_at=datetime.now(UTC),
            )
        )
        tx.emit(
            AssessmentScored(
                assessment_id=assessment_id,
                instrument=instrument,
                total=result.total,
                severity_band=result.severity_band,
                loinc_code=result.loinc_code,
                item9_positive=result.item9_positive,
                provisional_ptsd=result.provisional_ptsd,
            ),
            patient_id=patient_id,
        )
        await self._decide_if_complete(tx, patient)
        return assessment_id, result

    async def record_medical_screening(
        self, tx: Transaction, patient_id: uuid.UUID, answers: Mapping[str, bool], notes: str | None
    ) -> tuple[uuid.UUID, tuple[str, ...], tuple[str, ...]]:
        patient = await self._lock_undecided(tx, patient_id)
        exclusions, review = self.rules.screening_findings(frozenset(c for c, yes in answers.items() if yes))
        screening_id = uuid.uuid4()
        await tx.session.execute(
            insert(medical_screenings).values(
                screening_id=screening_id,
                patient_id=patient_id,
                answers=dict(answers),
                exclusions=list(exclusions),
                needs_review=list(review),
                notes_enc=self.cipher.encrypt_optional(notes),
                rule_version=self.rules.version,
                submitted_at=datetime.now(UTC),
            )
        )
        tx.emit(
            MedicalScreeningCompleted(
                screening_id=screening_id, exclusions=list(exclusions), needs_review=list(review)
            ),
            patient_id=patient_id,
        )
        await self._decide_if_complete(tx, patient)
        return screening_id, exclusions, review

    async def record_blood_pressure(
        self, tx: Transaction, patient_id: uuid.UUID, *, systolic: int, diastolic: int, measured_at: datetime
    ) -> uuid.UUID:
        patient = await self._lock_undecided(tx, patient_id)
        reading_id = uuid.uuid4()
        await tx.session.execute(
            insert(blood_pressure_readings).values(
                reading_id=reading_id,
                patient_id=patient_id,
                systolic=systolic,
                diastolic=diastolic,
                measured_at=measured_at,
                recorded_at=datetime.now(UTC),
            )
        )
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
        if current is None or current.outcome != EligibilityOutcome.needs_review.value:
            raise RuleViolation("only a needs_review eligibility decision can be overridden by a clinician")
        if outcome is EligibilityOutcome.needs_review:
            raise RuleViolation("an override decides: eligible or ineligible")
        return await self._store_decision(
            tx,
            patient,
            outcome=outcome,
            reasons=[*current.reasons, OVERRIDE_REASON],
            rule_version=current.rule_version,
            basis=Basis.clinician_override,
            overrides=current.decision_id,
            overridden_by=clinician_id,
            override_reason=reason,
        )

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
            moved = (new.state_of_residence, new.time_zone) != (patient.state_of_residence, patient.time_zone)
            await tx.session.execute(
                update(patients)
                .where(patients.c.patient_id == patient_id)
                .values(state_of_residence=new.state_of_residence, time_zone=new.time_zone)
            )
            patient = await self._lock(tx, patient_id)
            if moved:
                # Every service keeps the patient's state (licensing) and zone from this event: announce the move.
                tx.emit(
                    PatientRegistered(state_of_residence=new.state_of_residence, time_zone=new.time_zone),
                    patient_id=patient_id,
                )
        if new.systolic is not None:
            assert new.diastolic is not None and new.measured_at is not None
            await tx.session.execute(
                insert(blood_pressure_readings).values(
                    reading_id=uuid.uuid4(),
                    patient_id=patient_id,
                    systolic=new.systolic,
                    diastolic=new.diastolic,
                    measured_at=new.measured_at,
                    recorded_at=now,
                )
            )
        if new.screening_answers is not None:
            exclusions, review = self.rules.screening_findings(
                frozenset(c for c, yes in new.screening_answers.items() if yes)
            )
            screening_id = uuid.uuid4()
            await tx.session.execute(
                insert(medical_screenings).values(
                    screening_id=screening_id,
                    patient_id=patient_id,
                    answers=dict(new.screening_answers),
                    exclusions=list(exclusions),
                    needs_review=list(review),
                    notes_enc=None,
                    rule_version=self.rules.version,
                    submitted_at=now,
                )
            )
            tx.emit(
                MedicalScreeningCompleted(
                    screening_id=screening_id, exclusions=list(exclusions), needs_review=list(review)
                ),
                patient_id=patient_id,
            )
        decision = self.rules.evaluate(await self._facts(tx.session, patient))
        return await self._store_decision(
            tx,
            patient,
            outcome=decision.outcome,
            reasons=[*decision.reasons, RE_EVALUATION_REASON],
            rule_version=decision.rule_version,
            basis=Basis.clinician_re_evaluation,
            overrides=current.decision_id,
            overridden_by=clinician_id,
            override_reason=reason,
        )

    async def _decide_if_complete(self, tx: Transaction, patient: Any) -> None:
        inputs = await intake_inputs(tx.session, patient.patient_id)
        if inputs.missing:
            return
        decision = self.rules.evaluate(await self._facts(tx.session, patient))
        await self._store_decision(
            tx,
            patient,
            outcome=decision.outcome,
            reasons=list(decision.reasons),
            rule_version=decision.rule_version,
            basis=Basis.rules,
        )

    async def _facts(self, session: AsyncSession, patient: Any) -> Facts:
        """What the rules look at, from the latest submission of each kind (the intake is complete)."""
        inputs = await intake_inputs(session, patient.patient_id)
        assert not inputs.missing and inputs.screening is not None and inputs.blood_pressure is not None
        phq9 = inputs.scores[Instrument.phq9]
        return Facts(
            age=age_on(date.fromisoformat(self.cipher.decrypt(patient.date_of_birth_enc)), datetime.now(UTC).date()),
            state_of_residence=patient.state_of_residence,
            served_states=self.served_states,
            conditions=frozenset(c for c, yes in inputs.screening.answers.items() if yes),
            systolic=inputs.blood_pressure.systolic,
            diastolic=inputs.blood_pressure.diastolic,
            totals={i: row.total for i, row in inputs.scores.items()},
            phq9_item9_positive=bool(phq9.item9_positive),
        )

    async def _store_decision(
        self,
        tx: Transaction,
        patient: Any,
        *,
        outcome: EligibilityOutcome,
        reasons: list[str],
        rule_version: str,
        basis: str,
        overrides: uuid.UUID | None = None,
        overridden_by: str | None = None,
        override_reason: str | None = None,
    ) -> uuid.UUID:
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
        await tx.session.execute(
            insert(eligibility_decisions).values(
                sequence=sequence,
                basis=basis,
                decision_id=decision_id,
                patient_id=patient.patient_id,
                outcome=outcome.value,
                reasons=reasons,
                rule_version=rule_version,
                decided_at=datetime.now(UTC),
                overrides_decision_id=overrides,
                overridden_by=overridden_by,
                override_reason_enc=self.cipher.encrypt_optional(override_reason),
            )
        )
        tx.emit(
            EligibilityDetermined(
                decision_id=decision_id,
                outcome=outcome,
                reasons=reasons,
                rule_version=rule_version,
                state_of_residence=patient.state_of_residence,
                time_zone=patient.time_zone,
                overridden_by=overridden_by,
                sequence=sequence,
                supersedes_decision_id=overrides,
            ),
            patient_id=patient.patient_id,
        )
        log.info(
            "intake.eligibility_decided",
            patient_id=str(patient.patient_id),
            outcome=outcome.value,
            rule_version=rule_version,
            basis=basis,
            sequence=sequence,
        )
        return decision_id

    # -- locking ------------------------------------------------------------------------

    async def _lock(self, tx: Transaction, patient_id: uuid.UUID) -> Any:
        row = (
            await tx.session.execute(select(patients).where(patients.c.patient_id == patient_id).with_for_update())
        ).first()
        if row is None:
            raise NotFound(f"no patient {patient_id}")
        return row

    async def _lock_undecided(self, tx: Transaction, patient_id: uuid.UUID) -> Any:
        row = await self._lock(tx, patient_id)
        if await current_decision(tx.session, patient_id) is not None:
            raise RuleViolation("the eligibility decision is made; screening answers can no longer change")
        return row


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeInputs:
    scores: dict[Instrument, Any]
    screening: Any | None
    blood_pressure: Any | None
    coverage: Any | None

    @property
    def missing(self) -> list[str]:
        """The intake steps still to do, by name."""
        steps = {"medical_screening": self.screening, "blood_pressure": self.blood_pressure, "coverage": self.coverage}
        return [f"assessment_{i.value}" for i in Instrument if i not in self.scores] + [
            name for name, done in steps.items() if done is None
        ]


async def _latest(session: AsyncSession, table: Any, patient_id: uuid.UUID, at: str, **where: Any) -> Any | None:
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


async def latest_coverage(session: AsyncSession, patient_id: uuid.UUID) -> Any | None:
    return await _latest(session, coverages, patient_id, "declared_at")


async def current_decision(session: AsyncSession, patient_id: uuid.UUID) -> Any | None:
    """The decision in force: the highest sequence (a re-evaluation or an override supersedes the one before)."""
    return await _latest(session, eligibility_decisions, patient_id, "sequence")


async def decision_history(session: AsyncSession, patient_id: uuid.UUID) -> list[Any]:
    """Every eligibility decision about the patient, first to latest."""
    query = select(eligibility_decisions).where(eligibility_decisions.c.patient_id == patient_id)
    return list((await session.execute(query.order_by(eligibility_decisions.c.sequence))).all())


async def patient_row(session: AsyncSession, patient_id: uuid.UUID) -> Any:
    row = (await session.execute(select(patients).where(patients.c.patient_id == patient_id))).first()
    if row is None:
        raise NotFound(f"no patient {patient_id}")
    return row
