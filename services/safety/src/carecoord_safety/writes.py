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
"""

from __future__ import annotations

from sqlalchemy import Delete, Insert, Update

from carecoord_shared.messaging.unit_of_work import Transaction

Write = Insert | Update | Delete


class Writes:
    def __init__(self) -> None:
        self._staged: list[Write] = []

    def add(self, statement: Write) -> None:
        self._staged.append(statement)

    async def save(self, tx: Transaction) -> None:
        """Send what is staged, as one statement, in ``tx``; nothing when nothing is."""
        if not self._staged:
            return
        *before, last = self._staged
        self._staged = []
        if before:
            last = last.add_cte(*(write.cte(f"write_{i}") for i, write in enumerate(before)))
        await tx.session.execute(last)
