"""The exchange with the clearinghouse, one cycle at a time: send claims and
eligibility inquiries, let the simulated payer answer (locally), then post
what came back. Runs in the background of the billing process and on demand.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy.dialects.postgresql import insert

from carecoord_shared.errors import NotReady
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.service import Runtime

from . import remittance, verification
from .claims import ClaimSubmitter
from .clearinghouse import DropFolders
from .demographics import DemographicsSource
from .fees import FeeSchedule
from .models import inbound_files
from .settings import BillingSettings, ProviderIdentity
from .simulated_payer import SimulatedPayer
from .x12 import eligibility, remittance_835
from .x12.syntax import X12Error, parse

log = structlog.get_logger("carecoord.billing.exchange")


@dataclass
class CycleReport:
    interchanges_sent: list[int] = field(default_factory=list)
    answers_from_payer: int = 0
    files_posted: list[str] = field(default_factory=list)
    files_rejected: list[str] = field(default_factory=list)


class Exchange:
    def __init__(
        self,
        uow: UnitOfWork,
        folders: DropFolders,
        demographics: DemographicsSource,
        fees: FeeSchedule,
        provider: ProviderIdentity,
        *,
        payer: SimulatedPayer | None = None,
        max_claims_per_file: int = 500,
    ) -> None:
        self._uow = uow
        self.folders = folders
        self._claims = ClaimSubmitter(
            uow, demographics, folders, fees, provider, max_claims_per_file=max_claims_per_file
        )
        self._inquiries = verification.EligibilityInquirer(uow, demographics, folders, provider)
        self._payer = payer
        # One cycle at a time, whether the timer or an operator started it.
        self._lock = asyncio.Lock()

    async def run_once(self) -> CycleReport:
        async with self._lock:
            report = CycleReport()
            report.interchanges_sent.extend(await self._claims.run())
            sent_270 = await self._inquiries.run()
            if sent_270 is not None:
                report.interchanges_sent.append(sent_270)
            if self._payer is not None:
                report.answers_from_payer = await asyncio.to_thread(self._payer.run_once)
            await self.receive(report)
            return report

    async def receive(self, report: CycleReport | None = None) -> CycleReport:
        """Post every inbound file; one that cannot be read is set aside and the next one goes on."""
        report = report or CycleReport()
        for path in self.folders.received():
            reason = await self._post_file(path)
            if reason is None:
                self.folders.archive_file(path)
                report.files_posted.append(path.name)
            else:
                self.folders.reject(path, reason)
                report.files_rejected.append(path.name)
                log.warning("clearinghouse.file_rejected", file=path.name, reason=reason)
        return report

    async def _post_file(self, path: Path) -> str | None:
        """None when posted (or already posted before); otherwise why the file is rejected."""
        content = await asyncio.to_thread(path.read_bytes)
        digest = hashlib.sha256(content).hexdigest()
        try:
            document = content.decode("ascii")
            code = parse(document)[0].code
            async with self._uow.transaction() as tx:
                first_time = await tx.session.scalar(
                    insert(inbound_files)
                    .values(sha256=digest, file_name=path.name[:255], transaction=code)
                    .on_conflict_do_nothing()
                    .returning(inbound_files.c.sha256)
                )
                if first_time is None:
                    log.info("clearinghouse.file_seen_before", file=path.name)
                    return None
                if code == "835":
                    await remittance.post(tx, remittance_835.read(document), file_sha256=digest)
                elif code == "271":
                    await verification.record_answers(tx, eligibility.read_271(document))
                else:
                    raise X12Error(f"a {code} transaction is not something we receive")
        except UnicodeDecodeError:
            return "not an X12 file: it is not ASCII text"
        except X12Error as exc:
            return str(exc)
        except ValueError as exc:
            # e.g. a code our contracts do not allow; the class name only (messages quote values).
            return f"a value in the file is not valid ({type(exc).__name__})"
        log.info("clearinghouse.file_posted", file=path.name, transaction=code)
        return None

    async def run_forever(self, interval_s: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the next cycle tries again; the class name only (messages may quote rows)
                log.error("exchange.cycle_failed", error=type(exc).__name__)
            await asyncio.sleep(interval_s)


def build_exchange(
    uow: UnitOfWork, settings: BillingSettings, fees: FeeSchedule, demographics: DemographicsSource
) -> Exchange:
    payer = None
    if settings.simulated_payer_enabled:
        payer = SimulatedPayer(
            settings.clearinghouse_dir,
            default_outcome=settings.simulated_payer_default_outcome,
            outcomes=settings.simulated_payer_outcomes,
            inactive_members=settings.simulated_payer_inactive_members,
        )
    return Exchange(
        uow,
        DropFolders(settings.clearinghouse_dir),
        demographics,
        fees,
        ProviderIdentity(),
        payer=payer,
        max_claims_per_file=settings.max_claims_per_file,
    )


class ExchangeService:
    """The process's one exchange: built when the runtime starts (it needs the unit of work),
    cycled in the background and on an operator's request, one cycle at a time."""

    def __init__(self, settings: BillingSettings, fees: FeeSchedule, demographics: DemographicsSource) -> None:
        self._settings = settings
        self._fees = fees
        self._demographics = demographics
        self._exchange: Exchange | None = None
        self._failed: str | None = None

    async def run(self, runtime: Runtime) -> None:
        """The service's background hook: started after the database and broker, cancelled before them."""
        try:
            self._exchange = build_exchange(runtime.uow, self._settings, self._fees, self._demographics)
        except (
            Exception
        ) as exc:  # e.g. the drop folders cannot be made: said by every manual run, the log and readiness
            self._failed = type(exc).__name__
            raise
        if self._settings.exchange_enabled:
            await self._exchange.run_forever(self._settings.exchange_interval_s)

    async def run_once(self) -> CycleReport:
        if self._failed is not None:
            raise NotReady(
                f"the clearinghouse exchange could not start ({self._failed}): check CARECOORD_CLEARINGHOUSE_DIR "
                "and the billing log, then restart billing"
            )
        if self._exchange is None:
            raise NotReady("the clearinghouse exchange starts with the service; try again in a moment")
        return await self._exchange.run_once()
