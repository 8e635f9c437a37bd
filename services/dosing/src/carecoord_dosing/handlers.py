"""Dosing's reactions to other services' events."""

from __future__ import annotations

from carecoord_shared.contracts.safety import TreatmentHoldReleased, TreatmentHoldRequested
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.unit_of_work import Transaction

from . import plans


def register(consumer: EventConsumer) -> None:
    @consumer.on(TreatmentHoldRequested)
    async def hold_requested(event: TreatmentHoldRequested, tx: Transaction) -> None:
        assert tx.cause is not None
        await plans.open_hold(
            tx, hold_id=event.hold_id, patient_id=tx.cause.patient_id, review_id=event.review_id, reason=event.reason
        )

    @consumer.on(TreatmentHoldReleased)
    async def hold_released(event: TreatmentHoldReleased, tx: Transaction) -> None:
        assert tx.cause is not None
        await plans.release_hold(tx, hold_id=event.hold_id, patient_id=tx.cause.patient_id, decision=event.decision.value)
