"""Third-party X12 checks for tests: pyx12 (5010 837P and 835 maps), linuxforhealth-x12 (5010 270/271)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyx12.params
import pyx12.x12n_document

from carecoord_devstack.paths import LOCAL


def pyx12_errors(path: Path) -> list[str]:
    """Every error pyx12 reports for the file (an empty list means it is valid), plus its 999 verdict."""
    report = io.StringIO()
    # pyx12 cannot write a 999 for a transaction without ST03 (the 835); its error report still covers it.
    ack = io.StringIO() if "*005010X221" not in path.read_text() else None
    ok = pyx12.x12n_document.x12n_document(
        param=pyx12.params.params(), src_file=str(path), fd_997=ack, fd_html=None, fd_json=report
    )
    errors = [e.get("err_str", str(e)) for e in _errors(json.loads(report.getvalue() or "{}"))]
    rejected = [
        line
        for line in (ack.getvalue() if ack else "").splitlines()
        if line.startswith(("IK5*R", "IK5*E", "AK9*R", "AK9*E", "AK9*P"))
    ]
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


# linuxforhealth-x12 knows the 5010 270/271 (pyx12 only has 4010 maps for them) but needs
# pydantic < 2, so it lives in its own throwaway venv under .local/, made on first use.
LFH_VENV = LOCAL / "lfh-x12-venv"
LFH_REQUIREMENTS = ("linuxforhealth-x12==0.57.*", "pydantic<2")


def linuxforhealth_parse(path: Path) -> dict[str, Any]:
    python = LFH_VENV / "bin" / "python"
    if not (LFH_VENV / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LFH_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *LFH_REQUIREMENTS],
            check=True,
        )
        (LFH_VENV / ".installed").touch()
    script = Path(__file__).parent / "lfh_x12_parse.py"
    result = subprocess.run(
        [str(python), str(script), str(path)], check=True, capture_output=True, text=True, timeout=120
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]
