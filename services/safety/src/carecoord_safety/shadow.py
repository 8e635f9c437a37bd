"""Shadow evaluation: what a proposed rule version would have decided.

Replays every recorded observation, patient by patient in the order received,
under the version that decided it and under the proposed one, and lists the
observations whose outcome (reviews, hold, out-of-limits) would differ. It
runs in a READ ONLY transaction: it acts on nothing and cannot.

``scope`` narrows the replay to the patients the clinician reaches (reach.py:
licensed in their state and related to them); since history is replayed per patient, each patient's
outcomes are the same whoever else is included.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.auth.care import ListScope

from . import reach, rules
from .models import mood_checkins, side_effect_reports, vitals_readings
from .rules import Mood, Observation, SideEffect, Vitals


async def evaluate(
    session: AsyncSession, proposed_version: str, *, scope: ListScope | None = None, limit: int = 500
) -> dict[str, Any]:
    proposed = rules.load(proposed_version)
    recorded_sets: dict[str, rules.RuleSet] = {}
    await session.execute(text("SET TRANSACTION READ ONLY"))
    records = await _recorded(session, scope)
    history: dict[Any, list[Observation]] = defaultdict(list)
    differences = []
    for kind, row, observation in records:
        past = history[row.patient_id]
        if row.rule_version not in recorded_sets:
            recorded_sets[row.rule_version] = rules.load(row.rule_version)
        before = recorded_sets[row.rule_version].assess(observation, past)
        after = proposed.assess(observation, past)
        if before.outcome() != after.outcome():
            differences.append(
                {
                    "kind": kind,
                    "id": str(row.id),
                    "patient_id": str(row.patient_id),
                    "received_at": row.received_at.isoformat(),
                    "recorded_version": row.rule_version,
                    "recorded": {**before.outcome(), "fired": list(before.fired)},
                    "proposed": {**after.outcome(), "fired": list(after.fired)},
                }
            )
        past.append(observation)
    return {
        "proposed_version": proposed_version,
        "observations_replayed": len(records),
        "differing": len(differences),
        "differences": differences[:limit],
        "truncated": len(differences) > limit,
    }


async def _recorded(session: AsyncSession, scope: ListScope | None) -> list[tuple[str, Any, Observation]]:
    def of(table: Table, id_column: str) -> Select[Any]:
        query = select(table.c[id_column].label("id"), table)
        if scope is not None:
            query = query.where(reach.reachable(table.c.patient_id, scope, datetime.now(UTC)))
        return query

    reports = await session.execute(of(side_effect_reports, "report_id"))
    vitals = await session.execute(of(vitals_readings, "reading_id"))
    moods = await session.execute(of(mood_checkins, "checkin_id"))
    records: list[tuple[str, Any, Observation]] = []
    records += [
        ("side_effect", r, SideEffect(at=r.received_at, grade=r.grade, symptoms=tuple(r.symptoms))) for r in reports
    ]
    records += [
        ("vitals", r, Vitals(at=r.measured_at, systolic=r.systolic, diastolic=r.diastolic, context=r.context))
        for r in vitals
    ]
    records += [
        ("mood", r, Mood(at=r.answered_at, phq9_item9=r.phq9_item9, phq9_total=r.phq9_total, pcl5_total=r.pcl5_total))
        for r in moods
    ]
    records.sort(key=lambda rec: (rec[1].received_at, str(rec[1].id)))
    return records
