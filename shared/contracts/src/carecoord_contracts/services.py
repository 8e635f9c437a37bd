"""The service registry: the six services by name, and the HTTP port each listens on by default.

The topic registry names producers and consumers from ``SERVICES``; the runtime's
settings and the operator CLI take a service's local port from ``DEFAULT_HTTP_PORTS``.
"""

from __future__ import annotations

SERVICES = ("intake", "scheduling", "dosing", "safety", "billing", "engagement")

DEFAULT_HTTP_PORTS = {
    "intake": 8001,
    "scheduling": 8002,
    "dosing": 8003,
    "safety": 8004,
    "billing": 8005,
    "engagement": 8006,
}
