"""Third-party X12 validation for tests: pyx12 (the 5010 837P and 835 maps)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyx12.params
import pyx12.x12n_document


def pyx12_errors(path: Path) -> list[str]:
    """Every error pyx12 reports for the file (an empty list means it is valid), plus its 999 verdict."""
    ack, report = io.StringIO(), io.StringIO()
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(), src_file=str(path), fd_997=ack, fd_html=None, fd_json=report
    )
    errors = [e.get("err_str", str(e)) for e in _errors(json.loads(report.getvalue() or "{}"))]
    rejected = [line for line in ack.getvalue().splitlines() if line.startswith(("IK5*R", "IK5*E", "AK9*R", "AK9*E", "AK9*P"))]
    if not ok and not errors:
        errors.append("pyx12 did not accept the file")
    return errors + rejected


def _errors(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "errors" and value:
                found.extend(value)
            else:
                found.extend(_errors(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_errors(item))
    return found
