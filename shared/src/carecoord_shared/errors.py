"""Domain errors every service raises, mapped once to HTTP answers in service.py."""


class RuleViolation(ValueError):
    """A requested change that a domain rule forbids (HTTP 409); the message names the rule."""


class NotFound(LookupError):
    """The thing asked for does not exist (HTTP 404)."""
