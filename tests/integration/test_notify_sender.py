"""Engagement's sender against real PostgreSQL and a real SMTP server (the devstack's aiosmtpd mailbox).

What arrived is read from the Maildir. The clock is the sender's own (injected), so a lease
expires or quiet hours end by moving it, without waiting. A "crash" is a sender that did the
first steps of a pass (claim; claim and send) and never the rest, which is what a SIGKILL
leaves in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_devstack.mailbox import Mailbox
from carecoord_devstack.scratch import free_ports, scratch_database
from carecoord_devstack.stack import Stack
from carecoord_engagement.notify.adapters import GatewaySms, SmtpConfig, SmtpEmail
from carecoord_engagement.notify.contacts import PatientContact
from carecoord_engagement.notify.enqueue import notify_patient, page_staff, record_sms_consent
from carecoord_engagement.notify.migration_steps import create_notify_v1
from carecoord_engagement.notify.sender import NotificationRow, NotificationSender
from carecoord_engagement.notify.settings import NotifySettings
from carecoord_engagement.notify.tables import NotifyTables, notify_tables
from carecoord_engagement.notify.templates import Template
from carecoord_shared.persistence import create_engine, create_sessions

LEASE_S = 60.0


class Clock:
    def __init__(self) -> None:
        # Ahead of the database's now(), which stamps next_attempt_at on insert.
        self.now = datetime.now(UTC) + timedelta(seconds=5)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Contacts:
    """Intake's contact route, as a table in memory (the route itself has its own tests)."""

    def __init__(self) -> None:
        self.people: dict[uuid.UUID, PatientContact] = {}
        self.asked = 0

    def add(self, *, time_zone: str = "America/Denver", phone: str = "+1 303 555 0100") -> uuid.UUID:
        patient_id = uuid.uuid4()
        self.people[patient_id] = PatientContact(
            patient_id=patient_id,
            email=f"p-{patient_id.hex[:8]}@example.org",
            phone=phone,
            time_zone=time_zone,
            state_of_residence="CO",
        )
        return patient_id

    async def patient_contact(self, patient_id: uuid.UUID) -> PatientContact:
        self.asked += 1
        return self.people[patient_id]


class Harness:
    def __init__(self, url: str, mailbox: Mailbox) -> None:
        self.metadata = MetaData()
        self.tables: NotifyTables = notify_tables(self.metadata)
        self.engine = create_engine(url)
        self.sessions = create_sessions(self.engine)
        self.mailbox = mailbox
        self.clock = Clock()
        self.contacts = Contacts()
        self.failed: list[NotificationRow] = []

    async def migrate(self) -> None:
        def upgrade(connection: Any) -> None:
            with Operations.context(MigrationContext.configure(connection)):
                create_notify_v1()

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    def sender(self, *, smtp_port: int | None = None, **overrides: Any) -> NotificationSender:
        settings = NotifySettings(
            **{
                "notify_lease_s": LEASE_S,
                "notify_max_attempts": 3,
                "notify_backoff_initial_s": 10.0,
                "quiet_hours_start": "21:00",
                "quiet_hours_end": "08:00",
                **overrides,
            }
        )
        email = SmtpEmail(SmtpConfig(host="127.0.0.1", port=smtp_port or self.mailbox.port, timeout_s=5))

        async def on_failed(session: AsyncSession, row: NotificationRow) -> None:
            self.failed.append(row)

        return NotificationSender(
            self.tables,
            contacts=self.contacts,
            email=email,
            sms=GatewaySms(email, "sms.localhost"),
            settings=settings,
            on_failed=on_failed,
            clock=self.clock,
        )

    async def outreach(self, patient_id: uuid.UUID, template: Template = Template.safety_outreach) -> uuid.UUID:
        cause = uuid.uuid4()
        async with self.sessions.begin() as session:
            await notify_patient(session, self.tables, cause_event_id=cause, patient_id=patient_id, template=template)
        return cause

    async def rows(self, cause: uuid.UUID) -> list[Any]:
        t = self.tables.notifications
        async with self.sessions() as session:
            return list(
                (await session.execute(select(t).where(t.c.cause_event_id == cause).order_by(t.c.channel))).all()
            )

    def mail_to(self, address: str) -> list[Message]:
        return [m for m in self.mailbox.messages() if address in m["X-RcptTo"]]


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    (port,) = free_ports(1)
    box = Mailbox(Path(tmp_path_factory.mktemp("mailbox")), port=port)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
async def harness(stack: Stack, mailbox: Mailbox) -> AsyncIterator[Harness]:
    h = Harness(await scratch_database(stack, "notifytest", "safety"), mailbox)
    await h.migrate()
    yield h
    await h.engine.dispose()


async def test_a_notification_is_mailed_once_with_its_id_as_message_id_and_a_redelivered_cause_adds_none(
    harness: Harness,
) -> None:
    patient = harness.contacts.add()
    cause = await harness.outreach(patient)
    async with harness.sessions.begin() as session:  # the same CheckInMissed again (a redelivery)
        again = await notify_patient(
            session, harness.tables, cause_event_id=cause, patient_id=patient, template=Template.safety_outreach
        )
    assert again == []
    sender = harness.sender()
    assert await sender.drain_once(harness.sessions) == 1
    assert await sender.drain_once(harness.sessions) == 0
    [row] = await harness.rows(cause)
    [mail] = harness.mail_to(harness.contacts.people[patient].email or "")
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)
    assert mail["Message-ID"] == f"<{row.id}@carecoord.localhost>" == row.provider_message_id
    assert mail["Subject"] == "Your care team needs to reach you"


async def test_a_sender_killed_after_its_claim_leaves_the_row_to_the_next_sender_once_its_lease_expires(
    harness: Harness,
) -> None:
    patient = harness.contacts.add()
    cause = await harness.outreach(patient)
    crashed = harness.sender()
    assert len(await crashed.claim(harness.sessions)) == 1  # committed `sending`, then SIGKILL

    survivor = harness.sender()
    assert await survivor.drain_once(harness.sessions) == 0, "the dead sender's lease still holds the row"
    harness.clock.advance(LEASE_S + 1)
    assert await survivor.drain_once(harness.sessions) == 1
    [row] = await harness.rows(cause)
    assert (row.state, row.attempts) == ("sent", 2)
    assert len(harness.mail_to(harness.contacts.people[patient].email or "")) == 1


async def test_a_sender_killed_after_the_server_took_the_mail_resends_it_with_the_same_message_id(
    harness: Harness,
) -> None:
    """The real boundary: SMTP cannot be asked whether it has a message, so this window sends twice,
    recognisably (one Message-ID); and the dead sender's late finish changes nothing."""
    patient = harness.contacts.add()
    cause = await harness.outreach(patient)
    crashed = harness.sender()
    [taken] = await crashed.claim(harness.sessions)
    outcome = await crashed.attempt(harness.sessions, taken)  # the server said 250; SIGKILL before the commit
    assert outcome.state == "sent"

    harness.clock.advance(LEASE_S + 1)
    survivor = harness.sender()
    assert await survivor.drain_once(harness.sessions) == 1
    assert await crashed.finish(harness.sessions, taken, outcome) is False, "fenced: its lease was taken over"
    mails = harness.mail_to(harness.contacts.people[patient].email or "")
    assert len(mails) == 2 and len({m["Message-ID"] for m in mails}) == 1
    [row] = await harness.rows(cause)
    assert row.state == "sent"


async def test_two_senders_draining_together_send_each_notification_once(harness: Harness) -> None:
    patients = [harness.contacts.add() for _ in range(12)]
    for patient in patients:
        await harness.outreach(patient)
    first, second = harness.sender(notify_batch_size=4), harness.sender(notify_batch_size=4)

    async def drain(sender: NotificationSender) -> int:
        total = 0
        while claimed := await sender.drain_once(harness.sessions):
            total += claimed
        return total

    counts = await asyncio.gather(drain(first), drain(second))
    assert sum(counts) == 12
    for patient in patients:
        assert len(harness.mail_to(harness.contacts.people[patient].email or "")) == 1


async def test_a_claim_skips_rows_another_senders_claim_has_locked_instead_of_waiting(harness: Harness) -> None:
    causes = [await harness.outreach(harness.contacts.add()) for _ in range(4)]
    t = harness.tables.notifications
    async with harness.sessions.begin() as other:  # another sender's claim, between its SELECT and its COMMIT
        locked = set(await other.scalars(select(t.c.id).where(t.c.cause_event_id.in_(causes[:2])).with_for_update()))
        # Bounded only so that a claim that waits (no SKIP LOCKED) fails instead of hanging the suite.
        claimed = await asyncio.wait_for(harness.sender().claim(harness.sessions), timeout=30)
        assert {row.cause_event_id for row in claimed} == set(causes[2:])
    assert {row.id for row in await harness.sender().claim(harness.sessions)} == locked


async def test_an_unreachable_server_is_retried_with_backoff_then_the_notification_fails_once(harness: Harness) -> None:
    patient = harness.contacts.add()
    cause = await harness.outreach(patient)
    (closed,) = free_ports(1)
    sender = harness.sender(smtp_port=closed, notify_max_attempts=2)
    assert await sender.drain_once(harness.sessions) == 1
    [row] = await harness.rows(cause)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "smtp_unavailable")
    assert row.next_attempt_at == harness.clock.now + timedelta(seconds=10)
    assert await sender.drain_once(harness.sessions) == 0, "not before its backoff"
    harness.clock.advance(10)
    assert await sender.drain_once(harness.sessions) == 1
    [row] = await harness.rows(cause)
    assert (row.state, row.attempts, row.last_error) == ("failed", 2, "smtp_unavailable")
    assert [r.id for r in harness.failed] == [row.id], "the service's hook ran once, in the failing transaction"
    harness.clock.advance(3600)
    assert await sender.drain_once(harness.sessions) == 0


async def test_quiet_hours_hold_a_message_but_not_safety_outreach(harness: Harness) -> None:
    denver = ZoneInfo("America/Denver")
    patient = harness.contacts.add(time_zone="America/Denver")
    local = harness.clock.now.astimezone(denver)
    night = local.replace(hour=23, minute=0, second=0, microsecond=0)
    if night <= local:
        night += timedelta(days=1)
    harness.clock.now = night.astimezone(UTC)
    message = await harness.outreach(patient, Template.care_team_message)
    outreach = await harness.outreach(patient, Template.safety_outreach)
    sender = harness.sender()
    assert await sender.drain_once(harness.sessions) == 2
    [held] = await harness.rows(message)
    [sent] = await harness.rows(outreach)
    morning = datetime.combine(night.date() + timedelta(days=1), time(8, 0), tzinfo=denver)
    assert (held.state, held.attempts, held.last_error) == ("pending", 0, "quiet_hours")
    assert held.next_attempt_at == morning
    assert sent.state == "sent"
    harness.clock.now = morning.astimezone(UTC) - timedelta(seconds=1)
    assert await sender.drain_once(harness.sessions) == 0
    harness.clock.advance(1)
    assert await sender.drain_once(harness.sessions) == 1
    assert [r.state for r in await harness.rows(message)] == ["sent"]


async def test_sms_goes_only_to_opted_in_patients_and_a_later_opt_out_suppresses_a_pending_one(
    harness: Harness,
) -> None:
    patient = harness.contacts.add(phone="(720) 555-0142")
    async with harness.sessions.begin() as session:
        await record_sms_consent(session, harness.tables, patient_id=patient, opted_in=True, at=harness.clock.now)
    texted = await harness.outreach(patient)
    assert [r.channel for r in await harness.rows(texted)] == ["email", "sms"]
    assert await harness.sender().drain_once(harness.sessions) == 2
    [sms] = harness.mail_to("17205550142@sms.localhost")
    assert str(sms.get_payload()).strip().startswith("carecoord: your care team needs to reach you")

    again = await harness.outreach(patient)
    async with harness.sessions.begin() as session:
        await record_sms_consent(
            session, harness.tables, patient_id=patient, opted_in=False, at=harness.clock.now + timedelta(seconds=1)
        )
        # An older event arriving late does not opt them back in.
        await record_sms_consent(session, harness.tables, patient_id=patient, opted_in=True, at=harness.clock.now)
    await harness.sender().drain_once(harness.sessions)
    assert [(r.channel, r.state, r.last_error) for r in await harness.rows(again)] == [
        ("email", "sent", None),
        ("sms", "suppressed", "sms_opted_out"),
    ]
    assert len(harness.mail_to("17205550142@sms.localhost")) == 1
    later = await harness.outreach(patient)
    assert [r.channel for r in await harness.rows(later)] == ["email"]


async def test_a_staff_page_goes_to_the_directorys_addresses_and_a_missing_one_is_suppressed(harness: Harness) -> None:
    staff = f"dr-{uuid.uuid4().hex[:6]}"
    async with harness.sessions.begin() as session:
        await session.execute(
            harness.tables.staff_contacts.insert().values(
                staff_id=staff, email=f"{staff}@clinic.example", updated_by="op"
            )
        )
        await page_staff(session, harness.tables, cause_event_id=(cause := uuid.uuid4()), staff_id=staff)
    assert await harness.sender().drain_once(harness.sessions) == 2
    assert [(r.channel, r.state, r.last_error) for r in await harness.rows(cause)] == [
        ("email", "sent", None),
        ("sms", "suppressed", "no_contact"),
    ]
    [mail] = harness.mail_to(f"{staff}@clinic.example")
    assert mail["Subject"] == "carecoord: a review is waiting for you"
    assert harness.contacts.asked == 0, "staff addresses come from the directory, not intake"
