"""The one place test code makes HTTP clients for the services' APIs.

Every call of the fault suite goes through ``api_client``, so credentials
(bearer tokens, once the APIs require them) are added here and nowhere else.
"""

from __future__ import annotations

import httpx

from carecoord_devstack.stack import Stack


def api_client(stack: Stack, service: str, *, timeout: float = 10.0) -> httpx.AsyncClient:
    """An HTTP client for one service of ``stack``; paths are relative to the service (``/v1/...``)."""
    return httpx.AsyncClient(base_url=stack.services[service].url, timeout=timeout)
