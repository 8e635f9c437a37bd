"""Domain errors every service raises, each mapped once to its HTTP problem type (``http.problems.DOMAIN_PROBLEMS``)."""


class RuleViolation(ValueError):
    """A requested change that a domain rule forbids (HTTP 409); the message names the rule."""


class LimitExceeded(RuleViolation):
    """A value beyond a configured limit (HTTP 422): ``reason`` is a code, the message names the limit and its rule version."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotCurrentVersion(RuleViolation):
    """A versioned text acted on under a version that is not the one in force (HTTP 409): ``current_version``
    is the one to read and act on (a consent document signed under an outdated text)."""

    def __init__(self, message: str, current_version: str) -> None:
        super().__init__(message)
        self.current_version = current_version


class NotFound(LookupError):
    """The thing asked for does not exist (HTTP 404)."""


class Unauthenticated(Exception):
    """No valid bearer token (HTTP 401 with WWW-Authenticate: Bearer); the message says what is wrong with it.
    ``presented``: a token was sent and refused (RFC 6750: ``error="invalid_token"``), not just missing."""

    def __init__(self, message: str, *, presented: bool = False) -> None:
        super().__init__(message)
        self.presented = presented


class Forbidden(PermissionError):
    """The caller is who they say, but may not do this (HTTP 403); the message says what is missing.

    It names the rule (role, own patient only, licensed state), never the
    data that was asked for. A refusal not yet in the audit log is written
    there by the HTTP layer (``audited`` says it already is)."""

    def __init__(self, message: str, *, audited: bool = False) -> None:
        super().__init__(message)
        self.audited = audited


class NotReady(RuntimeError):
    """Asked for before the part that answers has started (HTTP 503 with Retry-After)."""


class InvalidCursor(ValueError):
    """A list's ``cursor`` parameter that this list did not issue (HTTP 422, naming the parameter)."""


class IdempotencyKeyReused(ValueError):
    """An Idempotency-Key sent again with a different request (HTTP 422): a key names one request."""


class IdempotencyInFlight(RuntimeError):
    """A request with this Idempotency-Key is still being handled (HTTP 409 with Retry-After)."""


class IdempotencyOutcomeLost(IdempotencyInFlight):
    """A request with this Idempotency-Key was applied and its answer was not kept (HTTP 409 without
    Retry-After: a retry would get the same; read the resource back)."""


class PreconditionFailed(RuntimeError):
    """A decision sent with ``If-Match`` about a version that is no longer current (HTTP 412): someone else
    changed the plan or review since the caller read it. ``current`` is the ETag it has now."""

    def __init__(self, message: str, current: str) -> None:
        super().__init__(message)
        self.current = current
