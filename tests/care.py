"""Care relations arranged directly in a service's database, for integration tests whose subject is not how
the service learns them (ADR 0015: a licensed clinician reaches a patient only through a relation)."""

from __future__ import annotations

import uuid

from carecoord_shared.auth import replace_care_team
from tests.service_harness import ServiceHarness


async def join_care_team(
    harness: ServiceHarness, patient_id: uuid.UUID, prescriber_id: str | None, therapist_id: str | None = None
) -> None:
    """The patient's care team in ``harness``'s service is now exactly these (as CareTeamChanged would set it)."""
    table = harness.definition.metadata.tables["care_relations"]
    async with harness.uow.sessions.begin() as session:
        await replace_care_team(session, table, patient_id, prescriber_id, therapist_id)
