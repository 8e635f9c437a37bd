"""The HTTP side: every route declares the roles it admits, and gets the caller's Access.

    @router.get("/patients/{patient_id}/plan")
    async def get_plan(patient_id: UUID, access: Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]):
        await access.patient(patient_id, "read", "plan")

A route without ``allow`` is refused by a test that walks every route of every
service (tests/e2e/test_authorization.py), so nothing is reachable by accident.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth.access import Access
from ..auth.tokens import InvalidToken, Role
from ..errors import Forbidden, Unauthenticated
from .app import current_app

_bearer = HTTPBearer(
    auto_error=False, description="A JWT from the identity provider (role: patient, clinician, operator or service)"
)


def allow(*roles: Role) -> Any:
    """A dependency admitting only callers with a valid token in one of ``roles``."""
    admitted = frozenset(roles)

    async def authorise(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Access:
        checks = current_app(request).access_checks
        if credentials is None:
            raise Unauthenticated("a bearer token is required (Authorization: Bearer <JWT>)")
        try:
            principal = checks.verifier.verify(credentials.credentials)
        except InvalidToken as exc:
            raise Unauthenticated(str(exc), presented=True) from None
        # For the audit row of a refusal raised later in this request (service.py's Forbidden handler).
        request.state.principal = principal
        if principal.role not in admitted:
            raise Forbidden(
                f"this needs the role {' or '.join(sorted(admitted))}; the token's role is {principal.role}"
            )
        return Access(principal, checks.auditor, checks.sessions, checks.jurisdiction_of, checks.relations)

    authorise.admitted_roles = admitted  # type: ignore[attr-defined]  # read by the route-coverage test
    return Depends(authorise)


def admitted_roles(route: Any) -> frozenset[Role] | None:
    """The roles a route admits, or None when it has no ``allow`` (for the coverage test)."""
    root = getattr(route, "dependant", None)
    stack = list(root.dependencies) if root else []
    while stack:
        dependant = stack.pop()
        roles = getattr(dependant.call, "admitted_roles", None)
        if roles is not None:
            return roles  # type: ignore[no-any-return]
        stack.extend(dependant.dependencies)
    return None
