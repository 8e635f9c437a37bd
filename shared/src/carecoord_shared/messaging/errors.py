"""Which failures are worth retrying, and how to describe a failure without PHI."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# serialization_failure, deadlock_detected, unique_violation (a concurrent
# duplicate: the retry finds it in the inbox), admin_shutdown, cannot_connect_now
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505", "57P01", "57P03"})


# admin_shutdown, crash_shutdown, cannot_connect_now: the server is going or coming back.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _sqlstate(exc: BaseException) -> str | None:
    # SQLAlchemy wraps the driver's error; asyncpg's own (raised while connecting) is not wrapped.
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (refused, restarting, connection lost): no fault of the message."""
    if isinstance(exc, (ConnectionError, TimeoutError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    sqlstate = _sqlstate(exc)
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate in UNAVAILABLE_SQLSTATES)


def is_transient(exc: BaseException) -> bool:
    if is_unavailable(exc) or isinstance(exc, OperationalError):
        return True
    return _sqlstate(exc) in RETRYABLE_SQLSTATES


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors without the offending input values (they may be PHI)."""
    return [
        {"loc": ".".join(str(p) for p in err["loc"]), "type": err["type"], "msg": err["msg"]}
        for err in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
