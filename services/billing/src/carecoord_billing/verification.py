"""Eligibility verification: X12 270 inquiries out, 271 answers in, matched by trace number."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy import select, update

from carecoord_contracts.billing import CoverageStatus, CoverageVerified
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork

from . import interchanges as sent_files
from .clearinghouse import DropFolders
from .demographics import DemographicsSource, subscriber_for
from .models import coverages, eligibility_checks
from .settings import ProviderIdentity
from .x12 import eligibility
from .x12.parties import Payer
from .x12.syntax import X12Error

log = structlog.get_logger("carecoord.billing.eligibility")

TRANSACTION = "270"


class EligibilityInquirer:
    def __init__(
        self, uow: UnitOfWork, demographics: DemographicsSource, folders: DropFolders, provider: ProviderIdentity
    ) -> None:
        self._uow = uow
        self._demographics = demographics
        self._folders = folders
        self._provider = provider

    async def run(self, now: datetime | None = None, limit: int = 200) -> int | None:
        """Send one 270 with every queued inquiry; returns its control number, if one was sent.

        An inquiry is a question, so asking twice after a crash is harmless:
        checks stay queued until the file is written.
        """
        now = now or datetime.now(UTC)
        async with self._uow.sessions() as session:
            queued = (
                await session.execute(
                    select(eligibility_checks)
                    .where(eligibility_checks.c.status == "queued")
                    .order_by(eligibility_checks.c.requested_at)
                    .limit(limit)
                )
            ).all()
        inquiries, asked = [], []
        for check in queued:
            subscriber = await subscriber_for(self._demographics, check.patient_id, log)
            if subscriber is None:
                continue
            inquiries.append(eligibility.Inquiry(check.trace_number, Payer(check.payer_id), subscriber, now.date()))
            asked.append(check.verification_id)
        if not inquiries:
            return None
        async with self._uow.transaction() as tx:
            control_number = await sent_files.reserve(tx, TRANSACTION)
        file_name = sent_files.file_name(TRANSACTION, control_number)
        self._folders.send(
            file_name, eligibility.build_270(inquiries, provider=self._provider, control_number=control_number, at=now)
        )
        async with self._uow.transaction() as tx:
            await sent_files.mark_sent(tx, control_number, file_name, now)
            await tx.session.execute(
                update(eligibility_checks)
                .where(eligibility_checks.c.verification_id.in_(asked))
                .values(status="sent", interchange_control_number=control_number)
            )
        log.info("eligibility.inquiries_sent", control_number=control_number, inquiries=len(asked), file=file_name)
        return control_number


async def record_answers(tx: Transaction, answers: list[eligibility.Answer], now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    recorded = 0
    for answer in answers:
        check = (
            await tx.session.execute(
                select(eligibility_checks)
                .where(eligibility_checks.c.trace_number == answer.trace_number)
                .with_for_update()
            )
        ).first()
        if check is None:
            raise X12Error(f"TRN02 {answer.trace_number} answers no inquiry of ours")
        if check.status == "answered":
            continue
        await tx.session.execute(
            update(eligibility_checks)
            .where(eligibility_checks.c.verification_id == check.verification_id)
            .values(status="answered", result=answer.status, answered_at=now)
        )
        await tx.session.execute(
            update(coverages)
            .where(coverages.c.coverage_id == check.coverage_id)
            .values(verification_status=answer.status, verified_at=now)
        )
        tx.emit(
            CoverageVerified(
                coverage_id=check.coverage_id,
                verification_id=check.verification_id,
                payer_id=check.payer_id,
                status=CoverageStatus(answer.status),
            ),
            patient_id=check.patient_id,
        )
        log.info("eligibility.answered", patient_id=str(check.patient_id), status=answer.status)
        recorded += 1
    return recorded
