"""Fixtures of the integration tests beyond the session-wide ones in tests/conftest.py."""

from tests.integration.billing_harness import billing  # noqa: F401 - billing's handlers in-process, per test module
