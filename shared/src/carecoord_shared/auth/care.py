"""Who is in a patient's care: the relations that let a licensed clinician reach the patient's data.

Minimum necessary (ADR 0015): a licence in the patient's state is needed but no longer enough. A
clinician reaches a patient as a member of their care team (prescriber or therapist, set by
scheduling and published whole as ``CareTeamChanged``), as the assignee of an open review of theirs
(``ClinicianReviewAssigned`` until ``ClinicianReviewResolved``), or by a relation one service alone
knows (safety's on-call rota). Each service keeps what it learnt in its own ``care_relations`` table,
written by the handlers below in the event's inbox transaction: a redelivery changes nothing, and a
patient's events apply in their order.

A relation lookup answers the *basis* of the access (written on its audit row), or None. The
service's lookups are tried in order and the first answer wins (``ServiceDefinition.relations``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Select,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.common import CareRole
from carecoord_contracts.safety import ClinicianReviewAssigned, ClinicianReviewResolved
from carecoord_contracts.scheduling import CareTeamChanged

from ..messaging.consumer import EventConsumer
from ..messaging.unit_of_work import HandlerTransaction

# (session, patient_id, clinician_id, patient's state) -> the basis of the access, or None: no such relation.
RelationLookup = Callable[[AsyncSession, uuid.UUID, str, str], Awaitable[str | None]]

ASSIGNED = "assigned"  # the relation of a review's assignee (the team's are CareRole's values)


def team_basis(role: CareRole) -> str:
    return f"care_team:{role.value}"


def care_relations_table(metadata: MetaData) -> Table:
    """One row per relation: a team member (``review_id`` NULL; at most one per role) or a review's assignee
    (at most one per review)."""
    return Table(
        "care_relations",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("patient_id", Uuid, nullable=False),
        Column("clinician_id", String(128), nullable=False),
        # prescriber | therapist | assigned
        Column("relation", String(16), nullable=False),
        Column("review_id", Uuid),
        # What the audit row says: care_team:prescriber, care_team:therapist, assigned:<AssignmentBasis>.
        Column("basis", String(32), nullable=False),
        Column("since", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_care_relations_patient_clinician", "patient_id", "clinician_id"),
        # Lists across patients ask "whose patients is this clinician related to".
        Index("ix_care_relations_clinician", "clinician_id", "patient_id"),
        Index("uq_care_relations_review", "review_id", unique=True, postgresql_where=text("review_id IS NOT NULL")),
        Index(
            "uq_care_relations_team_role",
            "patient_id",
            "relation",
            unique=True,
            postgresql_where=text("review_id IS NULL"),
        ),
    )


async def replace_care_team(
    session: AsyncSession, table: Table, patient_id: uuid.UUID, prescriber_id: str | None, therapist_id: str | None
) -> None:
    """The patient's team is exactly these two (either None: nobody in that role). Replaces, never merges:
    a member left out is no longer on the team."""
    await session.execute(delete(table).where(table.c.patient_id == patient_id, table.c.review_id.is_(None)))
    members = [(CareRole.prescriber, prescriber_id), (CareRole.therapist, therapist_id)]
    rows = [
        {"patient_id": patient_id, "clinician_id": who, "relation": role.value, "basis": team_basis(role)}
        for role, who in members
        if who is not None
    ]
    if rows:
        await session.execute(insert(table), rows)


async def assign_review(
    session: AsyncSession,
    table: Table,
    patient_id: uuid.UUID,
    review_id: uuid.UUID,
    assignee_id: str | None,
    basis: str,
) -> None:
    """The review's assignee is now ``assignee_id`` (None: nobody), replacing whoever had it."""
    await end_review(session, table, review_id)
    if assignee_id is not None:
        values = {
            "patient_id": patient_id,
            "clinician_id": assignee_id,
            "relation": ASSIGNED,
            "review_id": review_id,
            "basis": f"{ASSIGNED}:{basis}"[:32],
        }
        await session.execute(_insert(table), values)


async def end_review(session: AsyncSession, table: Table, review_id: uuid.UUID) -> None:
    await session.execute(_end_review(table), {"p_review": review_id})


# Five services run these per opened review: built once per table, values bound per execution (a fresh
# statement and its cache key per event cost more CPU than sending it, #22's profile).
@functools.cache
def _insert(table: Table) -> Any:
    return insert(table)


@functools.cache
def _end_review(table: Table) -> Any:
    return delete(table).where(table.c.review_id == bindparam("p_review", type_=table.c.review_id.type))


def learn_care_relations(consumer: EventConsumer, table: Table, *, team: bool = True, reviews: bool = True) -> None:
    """Keep ``table`` current from the care team (``team``: CareTeamChanged) and the reviews' assignments
    (``reviews``: ClinicianReviewAssigned, ClinicianReviewResolved), each in the event's inbox transaction.

    A service learns only what it consumes and does not own: scheduling writes its own team rows
    (``replace_care_team`` in the change's transaction), safety knows its own reviews' assignees."""
    if team:

        @consumer.on(CareTeamChanged)
        async def care_team_changed(event: CareTeamChanged, tx: HandlerTransaction) -> None:
            await replace_care_team(tx.session, table, tx.cause.patient_id, event.prescriber_id, event.therapist_id)

    if reviews:

        @consumer.on(ClinicianReviewAssigned)
        async def review_assigned(event: ClinicianReviewAssigned, tx: HandlerTransaction) -> None:
            await assign_review(
                tx.session, table, tx.cause.patient_id, event.review_id, event.assignee_id, event.basis.value
            )

        @consumer.on(ClinicianReviewResolved)
        async def review_resolved(event: ClinicianReviewResolved, tx: HandlerTransaction) -> None:
            await end_review(tx.session, table, event.review_id)


def care_relation_lookup(table: Table) -> RelationLookup:
    """The basis of the clinician's relation to the patient in ``table``: the team before an assignment
    (it outlasts the review), or None."""

    async def lookup(session: AsyncSession, patient_id: uuid.UUID, clinician_id: str, _state: str) -> str | None:
        found = await session.execute(
            select(table.c.basis)
            .where(table.c.patient_id == patient_id, table.c.clinician_id == clinician_id)
            .order_by(table.c.review_id.is_not(None), table.c.relation)
            .limit(1)
        )
        return found.scalar()

    return lookup


@dataclass(frozen=True)
class ListScope:
    """What a clinician's list across patients may show: patients living in ``states`` (their licences)
    with whom they have a relation. Each service turns it into SQL (``related_patients`` for the learnt
    relations, plus any relation of its own, e.g. safety's on-call rota for ``states``)."""

    clinician_id: str
    states: frozenset[str]


def related_patients(table: Table, clinician_id: str) -> Select[tuple[uuid.UUID]]:
    """``SELECT patient_id FROM care_relations WHERE clinician_id = :me``: for ``column.in_(...)``."""
    return select(table.c.patient_id).where(table.c.clinician_id == clinician_id)
