"""Which failures are worth retrying, and how to describe a failure without PHI."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# serialization_failure, deadlock_detected, unique_violation (a concurrent
# duplicate: the retry finds it in the inbox), admin_shutdown, cannot_connect_now
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505", "57P01", "57P03"})


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return sqlstate in RETRYABLE_SQLSTATES
    return False


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors without the offending input values (they may be PHI)."""
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "type": err["type"], "msg": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
