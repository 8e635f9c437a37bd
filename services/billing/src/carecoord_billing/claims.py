"""Claims: insured charges batched into an X12 837P and dropped for the clearinghouse.

Three steps, so that a crash never sends a claim twice nor loses one:

1. one transaction reserves an interchange control number, turns each open
   charge into a claim (the unique constraint on the charge keeps it to one
   claim) and marks the charge claimed;
2. the file is written atomically, with demographics fetched from intake just
   for it;
3. one transaction marks the interchange sent and emits ClaimSubmitted.

An interchange left between 1 and 3 by a crash is written again, with the same
control number and claims, on the next run.

A claim carries the diagnosis codes of the patient's latest treatment plan
(TreatmentPlanCreated), fixed on the claim in step 1. A charge whose patient has
no plan with a diagnosis yet (an initial evaluation billed before the plan is
written) is not claimed: it stays open and is claimed on the first run after the
diagnosis arrives. No code is ever made up.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Row, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.billing import ClaimSubmitted
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import interchanges as sent_files
from .clearinghouse import DropFolders
from .demographics import DemographicsSource, subscriber_for
from .fees import FeeSchedule
from .models import charges, claims, interchanges, plan_diagnoses
from .settings import ProviderIdentity
from .x12 import claim_837p
from .x12.parties import Payer, Subscriber

log = structlog.get_logger("carecoord.billing.claims")

TRANSACTION = "837P"


def claim_number(claim_id: uuid.UUID) -> str:
    """CLM01: at most 20 characters, and what the payer echoes in CLP01."""
    return claim_id.hex[:20].upper()


async def latest_diagnosis(session: AsyncSession, patient_id: uuid.UUID) -> list[str] | None:
    """The ICD-10-CM codes of the patient's latest plan (by when it was written), or None."""
    codes: list[str] | None = (
        await session.execute(
            select(plan_diagnoses.c.diagnosis_codes)
            .where(plan_diagnoses.c.patient_id == patient_id)
            .order_by(plan_diagnoses.c.planned_at.desc())
            .limit(1)
        )
    ).scalar()
    return codes


class ClaimSubmitter:
    def __init__(
        self,
        uow: UnitOfWork,
        demographics: DemographicsSource,
        folders: DropFolders,
        fees: FeeSchedule,
        provider: ProviderIdentity,
        *,
        max_claims_per_file: int = 500,
    ) -> None:
        self._uow = uow
        self._demographics = demographics
        self._folders = folders
        self._fees = fees
        self._provider = provider
        self._max_claims = max_claims_per_file

    async def run(self, now: datetime | None = None) -> list[int]:
        """Send what is due; returns the control numbers of the interchanges sent."""
        now = now or datetime.now(UTC)
        sent = []
        for control_number in await self._unfinished():
            if await self._send(control_number, now, {}):
                sent.append(control_number)
        subscribers: dict[uuid.UUID, Subscriber] = {}
        due = await self._due_charges()
        for patient_id in {row.patient_id for row in due}:
            subscriber = await self._subscriber(patient_id)
            if subscriber is not None:
                subscribers[patient_id] = subscriber
        ready = [row for row in due if row.patient_id in subscribers]
        if ready:
            reserved = await self._reserve(ready)
            if reserved is not None and await self._send(reserved, now, subscribers):
                sent.append(reserved)
        return sent

    async def _unfinished(self) -> list[int]:
        async with self._uow.sessions() as session:
            rows = await session.execute(
                select(interchanges.c.control_number)
                .where(interchanges.c.transaction == TRANSACTION, interchanges.c.status == "building")
                .order_by(interchanges.c.control_number)
            )
            return [r.control_number for r in rows]

    async def _due_charges(self) -> Sequence[Row[Any]]:
        """Open insured charges whose patient has a recorded diagnosis; the others wait (counted in the log)."""
        diagnosed = exists().where(plan_diagnoses.c.patient_id == charges.c.patient_id)
        open_insured = (charges.c.status == "open", charges.c.self_pay.is_(False))
        async with self._uow.sessions() as session:
            rows = await session.execute(
                select(charges.c.charge_id, charges.c.patient_id)
                .where(*open_insured, diagnosed)
                .order_by(charges.c.created_at)
                .limit(self._max_claims)
            )
            waiting = (
                await session.execute(select(func.count()).select_from(charges).where(*open_insured, ~diagnosed))
            ).scalar_one()
        if waiting:
            log.warning("claims.waiting_for_diagnosis", charges=waiting)
        return rows.all()

    async def _subscriber(self, patient_id: uuid.UUID) -> Subscriber | None:
        return await subscriber_for(self._demographics, patient_id, log)

    async def _reserve(self, due: Sequence[Row[Any]]) -> int | None:
        async with self._uow.transaction() as tx:
            control_number = await sent_files.reserve(tx, TRANSACTION)
            claimed = 0
            for row in due:
                charge = (
                    await tx.session.execute(
                        update(charges)
                        .where(charges.c.charge_id == row.charge_id, charges.c.status == "open")
                        .values(status="claimed")
                        .returning(
                            charges.c.charge_id, charges.c.patient_id, charges.c.payer_id, charges.c.amount_cents
                        )
                    )
                ).first()
                if charge is None:  # voided or claimed meanwhile
                    continue
                diagnosis_codes = await latest_diagnosis(tx.session, charge.patient_id)
                if diagnosis_codes is None:  # cannot happen after _due_charges; never claim without one
                    continue
                claim_id = uuid.uuid4()
                await tx.session.execute(
                    insert(claims).values(
                        claim_id=claim_id,
                        claim_number=claim_number(claim_id),
                        charge_id=charge.charge_id,
                        patient_id=charge.patient_id,
                        payer_id=charge.payer_id,
                        interchange_control_number=control_number,
                        total_cents=charge.amount_cents,
                        diagnosis_codes=diagnosis_codes,
                    )
                )
                claimed += 1
            if claimed == 0:
                await tx.session.execute(
                    update(interchanges).where(interchanges.c.control_number == control_number).values(status="empty")
                )
                return None
        return control_number

    async def _send(self, control_number: int, now: datetime, subscribers: dict[uuid.UUID, Subscriber]) -> bool:
        async with self._uow.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        claims, charges.c.lines, charges.c.modifiers, charges.c.place_of_service, charges.c.service_date
                    )
                    .join(charges, charges.c.charge_id == claims.c.charge_id)
                    .where(claims.c.interchange_control_number == control_number)
                    .order_by(claims.c.claim_number)
                )
            ).all()
        for patient_id in {r.patient_id for r in rows} - set(subscribers):
            subscriber = await self._subscriber(patient_id)
            if subscriber is None:
                log.warning("claim.interchange_waits_for_demographics", control_number=control_number)
                return False
            subscribers[patient_id] = subscriber
        to_send = [
            claim_837p.Claim(
                claim_number=r.claim_number,
                payer=Payer(r.payer_id),
                subscriber=subscribers[r.patient_id],
                place_of_service=r.place_of_service,
                diagnoses=tuple(r.diagnosis_codes),
                lines=tuple(
                    claim_837p.ServiceLine(line["cpt"], tuple(r.modifiers), line["cents"], r.service_date)
                    for line in r.lines
                ),
            )
            for r in rows
        ]
        document = claim_837p.build(to_send, provider=self._provider, control_number=control_number, at=now)
        file_name = sent_files.file_name(TRANSACTION, control_number)
        self._folders.send(file_name, document)

        async with self._uow.transaction() as tx:
            await sent_files.mark_sent(tx, control_number, file_name, now)
            await tx.session.execute(
                update(claims)
                .where(claims.c.interchange_control_number == control_number)
                .values(status="submitted", submitted_at=now)
            )
            for r in rows:
                tx.emit(
                    ClaimSubmitted(
                        claim_id=r.claim_id, charge_ids=[r.charge_id], payer_id=r.payer_id, total_cents=r.total_cents
                    ),
                    patient_id=r.patient_id,
                )
        log.info("claims.submitted", control_number=control_number, claims=len(rows), file=file_name)
        return True
