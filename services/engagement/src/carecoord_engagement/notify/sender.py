"""The sender loop: sends committed notifications, each exactly once as far as our side can know.

A pass, like the outbox relay's polling pass:

1. **Claim** (one short transaction): up to ``notify_batch_size`` rows that are ``pending`` and
   due, or ``sending`` with an expired lease (their sender died), are selected ``FOR UPDATE SKIP
   LOCKED`` (two senders never take the same row), set to ``sending`` with ``lease_until = now +
   notify_lease_s`` and ``attempts + 1``, and COMMITTED before anything is sent.
2. **Send** each row, outside any transaction: the recipient's address (a patient's fetched from
   intake and forgotten after this message; a staff member's from the directory), quiet hours
   (a patient's non-safety message in their quiet hours goes back to ``pending`` until they end,
   the attempt not counted), the SMS opt-in (withdrawn since: ``suppressed``), then the adapter,
   with the notification id as the Message-ID / idempotency key.
3. **Finish** (one transaction per row): ``sent`` (provider id), ``pending`` again after a backoff
   (``notify_backoff_initial_s`` doubling up to ``notify_backoff_max_s``), ``failed`` once
   ``notify_max_attempts`` attempts are used or a retry cannot help (``on_failed`` runs in that
   transaction: the service can open an operator task there), or ``suppressed``. The update is
   fenced on our lease: a sender whose lease ran out and was taken over changes nothing.

Exactly once. A row is sent by one sender at a time (SKIP LOCKED, then the lease). A sender
killed after the claim and before the send leaves a ``sending`` row that is sent once after its
lease expires. A sender killed after the server accepted the message and before the finish
commits sends it again after the lease: the same Message-ID (the same idempotency key for SMS),
so the copy is recognisable downstream, but it is a second delivery: SMTP has no way to ask a
server "did you get this one". That window (the server's OK to our commit, milliseconds) is the
real boundary; the ADR says so. The lease must outlast one send (timeouts are shorter).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from opentelemetry import metrics
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carecoord_shared.faults import FailurePoints
from carecoord_shared.telemetry import meter

from .adapters import Adapter, DeliveryFailed, GatewaySms, Outgoing, RestSms, SmtpConfig, SmtpEmail
from .contacts import (
    ContactUnavailable,
    IntakeContacts,
    PatientContacts,
    PatientUnknown,
    development_token,
    staff_address,
)
from .enqueue import sms_opted_in
from .quiet_hours import parse_clock, quiet_until, zone_for
from .settings import NotifySettings
from .tables import NotifyTables
from .templates import Channel, RecipientKind, render, spec

log = structlog.get_logger("carecoord.notify")

NotificationRow = Row[Any]
OnFailed = Callable[[AsyncSession, NotificationRow], Awaitable[None]]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt: the row's next state and what goes with it."""

    state: str  # sent | pending | failed | suppressed
    error: str | None = None
    provider_message_id: str | None = None
    # pending: when to try again; counted: whether this attempt counts towards notify_max_attempts.
    retry_at: datetime | None = None
    counted: bool = True


class NotificationSender:
    def __init__(
        self,
        tables: NotifyTables,
        *,
        contacts: PatientContacts,
        email: Adapter,
        sms: Adapter,
        settings: NotifySettings,
        on_failed: OnFailed | None = None,
        failure_points: FailurePoints | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._table = tables.notifications
        self._tables = tables
        self._contacts = contacts
        self._adapters: dict[str, Adapter] = {Channel.email.value: email, Channel.sms.value: sms}
        self._settings = settings
        self._on_failed = on_failed
        self._failure_points = failure_points or FailurePoints()
        self._clock = clock
        self._quiet = (parse_clock(settings.quiet_hours_start), parse_clock(settings.quiet_hours_end))
        self._work = asyncio.Event()
        # Each instrument by a literal create_* call: tests/e2e/test_metric_names.py reads the names the code
        # registers out of the source, and an exported name it cannot find there fails it.
        m = meter()
        self._sent = m.create_counter(
            "carecoord.notifications.sent", description="Notifications delivered to the provider"
        )
        self._failed = m.create_counter("carecoord.notifications.failed", description="Notifications given up on")
        self._retried = m.create_counter("carecoord.notifications.retried", description="Attempts that will be retried")
        self._suppressed = m.create_counter(
            "carecoord.notifications.suppressed", description="Notifications not sent (opted out, no contact)"
        )
        self._deferred = m.create_counter(
            "carecoord.notifications.deferred", description="Notifications held until the end of quiet hours"
        )
        self.last_backlog = 0
        m.create_observable_gauge(
            "carecoord.notifications.backlog",
            callbacks=[lambda _o: [metrics.Observation(self.last_backlog)]],
            description="Notifications pending or sending",
        )

    def wake(self) -> None:
        """Run a pass soon (a transaction just committed notifications)."""
        self._work.set()

    async def run(self, runtime: Any) -> None:
        """The background task (ServiceDefinition.background): passes until cancelled."""
        sessions: async_sessionmaker[AsyncSession] = runtime.sessions
        while True:
            try:
                done = await self.drain_once(sessions)
                self.last_backlog = await self.backlog(sessions)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass tries again; the class name only (messages may quote rows)
                log.error("notify.pass_failed", error=type(exc).__name__)
                done = 0
            if done < self._settings.notify_batch_size:
                try:
                    await asyncio.wait_for(self._work.wait(), self._settings.notify_poll_interval_s)
                except TimeoutError:
                    pass
                self._work.clear()

    async def drain_once(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """One pass: claim due rows, send them, record each outcome. The number of rows claimed."""
        rows = await self.claim(sessions)
        for row in rows:
            self._failure_points.reach("notify.after_claim_before_send", row.template)
            outcome = await self.attempt(sessions, row)
            self._failure_points.reach("notify.after_send_before_mark", row.template)
            await self.finish(sessions, row, outcome)
        return len(rows)

    async def backlog(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        async with sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(self._table).where(self._table.c.state.in_(("pending", "sending")))
            )
        return int(count or 0)

    async def claim(self, sessions: async_sessionmaker[AsyncSession]) -> list[NotificationRow]:
        """Step 1: take due rows (and rows whose sender's lease expired) and commit them as ``sending``."""
        t = self._table
        now = self._clock()
        due = (
            select(t.c.id)
            .where(
                or_(
                    and_(t.c.state == "pending", t.c.next_attempt_at <= now),
                    and_(t.c.state == "sending", t.c.lease_until <= now),
                )
            )
            .order_by(t.c.next_attempt_at)
            .limit(self._settings.notify_batch_size)
            .with_for_update(skip_locked=True)
        )
        async with sessions.begin() as session:
            result = await session.execute(
                update(t)
                .where(t.c.id.in_(due.scalar_subquery()))
                .values(
                    state="sending",
                    attempts=t.c.attempts + 1,
                    lease_until=now + timedelta(seconds=self._settings.notify_lease_s),
                )
                .returning(*t.c)
            )
            return list(result.all())

    async def attempt(self, sessions: async_sessionmaker[AsyncSession], row: NotificationRow) -> Outcome:
        """Step 2: resolve the address, apply quiet hours and opt-out, send. Never raises for a delivery problem."""
        now = self._clock()
        chosen = spec(row.template)
        try:
            if row.recipient_kind == RecipientKind.patient.value:
                patient_id = uuid.UUID(row.recipient_id)
                if row.channel == Channel.sms.value:
                    async with sessions() as session:
                        if not await sms_opted_in(session, self._tables, patient_id):
                            return Outcome("suppressed", "sms_opted_out")
                contact = await self._contacts.patient_contact(patient_id)
                if not chosen.ignores_quiet_hours:
                    zone = zone_for(contact.time_zone, contact.state_of_residence)
                    until = quiet_until(now, zone, *self._quiet)
                    if until is not None:
                        return Outcome("pending", "quiet_hours", retry_at=until, counted=False)
                to = contact.phone if row.channel == Channel.sms.value else contact.email
            else:
                async with sessions() as session:
                    address = await staff_address(session, self._tables, row.recipient_id)
                to = None if address is None else (address.phone if row.channel == Channel.sms.value else address.email)
            if not to:
                return Outcome("suppressed", "no_contact")
            text = render(row.template, row.channel)
            provider_id = await self._adapters[row.channel].send(Outgoing(row.id, to, text.subject, text.body))
            return Outcome("sent", provider_message_id=provider_id)
        except PatientUnknown:
            return Outcome("failed", "patient_unknown")
        except ContactUnavailable:
            return self._retry_or_fail(row, "contact_unavailable", now)
        except DeliveryFailed as failure:
            if not failure.retryable:
                return Outcome("failed", failure.code)
            return self._retry_or_fail(row, failure.code, now)

    def _retry_or_fail(self, row: NotificationRow, code: str, now: datetime) -> Outcome:
        if row.attempts >= self._settings.notify_max_attempts:
            return Outcome("failed", code)
        delay = min(
            self._settings.notify_backoff_initial_s * 2 ** (row.attempts - 1), self._settings.notify_backoff_max_s
        )
        return Outcome("pending", code, retry_at=now + timedelta(seconds=delay))

    async def finish(self, sessions: async_sessionmaker[AsyncSession], row: NotificationRow, outcome: Outcome) -> bool:
        """Step 3: record the outcome, fenced on our lease. False when another sender has taken the row over."""
        t = self._table
        values: dict[str, Any] = {"state": outcome.state, "last_error": outcome.error, "lease_until": None}
        if outcome.state == "sent":
            values |= {"sent_at": self._clock(), "provider_message_id": outcome.provider_message_id}
        if outcome.state == "pending":
            values["next_attempt_at"] = outcome.retry_at
            if not outcome.counted:
                values["attempts"] = t.c.attempts - 1
        async with sessions.begin() as session:
            result = await session.execute(
                update(t)
                .where(t.c.id == row.id, t.c.state == "sending", t.c.lease_until == row.lease_until)
                .values(**values)
                .returning(*t.c)
            )
            finished = result.one_or_none()
            if finished is not None and outcome.state == "failed" and self._on_failed is not None:
                await self._on_failed(session, finished)
        if finished is None:
            log.warning("notify.lease_lost", notification_id=str(row.id))
            return False
        self._count(row, outcome)
        return True

    def _count(self, row: NotificationRow, outcome: Outcome) -> None:
        labels = {"channel": row.channel, "template": row.template}
        bound = log.bind(notification_id=str(row.id), channel=row.channel, template=row.template)
        if outcome.state == "sent":
            self._sent.add(1, labels)
            bound.info("notify.sent", attempts=row.attempts)
        elif outcome.state == "failed":
            self._failed.add(1, labels | {"error": outcome.error or ""})
            bound.error("notify.failed", error=outcome.error, attempts=row.attempts)
        elif outcome.state == "suppressed":
            self._suppressed.add(1, labels | {"reason": outcome.error or ""})
            bound.info("notify.suppressed", reason=outcome.error)
        elif not outcome.counted:
            self._deferred.add(1, labels)
            bound.info("notify.deferred_quiet_hours")
        else:
            self._retried.add(1, labels | {"error": outcome.error or ""})
            bound.warning("notify.retry", error=outcome.error, attempts=row.attempts)


def adapters_from(settings: NotifySettings) -> tuple[SmtpEmail, Adapter]:
    """The email adapter and the SMS adapter the settings choose."""
    email = SmtpEmail(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
            mail_from=settings.mail_from,
            domain=settings.mail_domain,
        )
    )
    sms: Adapter
    if settings.sms_provider == "rest":
        if not settings.sms_rest_url or not settings.sms_rest_account:
            raise RuntimeError("sms_provider=rest needs CARECOORD_SMS_REST_URL and CARECOORD_SMS_REST_ACCOUNT")
        sms = RestSms(
            settings.sms_rest_url,
            settings.sms_rest_account,
            settings.sms_rest_token,
            settings.sms_from,
            timeout_s=settings.sms_timeout_s,
        )
    else:
        sms = GatewaySms(email, settings.sms_gateway_domain)
    return email, sms


def build_sender(
    settings: NotifySettings,
    tables: NotifyTables,
    *,
    auth_jwt_secret: str,
    auth_issuer: str,
    auth_audience: str,
    on_failed: OnFailed | None = None,
    failure_points: FailurePoints | None = None,
) -> NotificationSender:
    """The sender the settings describe: SMTP email, the chosen SMS adapter, intake's contact route.

    Without CARECOORD_INTAKE_API_TOKEN a development service token is minted per request with the
    development JWT secret (only a development intake accepts it)."""
    token = (
        settings.intake_api_token
        if settings.intake_api_token.get_secret_value()
        else development_token(auth_jwt_secret, issuer=auth_issuer, audience=auth_audience)
    )
    email, sms = adapters_from(settings)
    return NotificationSender(
        tables,
        contacts=IntakeContacts(settings.intake_url, token, timeout_s=settings.contact_timeout_s),
        email=email,
        sms=sms,
        settings=settings,
        on_failed=on_failed,
        failure_points=failure_points,
    )
