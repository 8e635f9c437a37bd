"""Across services: intake's eligibility decision books the initial evaluation in
scheduling, with no further call, with a clinician licensed in the patient's state."""

from __future__ import annotations

import pytest

from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.e2e.intake_journeys import complete_intake, registration

pytestmark = pytest.mark.e2e


async def test_an_eligible_registration_books_the_initial_evaluation_with_a_licensed_clinician(services: Stack) -> None:
    await journeys.clinician(services, "psychiatric_clinician", "IL", "America/Chicago")
    await journeys.clinician(services, "psychiatric_clinician", "CA", "America/Los_Angeles")  # not licensed in IL
    address = {"line1": "1 Wacker Dr", "city": "Chicago", "state": "IL", "postal_code": "60601"}
    patient = await complete_intake(
        services, registration(state_of_residence="IL", time_zone="America/Chicago", address=address)
    )

    booked = await eventually(lambda: _evaluation(services, patient), timeout=30, what="initial evaluation booked")
    async with api_client(timeout=10) as http:
        clinician = (
            await http.get(journeys.url(services, "scheduling", f"/v1/clinicians/{booked['clinician_id']}"))
        ).json()
    assert "IL" in clinician["licensed_states"]
    assert clinician["role"] == "psychiatric_clinician"


async def _evaluation(stack: Stack, patient: str) -> dict | None:
    return next(
        (a for a in await journeys.appointments(stack, patient) if a["appointment_type"] == "initial_evaluation"), None
    )


async def test_thoughts_of_self_harm_at_intake_open_an_urgent_review_in_safety(services: Stack) -> None:
    phq9 = ("POST", "/assessments", {"instrument": "phq9", "answers": [2, 2, 1, 2, 1, 1, 2, 1, 2]})  # item 9 = 2
    patient = await complete_intake(services, phq9=phq9)
    [review] = await eventually(lambda: journeys.reviews(services, patient), what="safety opened a review")  # type: ignore[arg-type]
    assert (review["reason"], review["priority"], review["triggers"]) == ("suicide_risk", "urgent", ["phq9_item9_1"])
