"""Reading a cursor-paged list (``{items, next_cursor, limit}``, carecoord_shared.pagination) over HTTP as a
client does: every page, each next_cursor followed; and what a cursor the list did not issue is answered."""

from __future__ import annotations

from typing import Any

import httpx


async def all_pages(
    client: httpx.AsyncClient, path: str, *, limit: int = 2, most: int = 20, **filters: Any
) -> list[list[dict[str, Any]]]:
    """Every page of ``path`` read ``limit`` rows at a time (with ``filters``), following next_cursor to its end."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": str(limit), **filters}
    while True:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["limit"] == limit
        assert len(page["items"]) <= limit
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        assert page["items"], "a page with a next cursor holds rows"
        assert len(pages) < most, "the cursor never ends"
        params = {"limit": str(limit), **filters, "cursor": page["next_cursor"]}


async def first_cursor(client: httpx.AsyncClient, path: str, **filters: Any) -> str:
    response = await client.get(path, params={"limit": "1", **filters})
    assert response.status_code == 200, response.text
    cursor: str | None = response.json()["next_cursor"]
    assert cursor, f"{path} has more than one row"
    return cursor


async def assert_refused_cursor(client: httpx.AsyncClient, path: str, cursor: str, **filters: Any) -> None:
    """``cursor`` on ``path`` is a 422 invalid_cursor problem naming the parameter, not a page or a 500."""
    response = await client.get(path, params={"limit": "2", **filters, "cursor": cursor})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/invalid_cursor"), problem
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("cursor", "invalid_cursor")], problem


def altered(cursor: str) -> str:
    """The cursor with its last characters cut: no longer base64 JSON this list wrote."""
    return cursor[:-3]
