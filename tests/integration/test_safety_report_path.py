"""The cost of safety's observation requests, and what it must not cost: one transaction per request.

POST /v1/side-effect-reports is the first hop of the safety loop (report -> TreatmentPlanPaused). Its
audit row commits in the same transaction as the report, its review, timer, trigger and hold (one commit,
one WAL flush), and the decision sends a fixed handful of statements whatever it opens. What that must
keep: every access leaves its audit row, a refusal and an access whose change then fails included, and
decisions about one patient stay serialised by the patient's lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Table, event, func, literal_column, select
from sqlalchemy.engine.interfaces import CacheStats

from carecoord_devstack.stack import Stack
from carecoord_safety.models import (
    audit,
    clinician_reviews,
    review_triggers,
    side_effect_reports,
    timers,
    treatment_holds,
)
from tests.auth import SERVICE_TOKEN, patient_token
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def safety(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "safety", database="safety_report_path") as harness:
        harness.client(SERVICE_TOKEN)  # harness.http: the first client made, so the service's
        yield harness


@dataclass
class Traffic:
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    # Statements SQLAlchemy compiled again instead of taking from its compiled cache.
    compiled: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if not s.startswith("SELECT")]


@contextmanager
def traffic(harness: ServiceHarness) -> Iterator[Traffic]:
    """What the service's engine sends while the block runs: each statement (its first word or two) and each commit."""
    engine = harness.app.runtime.engine.sync_engine
    seen = Traffic()

    def statement(conn: Any, cursor: Any, sql: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.statements.append(" ".join(sql.split()[:3]))
        if context.cache_hit is not CacheStats.CACHE_HIT:
            seen.compiled.append(seen.statements[-1])

    def commit(conn: Any) -> None:
        seen.commits += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def severe(patient: uuid.UUID, report_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "patient_id": str(patient),
        "report_id": str(report_id or uuid.uuid4()),
        "symptoms": ["chest_pain"],
        "grade": 3,
    }


def xmin(table: Table) -> ColumnElement[str]:
    """The id of the transaction that wrote the row (a system column)."""
    return literal_column(f"{table.name}.xmin::text").label("xmin")


async def audit_rows(harness: ServiceHarness, patient: uuid.UUID) -> list[Any]:
    return await harness.rows(
        select(audit.c.action, audit.c.resource, audit.c.outcome, audit.c.resource_id, xmin(audit))
        .where(audit.c.patient_id == patient)
        .order_by(audit.c.id)
    )


async def test_a_severe_report_and_its_audit_row_commit_once_in_six_statements(safety: ServiceHarness) -> None:
    patient = uuid.uuid4()
    client = safety.client(patient_token(patient))
    with traffic(safety) as sent:
        response = await client.post("/v1/side-effect-reports", json=severe(patient))
    assert response.status_code == 201, response.text
    assert response.json()["escalated"] and response.json()["hold_requested"]
    # One transaction: the audit row, the lock, one load of the patient's reports, one of their unresolved
    # reviews with who could take the review it opens (care team, rota, absences), one save (report,
    # reviews, timers, triggers, hold), the outbox.
    assert sent.commits == 1
    assert len(sent.statements) <= 6, sent.statements
    [row] = await audit_rows(safety, patient)
    assert (row.action, row.resource, row.outcome) == ("submit", "side-effect-report", "allowed")
    [(report_xmin,)] = await safety.rows(
        select(xmin(side_effect_reports)).where(side_effect_reports.c.patient_id == patient)
    )
    assert row.xmin == report_xmin  # written by the same transaction as the report


async def test_a_severe_report_compiles_no_statement_once_warm(safety: ServiceHarness) -> None:
    """Every statement, the save of five writes included, comes from SQLAlchemy's compiled cache."""
    for _ in range(2):
        patient = uuid.uuid4()
        with traffic(safety) as sent:
            response = await safety.http.post("/v1/side-effect-reports", json=severe(patient))
        assert response.status_code == 201 and response.json()["hold_requested"]
    assert sent.statements and not sent.compiled, sent.compiled


async def test_a_report_joining_an_open_review_adds_its_trigger_and_no_second_hold(safety: ServiceHarness) -> None:
    patient = uuid.uuid4()
    first = await safety.http.post("/v1/side-effect-reports", json=severe(patient))
    with traffic(safety) as sent:
        second = await safety.http.post("/v1/side-effect-reports", json=severe(patient))
    assert first.status_code == second.status_code == 201
    assert second.json()["review_ids"] == first.json()["review_ids"]
    assert first.json()["hold_requested"] and not second.json()["hold_requested"]
    # Joining an open review reassigns nobody: no lookup of who could take it.
    assert sent.commits == 1 and len(sent.statements) <= 6, sent.statements
    reviews = await safety.rows(select(clinician_reviews.c.review_id).where(clinician_reviews.c.patient_id == patient))
    holds = await safety.rows(select(treatment_holds.c.hold_id).where(treatment_holds.c.patient_id == patient))
    overdue = await safety.rows(select(timers.c.timer_id).where(timers.c.patient_id == patient))
    triggers = await safety.rows(
        select(func.count())
        .select_from(review_triggers)
        .where(review_triggers.c.review_id.in_([r[0] for r in reviews]))
    )
    assert len(holds) == 1 and len(overdue) == len(reviews) == len(first.json()["review_ids"])
    assert triggers[0][0] == 2 * len(reviews)
    assert [e["review_id"] for e in await safety.emitted("ClinicianReviewOpened", patient_id=patient)] == [
        str(r) for r in first.json()["review_ids"]
    ]
    assert len(await safety.emitted("TreatmentHoldRequested", patient_id=patient)) == 1


async def test_a_resubmitted_report_returns_its_first_outcome_and_emits_nothing(safety: ServiceHarness) -> None:
    patient, report_id = uuid.uuid4(), uuid.uuid4()
    first = await safety.http.post("/v1/side-effect-reports", json=severe(patient, report_id))
    with traffic(safety) as sent:
        again = await safety.http.post("/v1/side-effect-reports", json=severe(patient, report_id))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert sent.commits == 1 and "INSERT INTO outbox" not in sent.writes
    assert sent.writes == ["INSERT INTO audit_log"]
    assert len(await safety.emitted("SideEffectReported", patient_id=patient)) == 1


async def test_a_refused_report_commits_its_denied_row_and_nothing_else(safety: ServiceHarness) -> None:
    patient = uuid.uuid4()
    someone_else = safety.client(patient_token(uuid.uuid4()))
    with traffic(safety) as sent:
        response = await someone_else.post("/v1/side-effect-reports", json=severe(patient))
    assert response.status_code == 403
    assert sent.commits == 1 and sent.writes == ["INSERT INTO audit_log"]
    [row] = await audit_rows(safety, patient)
    assert (row.action, row.resource, row.outcome) == ("submit", "side-effect-report", "denied")
    assert not await safety.rows(
        select(side_effect_reports.c.report_id).where(side_effect_reports.c.patient_id == patient)
    )
    assert not await safety.emitted_envelopes(patient_id=patient)


async def test_an_allowed_decision_that_a_rule_then_refuses_still_leaves_its_audit_row(safety: ServiceHarness) -> None:
    """The allowed row rides in the change's transaction; when the change rolls back it is written on its own."""
    patient = uuid.uuid4()
    opened = await safety.http.post("/v1/side-effect-reports", json=severe(patient))
    review_id = opened.json()["review_ids"][0]
    ack = {"clinician_id": "dr-audit"}
    assert (await safety.http.post(f"/v1/reviews/{review_id}/acknowledge", json=ack)).status_code == 200
    again = await safety.http.post(f"/v1/reviews/{review_id}/acknowledge", json=ack)
    assert again.status_code == 409  # only an open review can be acknowledged: nothing changed
    rows = [(r.action, r.outcome, r.resource_id) for r in await audit_rows(safety, patient)]
    assert rows == [
        ("submit", "allowed", opened.json()["report_id"]),
        ("acknowledge", "allowed", review_id),
        ("acknowledge", "allowed", review_id),
    ]


async def test_concurrent_severe_reports_about_one_patient_open_one_review_and_one_hold(safety: ServiceHarness) -> None:
    """The patient's lock still serialises the decisions: each report sees the review the one before opened."""
    patient = uuid.uuid4()
    responses = await asyncio.gather(
        *(safety.http.post("/v1/side-effect-reports", json=severe(patient)) for _ in range(6))
    )
    assert [r.status_code for r in responses] == [201] * 6
    assert len({tuple(r.json()["review_ids"]) for r in responses}) == 1
    assert sum(r.json()["hold_requested"] for r in responses) == 1
    holds = await safety.rows(select(treatment_holds.c.hold_id).where(treatment_holds.c.patient_id == patient))
    assert len(holds) == 1
    assert len(await audit_rows(safety, patient)) == 6


async def test_a_report_asking_for_two_reviews_opens_both_in_one_save(safety: ServiceHarness) -> None:
    """Two reviews (a red flag, and a code the rules do not know): two of each write in the one save statement."""
    patient = uuid.uuid4()
    body = severe(patient) | {"symptoms": ["chest_pain", "glowing_elbows"]}
    with traffic(safety) as sent:
        response = await safety.http.post("/v1/side-effect-reports", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["unknown_symptoms"] == ["glowing_elbows"]
    assert len(response.json()["review_ids"]) == 2 and response.json()["hold_requested"]
    assert sent.commits == 1 and len(sent.statements) <= 6, sent.statements
    reviews = await safety.rows(
        select(clinician_reviews.c.review_id, clinician_reviews.c.reason, clinician_reviews.c.triggers).where(
            clinician_reviews.c.patient_id == patient
        )
    )
    assert {r.review_id for r in reviews} == {uuid.UUID(r) for r in response.json()["review_ids"]}
    unknown = next(r for r in reviews if r.reason == "unrecognised_symptom")
    assert unknown.triggers == ["unknown_symptom_glowing_elbows"]
    overdue = await safety.rows(select(timers.c.subject_id).where(timers.c.patient_id == patient))
    assert {t.subject_id for t in overdue} == {r.review_id for r in reviews}
    holds = await safety.rows(select(treatment_holds.c.review_id).where(treatment_holds.c.patient_id == patient))
    assert len(holds) == 1 and holds[0].review_id != unknown.review_id  # the unknown code holds nothing
    opened = await safety.emitted("ClinicianReviewOpened", patient_id=patient)
    assert {e["review_id"] for e in opened} == set(response.json()["review_ids"])
