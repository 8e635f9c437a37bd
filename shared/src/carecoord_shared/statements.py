"""SQL statements the services' handlers issue on every event, shaped so SQLAlchemy compiles them once.

SQLAlchemy caches a statement's compiled form by its cache key, but the PostgreSQL dialect's
``insert(...).on_conflict_do_nothing()`` has none in SQLAlchemy 2.0 (its ``Insert`` sets
``inherit_cache = False``): it was compiled anew on every execution, ~75 µs each, for facts a
handler records once per id. :func:`insert_new` sends the same SQL as a text statement with typed
binds, built once per table and column set, which the compiled cache keeps.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, Row, Table, TextClause, TextualSelect, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_new(session: AsyncSession, table: Table, key: str | None, **values: Any) -> None:
    """``INSERT INTO table (...) VALUES (...) ON CONFLICT (key) DO NOTHING``: the row unless one with its key
    exists (``key`` None: unless it conflicts with any unique constraint). Columns not given get their
    server defaults, as with ``insert(table).values(...)``."""
    await session.execute(_statement(table, key, tuple(values)), values)


def _insert(table: Table, columns: tuple[str, ...]) -> tuple[str, list[BindParameter[Any]]]:
    """``INSERT INTO table (columns) VALUES (:columns)`` and its typed binds, the head of every statement here.
    Every name is the table's own (table.c[name] refuses any other): nothing from outside reaches the text."""
    binds = [bindparam(name, type_=table.c[name].type) for name in columns]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(table.c[name].name for name in columns)}) "
        f"VALUES ({', '.join(f':{name}' for name in columns)})"
    )
    return sql, binds


@lru_cache(maxsize=64)
def _statement(table: Table, key: str | None, columns: tuple[str, ...]) -> TextClause:
    head, binds = _insert(table, columns)
    target = f" ({table.c[key].name})" if key is not None else ""
    return text(f"{head} ON CONFLICT{target} DO NOTHING").bindparams(*binds)


async def upsert(
    session: AsyncSession, table: Table, key: str, values: dict[str, Any], *, on_update: dict[str, Any] | None = None
) -> None:
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET``: the row, or the existing row with its key given ``values``
    (every column but the key) and ``on_update`` (columns set only when the row exists, e.g. ``updated_at``) -- as
    ``insert(table).values(...).on_conflict_do_update(index_elements=[key], set_={**values, **on_update})``."""
    extra = on_update or {}
    params = {**values, **{f"set_{name}": value for name, value in extra.items()}}
    await session.execute(_upsert(table, key, tuple(values), tuple(extra)), params)


@lru_cache(maxsize=64)
def _upsert(table: Table, key: str, columns: tuple[str, ...], extra: tuple[str, ...]) -> TextClause:
    head, binds = _insert(table, columns)
    binds += [bindparam(f"set_{name}", type_=table.c[name].type) for name in extra]
    updates = [f"{table.c[name].name} = excluded.{table.c[name].name}" for name in columns if name != key]
    updates += [f"{table.c[name].name} = :set_{name}" for name in extra]
    sql = f"{head} ON CONFLICT ({table.c[key].name}) DO UPDATE SET {', '.join(updates)}"
    return text(sql).bindparams(*binds)


async def insert_new_returning(
    session: AsyncSession, table: Table, constraint: str, returning: tuple[str, ...], **values: Any
) -> Row[Any] | None:
    """``INSERT ... ON CONFLICT ON CONSTRAINT constraint DO NOTHING RETURNING returning``: the new row's
    ``returning`` columns, or None when a row with its unique values exists -- as
    ``insert(table).values(...).on_conflict_do_nothing(constraint=...).returning(...)``, compiled once."""
    result = await session.execute(_returning(table, constraint, tuple(values), returning), values)
    return result.first()


@lru_cache(maxsize=64)
def _returning(table: Table, constraint: str, columns: tuple[str, ...], returning: tuple[str, ...]) -> TextualSelect:
    # The constraint too is one of the table's own.
    if constraint not in {c.name for c in table.constraints}:
        raise ValueError(f"{table.name} has no constraint {constraint!r}")
    head, binds = _insert(table, columns)
    sql = (
        f"{head} ON CONFLICT ON CONSTRAINT {constraint} DO NOTHING "
        f"RETURNING {', '.join(table.c[name].name for name in returning)}"
    )
    return text(sql).bindparams(*binds).columns(*(table.c[name] for name in returning))
