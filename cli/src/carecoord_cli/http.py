"""The services' HTTP APIs, with failures an operator can read."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from .config import Target
from .errors import OperatorError, StackUnavailable


class Services:
    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.target = target
        self._http = httpx.AsyncClient(
            timeout=timeout, headers={"Authorization": f"Bearer {target.token}"} if target.token else None
        )

    async def __aenter__(self) -> Services:
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self._http.aclose()

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> Any:
        """The JSON answer of one call; an unexpected status says which call and what the service answered."""
        response = await self.raw(service, method, path, json=json, params=params)
        if response.status_code not in ok:
            raise OperatorError(f"{service}: {method} {path} answered {response.status_code}: {_message(response)}")
        return response.json() if response.content else None

    async def raw(
        self, service: str, method: str, path: str, *, json: Any = None, params: Any = None
    ) -> httpx.Response:
        try:
            return await self._http.request(method, self.target.url(service, path), json=json, params=params)
        except httpx.TransportError as exc:
            raise StackUnavailable(f"The {service} service is not reachable at {self.target.urls[service]}.") from exc

    async def get(self, service: str, path: str, **params: Any) -> Any:
        return await self.request(service, "GET", path, params=params or None)

    async def every_item(self, service: str, path: str, **params: Any) -> list[Any]:
        """Every item of a paged list (``{items, next_cursor, limit}``), following each next_cursor to the end."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self.get(service, path, **params, limit=200, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def post(self, service: str, path: str, body: Any) -> Any:
        return await self.request(service, "POST", path, json=body)

    async def put(self, service: str, path: str, body: Any) -> Any:
        return await self.request(service, "PUT", path, json=body)


def _message(response: httpx.Response) -> str:
    """A service's problem document (RFC 9457) as one line: its title and detail; anything else as it came."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        title = body.get("title")
        return (f"{title}: {body['detail']}" if isinstance(title, str) else body["detail"])[:300]
    return str(body)[:300]
