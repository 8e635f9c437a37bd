"""The bookkeeping of files we send: each X12 interchange gets its control number
(ISA13/GS06) from a database serial before it is written, and is marked sent after."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, update

from carecoord_shared.messaging.unit_of_work import Transaction

from .models import interchanges


async def reserve(tx: Transaction, transaction: str) -> int:
    reserved = await tx.session.execute(
        insert(interchanges).values(transaction=transaction).returning(interchanges.c.control_number)
    )
    control_number: int = reserved.scalar_one()
    return control_number


def file_name(transaction: str, control_number: int) -> str:
    return f"{transaction}-{control_number:09d}.x12"


async def mark_sent(tx: Transaction, control_number: int, name: str, now: datetime) -> None:
    await tx.session.execute(
        update(interchanges)
        .where(interchanges.c.control_number == control_number)
        .values(status="sent", file_name=name, sent_at=now)
    )
