"""ETags on the plan and the review, If-Match on their decisions: a decision about a version someone else has
changed since is refused with 412 and changes nothing; the current ETag comes with the refusal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from carecoord_devstack.stack import Stack
from carecoord_dosing.models import jurisdictions as dosing_jurisdictions
from carecoord_safety.models import jurisdictions as safety_jurisdictions
from tests.auth import SERVICE_TOKEN, clinician_token
from tests.care import join_care_team
from tests.plans import COURSE
from tests.problem_walk import assert_problem
from tests.service_harness import ServiceHarness

STATE = "CO"


@pytest.fixture(scope="module")
async def safety(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "safety", database="safety_etags") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_etags") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def _resident(harness: ServiceHarness, table: Any) -> uuid.UUID:
    patient_id = uuid.uuid4()
    async with harness.uow.sessions.begin() as session:
        await session.execute(table.insert().values(patient_id=patient_id, state_of_residence=STATE))
    return patient_id


async def _report(safety: ServiceHarness, patient_id: uuid.UUID, symptom: str) -> str:
    body = {"patient_id": str(patient_id), "symptoms": [symptom], "grade": 2}
    response = await safety.http.post("/v1/side-effect-reports", json=body)
    assert response.status_code == 201, response.text
    return response.json()["review_id"]  # type: ignore[no-any-return]


async def test_a_review_decision_on_a_stale_version_is_refused_and_changes_nothing(safety: ServiceHarness) -> None:
    patient = await _resident(safety, safety_jurisdictions)
    review_id = await _report(safety, patient, "dizziness")
    await join_care_team(safety, patient, "dr-etag")
    clinician = safety.client(clinician_token("dr-etag", [STATE]))
    read = await clinician.get(f"/v1/reviews/{review_id}")
    assert read.status_code == 200, read.text
    seen = read.headers["ETag"]
    assert seen == f'"{read.json()["version"]}"'

    # A second report of the same reason joins the open review: a change the clinician has not seen.
    assert await _report(safety, patient, "headache") == review_id
    joined = await clinician.get(f"/v1/reviews/{review_id}")
    assert joined.headers["ETag"] != seen

    body = {"clinician_id": "dr-etag", "decision": "resume", "note": "fine"}
    stale = await clinician.post(f"/v1/reviews/{review_id}/resolve", json=body, headers={"If-Match": seen})
    problem = assert_problem(stale, 412)
    assert problem["code"] == "precondition_failed"
    assert problem["current_etag"] == stale.headers["ETag"] == joined.headers["ETag"]
    assert (await clinician.get(f"/v1/reviews/{review_id}")).json()["status"] == "open", "nothing was decided"

    # A weak tag never matches (RFC 9110: If-Match compares strongly); a list with the current one does.
    weak = await clinician.post(
        f"/v1/reviews/{review_id}/acknowledge",
        json={"clinician_id": "dr-etag"},
        headers={"If-Match": f"W/{joined.headers['ETag']}"},
    )
    assert_problem(weak, 412)
    current = joined.headers["ETag"]
    acknowledged = await clinician.post(
        f"/v1/reviews/{review_id}/acknowledge",
        json={"clinician_id": "dr-etag"},
        headers={"If-Match": f'"0", {current}'},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.headers["ETag"] != current, "the decision is a new version"
    resolved = await clinician.post(
        f"/v1/reviews/{review_id}/resolve", json=body, headers={"If-Match": acknowledged.headers["ETag"]}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"


async def test_if_match_star_or_none_decides_as_before_and_a_malformed_one_is_invalid(safety: ServiceHarness) -> None:
    patient = await _resident(safety, safety_jurisdictions)
    review_id = await _report(safety, patient, "nausea")
    await join_care_team(safety, patient, "dr-etag-star")
    clinician = safety.client(clinician_token("dr-etag-star", [STATE]))
    malformed = await clinician.post(
        f"/v1/reviews/{review_id}/acknowledge", json={"clinician_id": "dr-etag-star"}, headers={"If-Match": "3"}
    )
    problem = assert_problem(malformed, 422)
    assert [e["field"] for e in problem["errors"]] == ["header.If-Match"]
    star = await clinician.post(
        f"/v1/reviews/{review_id}/acknowledge", json={"clinician_id": "dr-etag-star"}, headers={"If-Match": "*"}
    )
    assert star.status_code == 200, star.text
    none = await clinician.post(
        f"/v1/reviews/{review_id}/resolve", json={"clinician_id": "dr-etag-star", "decision": "resume"}
    )
    assert none.status_code == 200, none.text


async def test_two_clinicians_cannot_overwrite_each_others_plan_decision(dosing: ServiceHarness) -> None:
    patient = await _resident(dosing, dosing_jurisdictions)
    await join_care_team(dosing, patient, "dr-first", "dr-second")
    first = dosing.client(clinician_token("dr-first", [STATE]))
    second = dosing.client(clinician_token("dr-second", [STATE]))
    created = await first.post("/v1/plans", json={"patient_id": str(patient), "clinician_id": "dr-first", **COURSE})
    assert created.status_code == 201, created.text
    plan_id, draft = created.json()["plan_id"], created.headers["ETag"]
    # Both read the draft; the first activates it.
    assert (await second.get(f"/v1/plans/{plan_id}")).headers["ETag"] == draft
    activated = await first.post(
        f"/v1/plans/{plan_id}/activate", json={"clinician_id": "dr-first"}, headers={"If-Match": draft}
    )
    assert activated.status_code == 200, activated.text
    assert activated.headers["ETag"] != draft
    # The second discontinues what they saw, a draft: refused, the plan stays active.
    stale = await second.post(
        f"/v1/plans/{plan_id}/discontinue",
        json={"clinician_id": "dr-second", "reason": "patient_request"},
        headers={"If-Match": draft},
    )
    assert assert_problem(stale, 412)["current_etag"] == activated.headers["ETag"]
    plan = await second.get(f"/v1/patients/{patient}/plan")
    assert plan.json()["status"] == "active" and plan.headers["ETag"] == activated.headers["ETag"]
    # A dose approval names the plan's ETag too.
    [proposal] = plan.json()["proposals"]
    approve = await second.post(
        f"/v1/dose-proposals/{proposal['proposal_id']}/approve",
        json={"clinician_id": "dr-second"},
        headers={"If-Match": draft},
    )
    assert_problem(approve, 412)
