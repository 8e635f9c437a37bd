"""Figures a suite reports in the normal `make test` output, one section per suite.

A suite fills ``section("its title")``; conftest's pytest_terminal_summary
prints every non-empty section after the run.
"""

from __future__ import annotations

from typing import Any

SECTIONS: dict[str, dict[str, Any]] = {}


def section(title: str) -> dict[str, Any]:
    return SECTIONS.setdefault(title, {})
