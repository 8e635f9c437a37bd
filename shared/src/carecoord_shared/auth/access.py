"""Who may see or decide what about a patient, and the audit record of every such access.

The rule, the same in every service:

- a patient reaches their own data and nobody else's;
- a clinician reaches a patient only when licensed in the patient's state of
  residence AND related to the patient (minimum necessary, ADR 0015): on their
  care team, assigned a review of theirs, or a relation the service alone knows
  (``ServiceDefinition.relations``, tried in order). A patient whose state this
  service has not learnt yet, or a service that knows no relations, is refused:
  it fails closed, and says so;
- an operator runs the system and reaches no patient's data;
- a service (another system on its own account) reaches every patient.

Every check writes one audit row, allowed or denied, before the request does
anything else: a PHI read or a clinical decision is never unrecorded. An allowed
row records its ``basis``: ``self`` (the patient), ``service``, ``operational``
(an operator on the system's bookkeeping) or the relation's (``care_team:prescriber``,
``assigned:on_call``...); a denied row has none.

Where the request changes the patient's data, :meth:`Access.transaction` checks
and writes the allowed row in the change's own transaction: the access and what
it did commit together, one commit (one WAL flush) instead of two. What could
then lose the row is covered: a refusal commits its denied row on its own (the
transaction it refused does nothing), and a change that fails or never commits
(a rule refuses it, the database is away, the commit fails) is followed by the
allowed row in a transaction of its own before the error goes on. A request that
dies with its process before the commit leaves no row, and no change and no
answer either: nobody saw or changed anything.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NoReturn

import structlog
from opentelemetry import trace
from sqlalchemy import Select, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carecoord_contracts.intake import PatientRegistered

from ..errors import Forbidden, NotFound
from ..messaging.consumer import EventConsumer
from ..messaging.unit_of_work import HandlerTransaction, Transaction, UnitOfWork
from .care import ListScope, RelationLookup
from .tokens import Principal, Role

log = structlog.get_logger("carecoord.audit")

# The state of residence of a patient as this service knows it, or None.
JurisdictionLookup = Callable[[AsyncSession, uuid.UUID], Awaitable[str | None]]

SELF, SERVICE, OPERATIONAL = "self", "service", "operational"
# The basis of an access to no single patient (a list across patients, a record of the system's own).
LIST_BASIS = {Role.SERVICE: SERVICE, Role.OPERATOR: OPERATIONAL, Role.CLINICIAN: "related_patients", Role.PATIENT: SELF}
NO_RELATION = (
    "the clinician is not on the patient's care team, not on call for their state and not assigned a review of theirs"
)
NO_RELATIONS_HERE = "this service knows no care relations, so no clinician is related to the patient here"


async def patient_of(sessions: async_sessionmaker[AsyncSession], query: Select[Any], missing: str) -> uuid.UUID:
    """The patient a resource belongs to (``query`` selects its patient_id), or NotFound(missing):
    what a route that knows only a resource's id checks access against."""
    async with sessions() as session:
        patient_id = (await session.execute(query)).scalar()
    if patient_id is None:
        raise NotFound(missing)
    return patient_id  # type: ignore[no-any-return]


def jurisdiction_lookup(table: Table) -> JurisdictionLookup:
    async def lookup(session: AsyncSession, patient_id: uuid.UUID) -> str | None:
        return (
            await session.execute(select(table.c.state_of_residence).where(table.c.patient_id == patient_id))
        ).scalar()

    return lookup


async def record_jurisdiction(session: AsyncSession, table: Table, patient_id: uuid.UUID, state: str) -> None:
    """Learn (or update) a patient's state; called by the PatientRegistered handler."""
    stmt = insert(table).values(patient_id=patient_id, state_of_residence=state)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[table.c.patient_id], set_={"state_of_residence": state})
    )


class Auditor:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], table: Table) -> None:
        self._sessions = sessions
        self._table = table

    async def record(
        self,
        principal: Principal,
        action: str,
        resource: str,
        *,
        resource_id: object = None,
        patient_id: uuid.UUID | None = None,
        outcome: str = "allowed",
        basis: str | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        """Write one row: in ``session`` when given (its caller commits), else in a transaction of its own.
        ``basis``: why an allowed access was allowed (see the module docstring)."""
        if session is None:
            async with self._sessions.begin() as own:
                await self.record(
                    principal,
                    action,
                    resource,
                    resource_id=resource_id,
                    patient_id=patient_id,
                    outcome=outcome,
                    basis=basis,
                    session=own,
                )
            return
        ctx = trace.get_current_span().get_span_context()
        await session.execute(
            self._table.insert().values(
                actor=principal.subject,
                actor_role=str(principal.role),
                action=action,
                resource=resource,
                resource_id=None if resource_id is None else str(resource_id)[:64],
                patient_id=patient_id,
                outcome=outcome,
                basis=None if basis is None else basis[:40],
                trace_id=f"{ctx.trace_id:032x}" if ctx.is_valid else None,
            )
        )


class Access:
    """One request's caller, with the checks that write the audit log."""

    def __init__(
        self,
        principal: Principal,
        auditor: Auditor,
        sessions: async_sessionmaker[AsyncSession],
        jurisdiction_of: JurisdictionLookup | None,
        relations: tuple[RelationLookup, ...] = (),
    ) -> None:
        self.principal = principal
        self._auditor = auditor
        self._sessions = sessions
        self._jurisdiction_of = jurisdiction_of
        self._relations = relations

    async def patient(
        self,
        patient_id: uuid.UUID,
        action: str,
        resource: str,
        resource_id: object = None,
        *,
        operational: bool = False,
        relation: str | None = None,
    ) -> None:
        """Allow this caller to ``action`` this patient's ``resource``, or raise Forbidden; audited either way.

        ``operational``: the resource is the system's own bookkeeping about the patient
        (which events arrived, when), which operators need to trace a journey.
        ``relation``: the basis of a relation the request itself makes (a licensed clinician registering
        a new patient), used when no learnt relation answers; the licence is still checked."""
        # The licence and relation lookups and the audit row share one transaction: one connection per check.
        async with self._sessions.begin() as session:
            refusal, basis = await self._verdict(session, patient_id, operational, relation)
            await self._auditor.record(
                self.principal,
                action,
                resource,
                resource_id=resource_id,
                patient_id=patient_id,
                outcome="denied" if refusal else "allowed",
                basis=basis,
                session=session,
            )
        if refusal:
            self._denied(action, resource, refusal)

    @asynccontextmanager
    async def transaction(
        self,
        uow: UnitOfWork,
        patient_id: uuid.UUID,
        action: str,
        resource: str,
        resource_id: object = None,
        *,
        operational: bool = False,
        relation: str | None = None,
    ) -> AsyncIterator[Transaction]:
        """``uow.transaction()`` for a change to this patient's data, allowed and audited as :meth:`patient`
        is, with the allowed row written in it (it commits with the change; see the module docstring).

            async with access.transaction(uow, patient_id, "submit", "vitals", reading_id) as tx:
                await observations.record_vitals(tx, ...)

        A refusal commits its denied row (and nothing else: the block never runs) and raises Forbidden.
        ``operational`` and ``relation`` as for :meth:`patient`."""
        refusal: str | None = None
        basis: str | None = None
        audited_in_tx = False
        try:
            async with uow.transaction() as tx:
                refusal, basis = await self._verdict(tx.session, patient_id, operational, relation)
                await self._auditor.record(
                    self.principal,
                    action,
                    resource,
                    resource_id=resource_id,
                    patient_id=patient_id,
                    outcome="denied" if refusal else "allowed",
                    basis=basis,
                    session=tx.session,
                )
                if refusal is None:
                    audited_in_tx = True
                    yield tx
        except GeneratorExit:  # closed unused, never raised from the block: nothing to audit again
            raise
        except BaseException:
            if audited_in_tx:
                # The change rolled back (or its commit failed) and took the allowed row with it; the
                # access happened all the same. (A commit that succeeded but was reported lost leaves two rows.)
                await self._auditor.record(
                    self.principal, action, resource, resource_id=resource_id, patient_id=patient_id, basis=basis
                )
            raise
        if refusal is not None:
            # Only the check and its denied row were in the transaction: committed, then refused.
            self._denied(action, resource, refusal)

    def _denied(self, action: str, resource: str, refusal: str) -> NoReturn:
        log.warning("access.denied", actor_role=str(self.principal.role), action=action, resource=resource)
        raise Forbidden(refusal, audited=True)

    async def record(self, action: str, resource: str, resource_id: object = None) -> None:
        """Audit an access that concerns no single patient (a worklist, a search), with the basis of what it
        may show: a service everything, an operator the system's bookkeeping, a clinician their related
        patients (``list_scope``)."""
        await self._auditor.record(
            self.principal, action, resource, resource_id=resource_id, basis=LIST_BASIS[self.principal.role]
        )

    def acting_clinician(self, clinician_id: str) -> None:
        """A clinician decides in their own name only; a service may record a decision for any clinician."""
        if self.principal.role is Role.CLINICIAN and clinician_id != self.principal.subject:
            raise Forbidden("a clinician can only act in their own name (clinician_id must be the token's subject)")

    @property
    def listable_states(self) -> frozenset[str] | None:
        """For a list across patients: the states whose patients this caller may see (None: every state).
        Only clinicians and services list across patients; a patient lists with their own id."""
        if self.principal.role is Role.SERVICE:
            return None
        return self.principal.licensed_states

    @property
    def list_scope(self) -> ListScope | None:
        """For a list across patients: the clinician's licensed states and id, whose related patients
        alone it may show (carecoord_shared.auth.care.related_patients); None: a service, which sees all.
        Anyone else gets a scope with no states, which shows nobody."""
        if self.principal.role is Role.SERVICE:
            return None
        states = self.principal.licensed_states if self.principal.role is Role.CLINICIAN else frozenset()
        return ListScope(clinician_id=self.principal.subject, states=states)

    async def _verdict(
        self, session: AsyncSession, patient_id: uuid.UUID, operational: bool, relation: str | None
    ) -> tuple[str | None, str | None]:
        """(the refusal, None) or (None, the basis of the access)."""
        principal = self.principal
        if operational and principal.role is Role.OPERATOR:
            return None, OPERATIONAL
        if principal.role is Role.SERVICE:
            return None, SERVICE
        if principal.is_patient(patient_id):
            return None, SELF
        if principal.role is Role.PATIENT:
            return "a patient can only reach their own data", None
        if principal.role is Role.OPERATOR:
            return "operators do not reach patients' data", None
        if self._jurisdiction_of is None:
            return "this service cannot tell the patient's state, so no clinician is licensed for it here", None
        state = await self._jurisdiction_of(session, patient_id)
        if state is None:
            return (
                "this service does not know the patient's state of residence yet, so it cannot check the clinician's licence",
                None,
            )
        if not principal.licensed_in(state):
            return "the clinician is not licensed in the patient's state of residence", None
        for lookup in self._relations:
            basis = await lookup(session, patient_id, principal.subject, state)
            if basis is not None:
                return None, basis
        if relation is not None:
            return None, relation
        return (NO_RELATION if self._relations else NO_RELATIONS_HERE), None


def learn_jurisdictions(consumer: EventConsumer, table: Table) -> None:
    """Keep ``table`` (jurisdiction_table) current from intake's PatientRegistered, for a
    service that has no patient record of its own to read the state from."""

    @consumer.on(PatientRegistered)
    async def patient_registered(event: PatientRegistered, tx: HandlerTransaction) -> None:
        await record_jurisdiction(tx.session, table, tx.cause.patient_id, event.state_of_residence)
