"""Who may call safety's HTTP API: every route, every role, the patient's own data, licensed states, the audit log.

The policy is the table in carecoord_safety.routes's docstring; each case asserts the real status code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.e2e import access_cases as ac
from tests.e2e.access_cases import CLINICIAN_OR_SERVICE, PATIENT_CARE, Caller, Endpoint, Request, route

pytestmark = pytest.mark.e2e

SAFETY = "safety"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: uuid.UUID  # resident in Colorado
    other_patient_id: uuid.UUID  # resident in New York
    co_review: uuid.UUID
    ny_review: uuid.UUID
    co_report: uuid.UUID  # the side-effect report that opened co_review


@pytest.fixture(scope="module")
async def world(services: Stack) -> World:
    co, ny = await ac.registered_patient(services, "CO", SAFETY), await ac.registered_patient(services, "NY", SAFETY)
    await ac.care_team(services, co, "CO", SAFETY)
    await ac.care_team(services, ny, "NY", SAFETY)
    (co_review, co_report), (ny_review, _) = await _open_review(services, co), await _open_review(services, ny)
    return World(services, co, ny, co_review, ny_review, co_report)


async def _open_review(stack: Stack, patient_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A review opened by a side-effect report: (the review, the report)."""
    body = {"patient_id": str(patient_id), "symptoms": ["dizziness"], "grade": 2}
    outcome = await ac.call(stack, SAFETY, Request("POST", "/v1/side-effect-reports", body), ac.service())
    assert outcome.status_code == 201 and outcome.json()["review_id"], outcome.text
    return uuid.UUID(outcome.json()["review_id"]), uuid.UUID(outcome.json()["report_id"])


def _now() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def _observation(world: World, **fields: Any) -> dict[str, Any]:
    """A patient-submitted observation about the module's patient."""
    return {"patient_id": str(world.patient_id), **fields}


ENDPOINTS = [
    Endpoint(
        "submit side-effect report",
        route(
            "POST",
            "/v1/side-effect-reports",
            lambda w, c: _observation(w, symptoms=[f"s{uuid.uuid4().hex[:8]}"], grade=1),
        ),
        PATIENT_CARE,
        audited_as=("submit", "side-effect-report"),
        ok=201,
    ),
    Endpoint(
        "submit vitals",
        route(
            "POST",
            "/v1/vitals",
            lambda w, c: _observation(w, systolic=121, diastolic=79, measured_at=_now(), context="routine"),
        ),
        PATIENT_CARE,
        audited_as=("submit", "vitals"),
        ok=201,
    ),
    Endpoint(
        "submit mood check-in",
        route(
            "POST",
            "/v1/mood-check-ins",
            lambda w, c: _observation(w, phq9_items=[1, 1, 0, 1, 0, 0, 1, 0, 0], answered_at=_now()),
        ),
        PATIENT_CARE,
        audited_as=("submit", "mood-check-in"),
        ok=201,
    ),
    Endpoint(
        "list a patient's side-effect reports",
        route("GET", "/v1/patients/{w.patient_id}/side-effect-reports"),
        PATIENT_CARE,
        audited_as=("list", "side-effect-report"),
    ),
    Endpoint(
        "list a patient's vitals",
        route("GET", "/v1/patients/{w.patient_id}/vitals"),
        PATIENT_CARE,
        audited_as=("list", "vitals"),
    ),
    Endpoint(
        "list a patient's mood check-ins",
        route("GET", "/v1/patients/{w.patient_id}/mood-check-ins"),
        PATIENT_CARE,
        audited_as=("list", "mood-check-in"),
    ),
    Endpoint(
        "list a patient's reviews",
        route("GET", "/v1/reviews", params=lambda w, c: {"patient_id": str(w.patient_id)}),
        PATIENT_CARE,
        audited_as=("list", "review"),
    ),
    Endpoint("read a review", route("GET", "/v1/reviews/{w.co_review}"), PATIENT_CARE, audited_as=("read", "review")),
    *(
        Endpoint(
            f"search the patient's {kind} (FHIR)",
            route("GET", f"/fhir/R4/{kind}", params=lambda w, _c: {"patient": str(w.patient_id)}),
            PATIENT_CARE,
            audited_as=("list", audited),
        )
        for kind, audited in (
            ("Observation", "observation"),
            ("AdverseEvent", "side-effect-report"),
            ("Task", "review"),
        )
    ),
    Endpoint(
        "read an AdverseEvent (FHIR)",
        route("GET", "/fhir/R4/AdverseEvent/{w.co_report}"),
        PATIENT_CARE,
        audited_as=("read", "side-effect-report"),
    ),
    Endpoint(
        "read a Task (FHIR)", route("GET", "/fhir/R4/Task/{w.co_review}"), PATIENT_CARE, audited_as=("read", "review")
    ),
    # Decisions change the review: their allowed cases are in test_review_decisions.
    Endpoint(
        "acknowledge a review",
        route("POST", "/v1/reviews/{w.co_review}/acknowledge", lambda w, c: {"clinician_id": c.subject}),
        CLINICIAN_OR_SERVICE,
        audited_as=("acknowledge", "review"),
        ok=None,
        in_own_name=True,
    ),
    Endpoint(
        "resolve a review",
        route(
            "POST", "/v1/reviews/{w.co_review}/resolve", lambda w, c: {"clinician_id": c.subject, "decision": "resume"}
        ),
        CLINICIAN_OR_SERVICE,
        audited_as=("resolve", "review"),
        ok=None,
        in_own_name=True,
    ),
    Endpoint("read rule versions", route("GET", "/v1/rules"), frozenset({Role.CLINICIAN, Role.OPERATOR, Role.SERVICE})),
    Endpoint(
        "read the symptom vocabulary",
        route("GET", "/v1/rules/symptoms"),
        frozenset({Role.PATIENT, Role.CLINICIAN, Role.OPERATOR, Role.SERVICE}),
    ),
    Endpoint("shadow replay", route("POST", "/v1/rules/shadow", {"version": "2026.11.1"}), CLINICIAN_OR_SERVICE),
    ac.FHIR_METADATA,
]


# 401 without, with a forged or an expired token; 403 for each role not admitted; for patient-scoped
# routes the patient themself and a licensed clinician allowed, another patient and a clinician
# licensed elsewhere refused; the audit row of each patient check.
@pytest.mark.parametrize(("endpoint", "credential"), ac.credential_cases(ENDPOINTS), ids=str)
async def test_no_forged_or_expired_token_gets_401(world: ac.World, endpoint: Endpoint, credential: str) -> None:
    await ac.expect_unauthenticated(world, SAFETY, endpoint, credential)


@pytest.mark.parametrize(("endpoint", "role"), ac.role_cases(ENDPOINTS), ids=str)
async def test_a_role_not_admitted_gets_403(world: ac.World, endpoint: Endpoint, role: Role) -> None:
    await ac.expect_role_refused(world, SAFETY, endpoint, role)


@pytest.mark.parametrize(("endpoint", "who"), ac.scope_cases(ENDPOINTS), ids=str)
async def test_patient_data_reaches_only_the_patient_and_licensed_clinicians(
    world: ac.World, endpoint: Endpoint, who: str
) -> None:
    await ac.expect_scope(world, SAFETY, endpoint, who)


async def test_the_worklist_shows_a_clinician_only_their_related_patients_in_their_licensed_states(
    services: Stack, world: World
) -> None:
    async def worklist(caller: Caller) -> set[str]:
        shown: set[str] = set()
        params: dict[str, str] = {"limit": "200"}
        while True:
            response = await ac.call(services, SAFETY, Request("GET", "/v1/reviews", params=params), caller)
            assert response.status_code == 200, response.text
            await ac.assert_audited(services, SAFETY, caller, "list", "review", None, "allowed")
            shown |= {r["review_id"] for r in response.json()["items"]}
            if response.json()["next_cursor"] is None:
                return shown
            params = {"limit": "200", "cursor": response.json()["next_cursor"]}

    co, ny = str(world.co_review), str(world.ny_review)
    colorado = await worklist(ac.clinician("CO", subject=ac.team_member(world.patient_id)))
    assert co in colorado and ny not in colorado
    new_york = await worklist(ac.clinician("NY", subject=ac.team_member(world.other_patient_id)))
    assert ny in new_york and co not in new_york
    # Licensed in both states, on neither team, on call nowhere: neither patient (ADR 0015).
    assert not {co, ny} & await worklist(ac.clinician("CO", "NY"))
    assert {co, ny} <= await worklist(ac.service())

    refused = await ac.call(services, SAFETY, Request("GET", "/v1/reviews"), ac.patient(world.patient_id))
    assert refused.status_code == 403 and "patient_id" in refused.json()["detail"], refused.text


async def test_review_decisions_are_a_related_clinicians_in_their_own_name_or_a_services(services: Stack) -> None:
    patient_id = await ac.registered_patient(services, "CO", SAFETY)
    await ac.care_team(services, patient_id, "CO", SAFETY)

    async def decide(review: uuid.UUID, step: str, caller: Caller, **body: Any) -> int:
        request = Request("POST", f"/v1/reviews/{review}/{step}", {"clinician_id": caller.subject, **body})
        response = await ac.call(services, SAFETY, request, caller)
        return response.status_code

    first, _ = await _open_review(services, patient_id)
    elsewhere, outsider = ac.clinician("NY"), ac.clinician("CO")
    assert await decide(first, "acknowledge", elsewhere) == 403
    await ac.assert_audited(services, SAFETY, elsewhere, "acknowledge", "review", patient_id, "denied")
    assert await decide(first, "acknowledge", outsider) == 403  # licensed, but not on the patient's team
    await ac.assert_audited(services, SAFETY, outsider, "acknowledge", "review", patient_id, "denied")
    dr = ac.clinician("CO", subject=ac.team_member(patient_id))
    assert await decide(first, "acknowledge", dr) == 200
    await ac.assert_audited(services, SAFETY, dr, "acknowledge", "review", patient_id, "allowed")
    assert await decide(first, "resolve", dr, decision="resume") == 200
    await ac.assert_audited(services, SAFETY, dr, "resolve", "review", patient_id, "allowed")
    detail = await ac.call(services, SAFETY, Request("GET", f"/v1/reviews/{first}"), ac.patient(patient_id))
    assert (detail.json()["status"], detail.json()["acknowledged_by"]) == ("resolved", dr.subject)

    second, _ = await _open_review(services, patient_id)
    assert second != first
    system = ac.service()
    assert await decide(second, "acknowledge", system) == 200
    assert await decide(second, "resolve", system, decision="resume") == 200
    assert [r["action"] for r in await ac.audit_rows(services, SAFETY, system)] == ["acknowledge", "resolve"]

    missing = await decide(uuid.uuid4(), "resolve", dr, decision="resume")
    assert missing == 404


async def test_a_clinician_asking_about_a_patient_of_unknown_state_is_refused_and_told_why(services: Stack) -> None:
    stranger = uuid.uuid4()  # never registered: safety does not know the state
    dr = ac.clinician("CO")
    response = await ac.call(services, SAFETY, Request("GET", "/v1/reviews", params={"patient_id": str(stranger)}), dr)
    assert response.status_code == 403
    assert "does not know the patient's state" in response.json()["detail"]
    await ac.assert_audited(services, SAFETY, dr, "list", "review", stranger, "denied")


async def test_rules_are_readable_by_clinicians_operators_and_services(services: Stack) -> None:
    for caller in (ac.clinician("CO"), ac.operator(), ac.service()):
        response = await ac.call(services, SAFETY, Request("GET", "/v1/rules"), caller)
        assert response.status_code == 200 and response.json()["current"], response.text


async def test_a_clinicians_shadow_replay_covers_only_their_related_patients(services: Stack, world: World) -> None:
    async def replayed(caller: Caller) -> int:
        response = await ac.call(
            services, SAFETY, Request("POST", "/v1/rules/shadow", {"version": "2026.11.1"}), caller
        )
        assert response.status_code == 200, response.text
        row = (await ac.audit_rows(services, SAFETY, caller))[-1]  # a team member has rows of other cases too
        assert (row["action"], row["resource"], row["resource_id"], row["outcome"]) == (
            "replay",
            "rules-shadow",
            "2026.11.1",
            "allowed",
        )
        return response.json()["observations_replayed"]  # type: ignore[no-any-return]

    team = ac.clinician("CO", subject=ac.team_member(world.patient_id))
    colorado, everyone = await replayed(team), await replayed(ac.service())
    assert 1 <= colorado < everyone  # the Colorado patient's report, not the New York one's
    assert await replayed(ac.clinician("CO")) == 0  # licensed there, related to nobody
    assert await replayed(ac.clinician("VT")) == 0  # no patient of this test stack lives in Vermont


async def test_every_role_reads_what_fhir_is_served_here_unaudited(world: World) -> None:
    await ac.expect_admitted(world, SAFETY, ac.FHIR_METADATA, audited=False)
