"""Safety's reactions to events: reports submitted through the patient app."""

from __future__ import annotations

from carecoord_shared.contracts.patient_app import SideEffectReportSubmitted
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.unit_of_work import Transaction

from . import reports
from .rules import RuleSet


def register_with(rules: RuleSet):  # type: ignore[no-untyped-def]
    def register(consumer: EventConsumer) -> None:
        @consumer.on(SideEffectReportSubmitted)
        async def report_submitted(event: SideEffectReportSubmitted, tx: Transaction) -> None:
            assert tx.cause is not None
            await reports.record_report(tx, rules, patient_id=tx.cause.patient_id, report=event, source="patient-app")

    return register
