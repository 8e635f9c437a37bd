"""A patient who withdraws their informed consent to ketamine treatment gets a clinician's review (ADR 0016).

Dosing has already stopped: it refuses every session without a standing consent and holds the plan
itself. The review is the clinical side: a clinician reaches the patient (why they withdrew; stopping
mid-course; a crisis behind it?) and decides whether the plan resumes once they sign again, changes, or
ends. It requests a hold, so the plan resumes only on that decision, and never on a new signature alone.
Telehealth and text-message consent are not safety matters: nothing opens for them.

Priority high, due within 24 hours: not urgent, since no dose can go ahead meanwhile, but a withdrawal
mid-course is a change a clinician should hear of within the day, as a missed check-in is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from carecoord_contracts.common import ConsentDocument, ReviewPriority
from carecoord_contracts.intake import ConsentWithdrawn
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from . import reviews
from .rules import ReviewRequest, RuleSet
from .timers import Clock

CONSENT_WITHDRAWN = "consent_withdrawn"

WITHDRAWAL_REVIEW = ReviewRequest(
    reason=CONSENT_WITHDRAWN,
    priority=ReviewPriority.high,
    due_within=timedelta(hours=24),
    hold=True,
    triggers=(CONSENT_WITHDRAWN,),
    rule_ids=(),
)


async def withdrawn(
    tx: HandlerTransaction, event: ConsentWithdrawn, *, rule_version: str, now: datetime
) -> reviews.ReviewOutcome | None:
    """Open (or join) the patient's consent_withdrawn review with its hold; None for another document."""
    if event.document is not ConsentDocument.ketamine_treatment:
        return None
    patient_id = tx.cause.patient_id
    await tx.lock_patient(patient_id)  # a statement of its own, before the loads (observations.py says why)
    return await reviews.open_or_join(
        tx,
        WITHDRAWAL_REVIEW,
        patient_id=patient_id,
        rule_version=rule_version,
        source_kind="consent",
        source_id=tx.cause.event_id,
        now=now,
    )


def register(consumer: EventConsumer, rules: RuleSet, clock: Clock) -> None:
    """The handler, for handlers.register_with (one line there)."""

    @consumer.on(ConsentWithdrawn)
    async def consent_withdrawn(event: ConsentWithdrawn, tx: HandlerTransaction) -> None:
        await withdrawn(tx, event, rule_version=rules.version, now=clock())
