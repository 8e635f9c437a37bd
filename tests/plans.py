"""The treatment course the suite's plans use (within the program's limits, for depression), and the
treatment consent a patient signs before any session is authorised."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from carecoord_contracts import Envelope
from carecoord_contracts.common import ConsentDocument
from carecoord_contracts.intake import ConsentSigned
from carecoord_dosing import plans as dosing_plans
from carecoord_shared.messaging.unit_of_work import UnitOfWork

COURSE: dict[str, Any] = {
    "starting_dose_mg": 100,
    "max_dose_mg": 300,
    "max_step_mg": 50,
    "planned_sessions": 6,
    "indication": "depression",
    "diagnosis_codes": ["F33.1"],
}


# --- treatment consent (ADR 0016): dosing authorises no session without it ----------------------------

# The version of the ketamine treatment consent the suite's patients sign (intake's current one).
TREATMENT_CONSENT_VERSION = "2026.12.0"


def treatment_consent_signed(at: datetime | None = None) -> ConsentSigned:
    """ConsentSigned as intake announces the patient's signature of the ketamine treatment consent."""
    return ConsentSigned(
        document=ConsentDocument.ketamine_treatment,
        document_version=TREATMENT_CONSENT_VERSION,
        signed_at=at or datetime.now(UTC),
    )


async def sign_treatment_consent(uow: UnitOfWork, patient_id: uuid.UUID) -> None:
    """Dosing learns the patient signed (its handler's use case, in a transaction caused by the event):
    for tests that drive dosing's use cases directly and then authorise a session."""
    event = treatment_consent_signed()
    envelope = Envelope.wrap(event, patient_id=patient_id, producer="intake")
    async with uow.transaction(cause=envelope) as tx:
        await dosing_plans.consent_signed(tx, document_version=event.document_version, signed_at=event.signed_at)
