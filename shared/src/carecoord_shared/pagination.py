"""Cursor (keyset) pagination for every list a service answers.

A list is read in a fixed, total order (an ``Ordering``: sort columns, the last one unique). A page is
``limit`` rows after a position; its ``next_cursor`` is the position of its last row, opaque to the client.
Unlike an offset, a position stays right while rows are added or removed in front of it (a worklist
changes under a clinician paging through it), and reading page 100 costs what page 1 costs (the
position is a WHERE clause an index can serve, not rows read and thrown away).

A cursor comes from outside, so it is hostile: it is decoded strictly (size, base64, JSON, the ordering
it was issued for, the count and type of each value) and anything else is ``InvalidCursor`` (a 422
naming the ``cursor`` parameter), never a database error. It carries positions only, never filters:
access narrowing and filters are applied by the query every time, so a doctored cursor can move
within what the caller may see, never outside it.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, ColumnElement, DateTime, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# A cursor holds a handful of sort values; anything longer is not one of ours.
MAX_CURSOR_CHARS = 1024

T = TypeVar("T")


def _bad(why: str) -> Any:
    raise InvalidCursor(f"the cursor is not one this list issued ({why}); start again without it")


def _timestamp(value: object) -> datetime:
    if not isinstance(value, str):
        return _bad("not a timestamp")  # type: ignore[no-any-return]
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return _bad("a timestamp without its zone")  # type: ignore[no-any-return]
    return parsed.astimezone(UTC)  # OverflowError at the edges of the calendar: refused below


# How each value type travels in a cursor: JSON has no UUID or timestamp, so each value is tagged.
_ENCODE: dict[type, tuple[str, Any]] = {
    bool: ("b", lambda v: v),
    int: ("i", lambda v: v),
    str: ("s", lambda v: v),
    uuid.UUID: ("u", str),
    datetime: ("t", lambda v: v.isoformat()),
    date: ("d", lambda v: v.isoformat()),
}
_DECODE: dict[str, tuple[type, Any]] = {
    "b": (bool, lambda v: v if isinstance(v, bool) else _bad("not a boolean")),
    "i": (int, lambda v: v if isinstance(v, int) and not isinstance(v, bool) else _bad("not an integer")),
    "s": (str, lambda v: v if isinstance(v, str) else _bad("not a string")),
    "u": (uuid.UUID, lambda v: uuid.UUID(v) if isinstance(v, str) else _bad("not a uuid")),
    "t": (datetime, _timestamp),
    "d": (date, lambda v: date.fromisoformat(v) if isinstance(v, str) else _bad("not a date")),
}


@dataclass(frozen=True)
class SortKey:
    """One sort column (never NULL: a keyset comparison with NULL matches nothing) and its direction."""

    column: ColumnElement[Any]
    descending: bool = False

    @property
    def name(self) -> str:
        return str(getattr(self.column, "key", None) or self.column.name)

    @property
    def python_type(self) -> type:
        return self.column.type.python_type


@dataclass(frozen=True)
class Ordering:
    """A total order for one list: ``name`` scopes its cursors (one list's cursor is refused by another),
    ``keys`` the sort columns, the last one unique (a primary key) so that no two rows tie."""

    name: str
    keys: tuple[SortKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("an ordering needs at least one sort key")
        for key in self.keys:
            if getattr(key.column, "nullable", False):
                raise ValueError(f"sort key {key.name} may be NULL; keyset pagination needs NOT NULL columns")
            if key.python_type not in _ENCODE:
                raise ValueError(f"sort key {key.name} has a type a cursor cannot carry: {key.python_type}")
            if isinstance(key.column.type, DateTime) and not key.column.type.timezone:
                # A naive timestamp would travel without its zone, and a zone-less cursor is refused.
                raise ValueError(f"sort key {key.name} is a timestamp without time zone")

    def order_by(self) -> list[ColumnElement[Any]]:
        return [k.column.desc() if k.descending else k.column.asc() for k in self.keys]

    def after(self, position: Sequence[Any]) -> ColumnElement[bool]:
        """Rows strictly after ``position`` in this order: (k1 beyond v1) or (k1 = v1 and k2 beyond v2) or ...
        (row-value comparison would need every key in one direction)."""
        clauses = []
        for i, key in enumerate(self.keys):
            beyond = key.column < position[i] if key.descending else key.column > position[i]
            equal_before = [self.keys[j].column == position[j] for j in range(i)]
            clauses.append(and_(*equal_before, beyond))
        return or_(*clauses)

    def position_of(self, row: Mapping[str, Any]) -> list[Any]:
        return [row[k.name] for k in self.keys]


@dataclass(frozen=True)
class PageRequest:
    """What the caller asked for: at most ``limit`` rows after ``cursor`` (None: from the start)."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


class Page(BaseModel, Generic[T]):
    """One page of a list, in the list's order. ``next_cursor`` fetches the rows after it; null on the last page."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="pass as ?cursor= (with the same filters) for the next page; null when none"
    )
    limit: int = Field(description="the page size asked for (or the default)")


def encode(ordering: Ordering, position: Sequence[Any]) -> str:
    values = []
    for key, value in zip(ordering.keys, position, strict=True):
        tag, to_json = _ENCODE[key.python_type]
        values.append([tag, to_json(value)])
    raw = json.dumps({"o": ordering.name, "k": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(ordering: Ordering, cursor: str) -> list[Any]:
    """The position ``cursor`` names in ``ordering``, or InvalidCursor saying why not."""
    if len(cursor) > MAX_CURSOR_CHARS:
        _bad("too long")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        document = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        _bad("not readable")
    if not isinstance(document, dict) or document.get("o") != ordering.name:
        _bad("issued for another list or order")
    values = document.get("k")
    if not isinstance(values, list) or len(values) != len(ordering.keys):
        _bad("wrong number of values")
    position = []
    for key, item in zip(ordering.keys, values, strict=True):
        if not isinstance(item, list) or len(item) != 2 or item[0] not in _DECODE:
            _bad("a value of unknown kind")
        kind, parse = _DECODE[item[0]]
        if kind is not key.python_type:
            _bad(f"a {item[0]} value where {key.name} is sorted")
        try:
            value = parse(item[1])
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, InvalidCursor):
                raise
            _bad(f"{key.name} is not readable")
        _check_fits(key, value)
        position.append(value)
    return position


def _check_fits(key: SortKey, value: Any) -> None:
    """Refuse what the database would fail on (a 500 instead of a clear 422): an integer beyond the column,
    text PostgreSQL cannot hold (NUL, a lone surrogate) or longer than the column."""
    if isinstance(value, int) and not isinstance(value, bool):
        bound = 2**63 if isinstance(key.column.type, BigInteger) else 2**31
        if not -bound <= value < bound:
            _bad(f"{key.name} is out of range")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            _bad(f"{key.name} is not text")
        length = getattr(key.column.type, "length", None)
        if "\x00" in value or (length is not None and len(value) > length):
            _bad(f"{key.name} is not text this list holds")


def paginate(query: Select[Any], ordering: Ordering, page: PageRequest) -> Select[Any]:
    """``query`` in ``ordering``, from after the cursor, one row more than the page (to know if another follows)."""
    if page.cursor is not None:
        query = query.where(ordering.after(decode(ordering, page.cursor)))
    return query.order_by(*ordering.order_by()).limit(page.limit + 1)


def page_of(rows: Sequence[Mapping[str, Any]], ordering: Ordering, page: PageRequest) -> dict[str, Any]:
    """The page body for rows read with ``paginate`` (their mappings must include every sort column)."""
    items = list(rows[: page.limit])
    more = len(rows) > page.limit
    return {
        "items": items,
        "next_cursor": encode(ordering, ordering.position_of(items[-1])) if more else None,
        "limit": page.limit,
    }


async def read_page(session: AsyncSession, query: Select[Any], ordering: Ordering, page: PageRequest) -> dict[str, Any]:
    """One page of ``query`` read in ``session``: ``paginate``, each row as a dict, ``page_of``."""
    rows = [dict(r) for r in (await session.execute(paginate(query, ordering, page))).mappings()]
    return page_of(rows, ordering, page)
