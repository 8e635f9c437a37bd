"""``Idempotency-Key`` on the POSTs that create or decide: a retried request gets the first outcome.

A route opts in with ``dependencies=[IDEMPOTENT]``; the header is then documented in its OpenAPI.
Three pieces (docs/adr/0013-idempotency-keys.md says why these and what each crash window does):

- :func:`idempotency_key` (the dependency), before the route: bounds the key (FastAPI's Header
  validation: 422), scopes it to the token's subject + method + route template, fingerprints the
  request (SHA-256 of the path and the body) and looks the key up. A kept outcome is replayed
  (:class:`Replay`, answered by create_app with ``Idempotent-Replayed: true``); the key with another
  request is refused (``IdempotencyKeyReused``, 422); a key claimed but not answered yet is refused
  (``IdempotencyInFlight``, 409 with Retry-After).
- the claim: the request's unit of work (``get_uow``) inserts the key's row as the first statement of
  the request's first transaction, so a committed change always has its key, and a concurrent request
  with the same key waits on that row and then is refused (409) instead of applying the change twice.
- :class:`IdempotencyRecorder` (ASGI middleware), after the route: keeps the outcome (status, body,
  Content-Type, Location, ETag) before sending it, so a retry after the answer always replays it.
  2xx and 4xx are kept, except 401/403 (another token may succeed) and anything 5xx (the retry runs again).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request
from fastapi.responses import Response
from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table, Uuid, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..auth.tokens import InvalidToken
from ..errors import IdempotencyInFlight, IdempotencyKeyReused, IdempotencyOutcomeLost
from .app import current_app

log = structlog.get_logger("carecoord.idempotency")

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 128
# Printable token characters only: a UUID, a ULID, "ui-3f2a…:retry" all fit; nothing to escape anywhere.
KEY_PATTERN = r"^[A-Za-z0-9._:~-]{1,128}$"
# A claim with no answer this old is not in flight any more: its change committed and the process
# answering it died before keeping the answer (nothing is applied twice: the retry is told so).
IN_FLIGHT_S = 60.0
KEPT_HEADERS = ("content-type", "location", "etag")
# Refusals a retry could legitimately change: another token, the service back.
NOT_KEPT = frozenset({401, 403})


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        # The token's subject (an opaque id, never PHI), "POST /v1/plans/{plan_id}/activate", the key.
        Column("subject", String(128), primary_key=True),
        Column("route", String(200), primary_key=True),
        Column("key", String(MAX_KEY), primary_key=True),
        # SHA-256 of the request's path and body: the same key with another request is refused.
        Column("fingerprint", String(64), nullable=False),
        # Which request holds the claim: only it fills in the outcome.
        Column("attempt", Uuid, nullable=False),
        # The first outcome; NULL while the claim waits for its answer.
        Column("status", Integer),
        Column("headers", JSONB),
        Column("body", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_idempotency_keys_created", "created_at"),
    )


@dataclass
class Pending:
    """One request's key, between the look-up and the kept outcome (on ``request.state.idempotency``)."""

    table: Table
    subject: str
    route: str
    key: str
    fingerprint: str
    attempt: uuid.UUID = field(default_factory=uuid.uuid4)
    # Another request with the key committed first: this one's answer (409) is not kept.
    lost_race: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "route": self.route,
            "key": self.key,
            "fingerprint": self.fingerprint,
            "attempt": self.attempt,
        }

    async def claim(self, session: AsyncSession) -> None:
        """The first statement of the request's first transaction (UnitOfWork.with_first_step)."""
        stmt = insert(self.table).values(self.row()).on_conflict_do_nothing().returning(self.table.c.key)
        if (await session.execute(stmt)).first() is None:
            # Another request with this key committed first (we waited on its row): it is the one applied.
            self.lost_race = True
            raise IdempotencyInFlight(f"a request with this {HEADER} is being handled; retry to get its outcome")


class Replay(Exception):  # flow, not an error: create_app answers with the kept outcome
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__("replay")
        self.status = status
        self.headers = headers
        self.body = body

    def response(self) -> Response:
        return Response(content=self.body, status_code=self.status, headers={**self.headers, REPLAYED: "true"})


def _fingerprint(path: str, body: bytes) -> str:
    digest = hashlib.sha256(path.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            max_length=MAX_KEY,
            pattern=KEY_PATTERN,
            description="A client's id for this request (1-128 of A-Z a-z 0-9 . _ : ~ -): sent again with the "
            "same request, the first outcome is answered (Idempotent-Replayed: true) and nothing is applied twice.",
        ),
    ] = None,
) -> None:
    if key is None:
        return
    app = current_app(request)
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    try:
        principal = app.access_checks.verifier.verify(token) if scheme.lower() == "bearer" else None
    except InvalidToken:
        principal = None
    if principal is None:
        return  # allow(...) answers 401; a refusal is never kept
    table = app.idempotency
    route = getattr(request.scope.get("route"), "path", request.url.path)
    pending = Pending(
        table=table,
        subject=principal.subject[:128],
        route=f"{request.method} {route}"[:200],
        key=key,
        fingerprint=_fingerprint(request.url.path, await request.body()),
    )
    async with app.access_checks.sessions() as session:
        found = (
            await session.execute(
                select(table.c.fingerprint, table.c.status, table.c.headers, table.c.body, table.c.created_at).where(
                    table.c.subject == pending.subject, table.c.route == pending.route, table.c.key == key
                )
            )
        ).first()
    if found is None:
        request.state.idempotency = pending
        return
    if found.fingerprint != pending.fingerprint:
        raise IdempotencyKeyReused(
            f"this {HEADER} was sent with another request (path or body differ); use a new key for a new request"
        )
    if found.status is not None:
        raise Replay(found.status, found.headers or {}, found.body or b"")
    if datetime.now(UTC) - found.created_at < timedelta(seconds=IN_FLIGHT_S):
        raise IdempotencyInFlight(f"a request with this {HEADER} is being handled; retry to get its outcome")
    raise IdempotencyOutcomeLost(
        f"a request with this {HEADER} was applied, but its answer was not kept (the service stopped): "
        "read the resource to see its state"
    )


IDEMPOTENT = Depends(idempotency_key)


def is_idempotent(route: Any) -> bool:
    """Whether a route honours Idempotency-Key (for the route-walk test)."""
    dependant = getattr(route, "dependant", None)
    return dependant is not None and any(d.call is idempotency_key for d in dependant.dependencies)


class IdempotencyRecorder:
    """Keeps the outcome of a request that claimed a key (``scope["state"]["idempotency"]``) before sending it."""

    def __init__(self, app: Any, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        held: list[Any] = []

        async def recording_send(message: Any) -> None:
            pending: Pending | None = scope.get("state", {}).get("idempotency")
            if message["type"] == "http.response.start" and pending is not None:
                held.append(message)
                return
            if held:
                held.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    await self._keep(pending, held)  # type: ignore[arg-type]
                    for each in held:
                        await send(each)
                    held.clear()
                return
            await send(message)

        await self.app(scope, receive, recording_send)

    async def _keep(self, pending: Pending, messages: list[Any]) -> None:
        start = messages[0]
        status = int(start["status"])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
        table = pending.table
        if pending.lost_race:
            return
        try:
            async with self.sessions.begin() as session:
                if status >= 500 or status in NOT_KEPT:
                    # Not kept: the retry runs again. A refusal (403) may have committed the claim with its
                    # denied audit row (the claim is the transaction's first statement): take it back.
                    if status in NOT_KEPT:
                        await session.execute(table.delete().where(table.c.attempt == pending.attempt))
                    return
                body = b"".join(m.get("body", b"") for m in messages[1:])
                kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
                stmt = insert(table).values(**pending.row(), status=status, headers=kept, body=body)
                # Our claim gets its outcome; an outcome without a claim (a 404 or 409 before or after a
                # rolled-back change) is kept unless another request took the key meanwhile.
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[table.c.subject, table.c.route, table.c.key],
                        set_={"status": stmt.excluded.status, "headers": stmt.excluded.headers, "body": body},
                        where=(table.c.attempt == pending.attempt) & table.c.status.is_(None),
                    )
                )
        except Exception as exc:  # the answer still goes out; a retry is told its answer was not kept
            log.warning("idempotency.keep_failed", error=type(exc).__name__, status=status)
