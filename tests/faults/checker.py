"""The checker: after the system has quiesced, compare the history (what was sent)
with what every service holds, read straight from each service's database.

Categories, each a count that must be 0:
- lost: an acknowledged report safety does not hold; an outbox row never
  published, or marked sent and not on its topic; an event a consumer handles (it has handled its type) missing
  from that consumer's inbox; a completed visit without its charge, a
  claimable charge without its claim;
- missed: an escalation the domain table demands (expectations.py) that did
  not happen: no review of the window, no hold, plan not paused, dosing
  sessions still booked for a paused plan;
- spurious: a review or hold the table does not call for;
- duplicated: more than one review per kind, hold, pause, booking (evaluation,
  course step, review appointment), charge per visit or claim per charge;
- reordered: one patient's events (on one topic) whose first copies on the
  topic are in an order other than the one they were produced in (outbox id
  order); handled by a consumer in another order (inbox times); reports
  handled in an order other than the one they were sent in.

Both order checks keep the first copy of an event that landed or was delivered
twice, as consumers do: they read a partition in offset order and their inbox
applies the first copy (its processed_at is the first handling's), dropping
the rest. The inbox times cannot order events handled in one transaction
(a batch shares one now()), which is where a relay that let a later event of a
patient overtake an earlier one would mostly show: the check on the log itself
sees that whatever the consumers' batching.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from carecoord_contracts.topics import BUSINESS_TOPICS, SERVICES, dead_letter_topic, topics_consumed_by
from carecoord_devstack.stack import Stack
from tests.kafka_io import group_caught_up, read_topic

from .expectations import expected, window_of
from .history import History

CATEGORIES = ("lost", "missed", "spurious", "duplicated", "reordered")


@dataclass
class Findings:
    counts: Counter[str] = field(default_factory=lambda: Counter({c: 0 for c in CATEGORIES}))
    details: list[str] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)  # what was looked at, for the figures

    def add(self, category: str, detail: str, n: int = 1) -> None:
        self.counts[category] += n
        if len(self.details) < 60:
            self.details.append(f"{category}: {detail}")


async def rows(stack: Stack, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.postgres.dsn(service))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def quiesce(stack: Stack, timeout: float) -> None:
    """Until every outbox is published, no patient is parked and every consumer group has consumed all its topics."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            quiet = await _quiet(stack)
        except Exception:  # a broker still electing its coordinator: ask again
            quiet = False
        if quiet:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the system did not quiesce: outbox rows unsent or consumer groups behind")
        await asyncio.sleep(1.0)


async def _quiet(stack: Stack) -> bool:
    for service in SERVICES:
        if (await rows(stack, service, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"))[0]["n"]:
            return False
        # A patient parked behind a transient failure is released by the service itself.
        if (await rows(stack, service, "SELECT count(*) AS n FROM parked_events"))[0]["n"]:
            return False
    for service in SERVICES:
        for topic in topics_consumed_by(service):
            if not await group_caught_up(stack.kafka.bootstrap, f"carecoord.{service}", topic.name):
                return False
    return True


async def unclaimed(stack: Stack) -> int:
    """Insured charges billing has not yet put on a claim (its exchange runs on a timer)."""
    [row] = await rows(
        stack,
        "billing",
        "SELECT count(*) AS n FROM charges c WHERE c.self_pay IS FALSE AND c.status <> 'voided' "
        "AND NOT EXISTS (SELECT 1 FROM claims WHERE claims.charge_id = c.charge_id)",
    )
    return int(row["n"])


async def check(stack: Stack, history: History) -> Findings:
    findings = Findings()
    await _lost_reports(stack, history, findings)
    await _deliveries_and_order(stack, findings)
    await _log_order(stack, findings)
    await _report_order(stack, history, findings)
    await _escalations(stack, history, findings)
    await _bookings(stack, history, findings)
    await _billing(stack, history, findings)
    return findings


async def _lost_reports(stack: Stack, history: History, findings: Findings) -> None:
    held = {
        r["report_id"]: r
        for r in await rows(stack, "safety", "SELECT report_id, patient_id, grade FROM side_effect_reports")
    }
    for journey, sent in history.reports():
        if not sent.acknowledged:
            continue
        findings.checked["reports acknowledged"] += 1
        row = held.get(sent.report_id)
        if row is None or row["grade"] != sent.grade or row["patient_id"] != journey.patient_id:
            findings.add("lost", f"report {sent.report_id} ({sent.channel}, grade {sent.grade}) not held by safety")


async def _deliveries_and_order(stack: Stack, findings: Findings) -> None:
    """Every published event reaches every consumer that handles its type, in the producer's order per patient."""
    outboxes = {
        s: await rows(stack, s, "SELECT id, event_id, topic, key, event_type, sent_at FROM outbox ORDER BY id")
        for s in SERVICES
    }
    inboxes = {s: await rows(stack, s, "SELECT event_id, event_type, processed_at FROM inbox") for s in SERVICES}
    consumers = {t.name: t.consumers for t in BUSINESS_TOPICS}
    for producer, outbox in outboxes.items():
        for row in outbox:
            findings.checked["events published"] += 1
            if row["sent_at"] is None:
                findings.add("lost", f"{producer} never published {row['event_type']} {row['event_id']}")
        for consumer in SERVICES:
            handled_types = {r["event_type"] for r in inboxes[consumer]}
            processed = {r["event_id"]: r["processed_at"] for r in inboxes[consumer]}
            per_key: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for row in outbox:
                if consumer not in consumers.get(row["topic"], ()) or row["event_type"] not in handled_types:
                    continue
                findings.checked["deliveries"] += 1
                if row["event_id"] not in processed:
                    findings.add("lost", f"{consumer} never handled {producer}'s {row['event_type']} {row['event_id']}")
                    continue
                per_key[(row["topic"], row["key"])].append((row["event_type"], processed[row["event_id"]]))
            for (topic, key), handled in per_key.items():
                _count_inversions(findings, handled, f"{consumer} on {topic} for patient {key}")


def _count_inversions(
    findings: Findings,
    handled: list[tuple[str, Any]],
    where: str,
    *,
    checked: str = "ordered sequences",
    verb: str = "handled",
) -> None:
    """``handled`` in production order, with the time (or position) each was handled; a later one first is reordered."""
    findings.checked[checked] += 1
    for (before_type, before), (after_type, after) in itertools.pairwise(handled):
        if after < before:
            findings.add("reordered", f"{where}: {after_type} {verb} before the earlier {before_type}")


async def _log_order(stack: Stack, findings: Findings) -> None:
    """Per producer, topic and patient: every row marked sent is on the topic, and the first
    copies are in outbox id order (a relay retry after a batch failed for good may land a
    copy twice; consumers keep the first)."""
    produced: dict[str, list[tuple[str, Any]]] = defaultdict(list)  # topic -> (producer, row), id order
    for service in SERVICES:
        for row in await rows(
            stack, service, "SELECT event_id, topic, key, event_type FROM outbox WHERE sent_at IS NOT NULL ORDER BY id"
        ):
            produced[row["topic"]].append((service, row))
    for topic, written in sorted(produced.items()):
        first: dict[str, tuple[int, int]] = {}
        copies: Counter[str] = Counter()
        for record in await read_topic(stack.kafka.bootstrap, topic):
            event_id = _event_id(record.value)
            if event_id is not None:  # not an envelope: the hostile producer's
                copies[event_id] += 1
                first.setdefault(event_id, (record.partition, record.offset))  # offset order per partition
        per_key: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
        for producer, row in written:
            findings.checked["events on the log"] += 1
            landed = first.get(str(row["event_id"]))
            if landed is None:
                findings.add("lost", f"{producer}'s {row['event_type']} {row['event_id']} marked sent, not on {topic}")
                continue
            per_key[(producer, row["key"])].append((row["event_type"], landed))
        for (producer, key), landed_at in per_key.items():
            _count_inversions(
                findings,
                landed_at,
                f"{producer} on {topic} for patient {key}",
                checked="ordered sequences on the log",
                verb="landed",
            )
        findings.checked["events on the log twice or more"] += sum(1 for n in copies.values() if n > 1)


def _event_id(value: bytes | None) -> str | None:
    try:
        event_id = json.loads(value or b"").get("event_id")
    except (ValueError, AttributeError):
        return None
    return event_id if isinstance(event_id, str) else None


async def _report_order(stack: Stack, history: History, findings: Findings) -> None:
    inbox = {
        r["event_id"]: r["processed_at"]
        for r in await rows(stack, "safety", "SELECT event_id, processed_at FROM inbox")
    }
    received = {
        r["report_id"]: r["received_at"]
        for r in await rows(stack, "safety", "SELECT report_id, received_at FROM side_effect_reports")
    }
    for journey in history.journeys:
        sent = [r for r in journey.reports if r.acknowledged]
        if sent and sent[0].channel == "kafka":
            handled = [(f"report grade {r.grade}", inbox[r.event_id]) for r in sent if r.event_id in inbox]
        else:
            handled = [(f"report grade {r.grade}", received[r.report_id]) for r in sent if r.report_id in received]
        if len(handled) > 1:
            _count_inversions(findings, handled, f"safety, patient {journey.patient_id}'s reports")


async def _escalations(stack: Stack, history: History, findings: Findings) -> None:
    reviews = await rows(
        stack, "safety", "SELECT patient_id, review_id, status, opened_at, due_at FROM clinician_reviews"
    )
    safety_holds = Counter(
        r["patient_id"] for r in await rows(stack, "safety", "SELECT patient_id FROM treatment_holds")
    )
    plans = {
        r["plan_id"]: r["status"] for r in await rows(stack, "dosing", "SELECT plan_id, status FROM treatment_plans")
    }
    pauses = Counter(
        r["plan_id"]
        for r in await rows(stack, "dosing", "SELECT plan_id FROM plan_transitions WHERE to_status = 'paused'")
    )
    dosing_holds = Counter(
        r["patient_id"] for r in await rows(stack, "dosing", "SELECT patient_id FROM treatment_holds")
    )
    by_patient: dict[uuid.UUID, Counter[int]] = defaultdict(Counter)
    for r in reviews:
        if r["status"] != "resolved":
            by_patient[r["patient_id"]][window_of((r["due_at"] - r["opened_at"]).total_seconds() / 3600)] += 1
    for journey in history.journeys:
        if journey.patient_id is None or not journey.reports or not all(r.acknowledged for r in journey.reports):
            continue
        patient, want = journey.patient_id, expected([(r.grade, r.symptoms) for r in journey.reports])
        findings.checked["patients checked for escalation"] += 1
        findings.checked["escalations expected"] += len(want.review_windows)
        got = by_patient.get(patient, Counter())
        for window in want.review_windows:
            if got[window] == 0:
                findings.add("missed", f"patient {patient}: no review due within {window} h")
            elif got[window] > 1:
                findings.add(
                    "duplicated", f"patient {patient}: {got[window]} reviews due within {window} h", got[window] - 1
                )
        for window, n in got.items():
            if window not in want.review_windows:
                findings.add("spurious", f"patient {patient}: {n} review(s) due within {window} h", n)
        for where, n in (
            ("safety holds", safety_holds[patient]),
            ("dosing holds", dosing_holds[patient]),
            ("pauses", pauses[journey.plan_id]),
        ):
            _exactly(findings, patient, where, n, 1 if want.hold else 0)
        if journey.plan_active:
            status = plans.get(journey.plan_id)
            if want.hold and status != "paused":
                findings.add("missed", f"patient {patient}: plan {status}, not paused")
            if not want.hold and status != "active":
                findings.add("spurious", f"patient {patient}: plan {status}, not active")


def _exactly(findings: Findings, patient: uuid.UUID, what: str, got: int, want: int) -> None:
    if got < want:
        findings.add("missed", f"patient {patient}: {got} {what}, expected {want}")
    elif got > want:
        findings.add(
            "duplicated" if want else "spurious", f"patient {patient}: {got} {what}, expected {want}", got - want
        )


async def _bookings(stack: Stack, history: History, findings: Findings) -> None:
    appointments = await rows(
        stack,
        "scheduling",
        "SELECT patient_id, plan_id, review_id, appointment_type, course_session, status, cancel_reason FROM appointments",
    )
    live = [a for a in appointments if a["status"] != "cancelled"]
    findings.checked["appointments"] += len(appointments)
    for what, counts in (
        (
            "initial evaluations",
            Counter(a["patient_id"] for a in live if a["appointment_type"] == "initial_evaluation"),
        ),
        (
            "course bookings",
            Counter((a["plan_id"], a["appointment_type"], a["course_session"]) for a in appointments if a["plan_id"]),
        ),
        ("review appointments", Counter(a["review_id"] for a in live if a["review_id"])),
    ):
        for key, n in counts.items():
            if n > 1:
                findings.add("duplicated", f"{n} {what} for {key}", n - 1)
    paused = {
        j.plan_id
        for j in history.journeys
        if j.plan_active and expected([(r.grade, r.symptoms) for r in j.reports]).hold
    }
    for a in live:
        if a["plan_id"] in paused and a["appointment_type"] == "dosing_session" and a["status"] == "booked":
            findings.add(
                "missed", f"plan {a['plan_id']}: dosing session {a['course_session']} still booked while paused"
            )


async def _billing(stack: Stack, history: History, findings: Findings) -> None:
    charges = await rows(stack, "billing", "SELECT charge_id, appointment_id, status, self_pay FROM charges")
    claims = Counter(r["charge_id"] for r in await rows(stack, "billing", "SELECT charge_id FROM claims"))
    per_visit = Counter(c["appointment_id"] for c in charges)
    for journey in history.journeys:
        for visit in journey.visits:
            findings.checked["visits completed"] += 1
            if per_visit[visit] == 0:
                findings.add("lost", f"visit {visit} of patient {journey.patient_id} never charged")
            elif per_visit[visit] > 1:
                findings.add("duplicated", f"visit {visit} charged {per_visit[visit]} times", per_visit[visit] - 1)
    for charge in charges:
        if charge["self_pay"] is False and charge["status"] != "voided":
            findings.checked["claimable charges"] += 1
            if claims[charge["charge_id"]] == 0:
                findings.add("lost", f"charge {charge['charge_id']} ({charge['status']}) never claimed")
    for charge_id, n in claims.items():
        if n > 1:
            findings.add("duplicated", f"charge {charge_id} claimed {n} times", n - 1)


async def dead_letter_reasons(stack: Stack) -> Counter[str]:
    """How many dead letters of each reason every service wrote (the topics outlive restarts)."""
    reasons: Counter[str] = Counter()
    for service in SERVICES:
        for record in await read_topic(stack.kafka.bootstrap, dead_letter_topic(service).name):
            reasons[json.loads(record.value)["reason"]] += 1
    return reasons
