"""Demo clinicians for local runs: `python -m carecoord_scheduling.seed [base URL]`.

Puts them through the HTTP API of a running scheduling service (the same
door an operator's UI uses), so it is safe to run again: each PUT replaces.
It calls as a service, with a development token signed by the local stack's
secret (``CARECOORD_AUTH_JWT_SECRET``, else the development default): every
route needs a bearer token.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any

from carecoord_contracts.common import US_STATES
from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, Role, mint_token

WEEKDAYS = range(5)
EVERY_DAY = range(7)


def _week(days: range, start: str, end: str) -> list[dict[str, Any]]:
    return [{"weekday": d, "start": start, "end": end} for d in days]


DEMO_CLINICIANS: dict[str, dict[str, Any]] = {
    # Licensed in Colorado too: the README's walkthrough makes dr-lee a Colorado patient's prescriber.
    "dr-lee": {
        "role": "psychiatric_clinician",
        "time_zone": "America/New_York",
        "licensed_states": ["NY", "NJ", "FL", "TX", "CA", "CO"],
        "weekly_availability": _week(WEEKDAYS, "09:00", "17:00"),
    },
    "dr-patel": {
        "role": "psychiatric_clinician",
        "time_zone": "America/Los_Angeles",
        "licensed_states": ["CA", "OR", "WA", "CO", "TX"],
        "weekly_availability": _week(EVERY_DAY, "07:00", "22:00"),
    },
    # On call around the clock everywhere, so an urgent review always has someone in a demo.
    "dr-oncall": {
        "role": "psychiatric_clinician",
        "time_zone": "America/Chicago",
        "licensed_states": sorted(US_STATES),
        "weekly_availability": _week(EVERY_DAY, "00:00", "24:00"),
    },
    "th-garcia": {
        "role": "therapist",
        "time_zone": "America/Chicago",
        "licensed_states": sorted(US_STATES),
        "weekly_availability": _week(range(6), "08:00", "20:00"),
    },
}


def seed(base_url: str) -> None:
    secret = os.environ.get("CARECOORD_AUTH_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
    token = mint_token(Role.SERVICE, "scheduling-seed", secret=secret)
    for clinician_id, body in DEMO_CLINICIANS.items():
        request = urllib.request.Request(
            f"{base_url.rstrip('/')}/v1/clinicians/{clinician_id}",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            print(f"{clinician_id}: {response.status}")


if __name__ == "__main__":
    seed(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8002")
