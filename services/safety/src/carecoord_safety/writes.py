"""The writes of one decision, sent to the database as one statement.

A use case decides first (pure), then saves: the observation's row, the review it
opens or joins, the review's overdue timer, the trigger that links them and the
hold. Each was a statement and a loopback round trip of its own; staged here they
go as one, each write a data-modifying CTE of the last (PostgreSQL runs them all,
whether or not anything reads them).

What that asks of the writes staged together: none may need to see another's
effect (they share one snapshot: an UPDATE cannot touch a row a sibling inserts,
and no row may be changed twice); foreign keys are checked at the end of the
statement, so a trigger may point at a review inserted beside it. The decisions
staged in one save touch distinct rows (one review per reason, the rules merge
requests by reason), and the loads they depend on ran before it.

A row insert (:meth:`Writes.insert`) is a statement built once per table, columns
and place in the save, its values bound when it is sent; a save made of those
alone is composed once per shape. Building an insert with its values and the
cache key of a fresh statement of five writes cost more CPU than the rest of the
decision; SQLAlchemy's compiled cache then finds the composed statement at once.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Delete, Executable, Insert, Table, Update, bindparam, insert

from carecoord_shared.messaging.unit_of_work import Transaction

Write = Insert | Update | Delete


class Writes:
    def __init__(self) -> None:
        self._staged: list[Write] = []
        self._params: dict[str, Any] = {}
        self._shape: list[Write] | None = []  # the templates staged, while nothing else is

    def insert(self, table: Table, **values: Any) -> None:
        """Stage one row's insert into ``table``."""
        place = len(self._staged)
        template = _insert(table, tuple(values), place)
        self._staged.append(template)
        self._params.update({f"w{place}_{column}": value for column, value in values.items()})
        if self._shape is not None:
            self._shape.append(template)

    def add(self, statement: Write) -> None:
        """Stage a statement that carries its own values (an update, an upsert)."""
        self._staged.append(statement)
        self._shape = None

    async def save(self, tx: Transaction) -> None:
        """Send what is staged, as one statement, in ``tx``; nothing when nothing is."""
        if not self._staged:
            return
        statement = _composed(tuple(self._shape)) if self._shape is not None else _compose(self._staged)
        params = self._params
        self._staged, self._params, self._shape = [], {}, []
        await tx.session.execute(statement, params)


@functools.lru_cache(maxsize=256)  # shapes: tables x columns x places, a few dozen
def _insert(table: Table, columns: tuple[str, ...], place: int) -> Insert:
    return insert(table).values({c: bindparam(f"w{place}_{c}", type_=table.c[c].type) for c in columns})


@functools.lru_cache(maxsize=256)  # shapes: tables x columns x places, a few dozen
def _composed(templates: tuple[Write, ...]) -> Executable:
    return _compose(list(templates))


def _compose(writes: list[Write]) -> Executable:
    *before, last = writes
    return last.add_cte(*(write.cte(f"write_{i}") for i, write in enumerate(before))) if before else last
