"""The demo clinicians the README tells `make run` users to seed are ones the API accepts."""

from __future__ import annotations

import pytest

from carecoord_scheduling.domain.policy import Role
from carecoord_scheduling.schemas import ClinicianIn
from carecoord_scheduling.seed import DEMO_CLINICIANS


@pytest.mark.parametrize("clinician_id", sorted(DEMO_CLINICIANS))
def test_every_demo_clinician_is_a_valid_request(clinician_id: str) -> None:
    clinician = ClinicianIn.model_validate(DEMO_CLINICIANS[clinician_id])
    assert clinician.weekly_availability


def test_the_demo_covers_both_roles() -> None:
    assert {ClinicianIn.model_validate(body).role for body in DEMO_CLINICIANS.values()} == set(Role)
