"""Cursors: what a list issues it reads back; anything else is a clear InvalidCursor, never a crash."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Uuid, select
from sqlalchemy.dialects import postgresql

from carecoord_shared.errors import InvalidCursor
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, decode, encode, page_of, paginate

rows = Table(
    "rows",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(20), nullable=False),
    Column("note", String(20), nullable=True),
)
ORDER = Ordering("rows.rank", (SortKey(rows.c.rank, descending=True), SortKey(rows.c.due_at), SortKey(rows.c.id)))
POSITION = [3, datetime(2026, 12, 1, 9, 30, tzinfo=UTC), uuid.UUID(int=7)]


def _raw(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def test_a_cursor_reads_back_as_the_position_it_was_issued_for() -> None:
    assert decode(ORDER, encode(ORDER, POSITION)) == POSITION


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "x" * 2000,
        _raw([1, 2]),
        _raw({"o": "other.list", "k": [["i", 3], ["t", "2026-12-01T09:30:00+00:00"], ["u", str(uuid.UUID(int=7))]]}),
        _raw({"o": "rows.rank", "k": [["i", 3]]}),
        _raw({"o": "rows.rank", "k": [["s", "3"], ["t", "2026-12-01T09:30:00+00:00"], ["u", str(uuid.UUID(int=7))]]}),
        _raw({"o": "rows.rank", "k": [["i", True], ["t", "2026-12-01T09:30:00+00:00"], ["u", str(uuid.UUID(int=7))]]}),
        _raw({"o": "rows.rank", "k": [["i", 3], ["t", "2026-12-01T09:30:00"], ["u", str(uuid.UUID(int=7))]]}),
        _raw({"o": "rows.rank", "k": [["i", 3], ["t", "yesterday"], ["u", "not-a-uuid"]]}),
        _raw({"o": "rows.rank", "k": [["i", 3], ["t", 5], ["u", None]]}),
        _raw({"o": "rows.rank", "k": [["i", 3], ["x", 1], ["u", str(uuid.UUID(int=7))]]}),
        _raw({"o": "rows.rank", "k": "no"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        # What PostgreSQL would refuse with an error (a 500) rather than compare: refused as a bad cursor.
        _raw({"o": "rows.rank", "k": [["i", 2**31], ["t", "2026-12-01T09:30:00+00:00"], ["u", str(uuid.UUID(int=7))]]}),
        _raw({"o": "rows.rank", "k": [["i", 3], ["t", "0001-01-01T00:00:00+05:00"], ["u", str(uuid.UUID(int=7))]]}),
        # Characters outside the base64url alphabet are not skipped over.
        encode(ORDER, POSITION)[:8] + "*.~" + encode(ORDER, POSITION)[8:],
    ],
)
def test_a_cursor_this_list_did_not_issue_is_refused_clearly(cursor: str) -> None:
    with pytest.raises(InvalidCursor, match="start again without it"):
        decode(ORDER, cursor)


REASONS = Ordering("rows.reason", (SortKey(rows.c.reason), SortKey(rows.c.id)))


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "x" * 21])
def test_text_postgresql_cannot_hold_or_compare_is_refused(text: str) -> None:
    cursor = _raw({"o": "rows.reason", "k": [["s", text], ["u", str(uuid.UUID(int=7))]]})
    with pytest.raises(InvalidCursor):
        decode(REASONS, cursor)


def test_a_timestamp_comes_back_in_utc() -> None:
    at = datetime.fromisoformat("2026-12-01T10:30:00+01:00")
    assert decode(ORDER, encode(ORDER, [3, at, uuid.UUID(int=7)]))[1].utcoffset().total_seconds() == 0


def test_the_position_is_a_where_clause_over_mixed_directions() -> None:
    query = paginate(select(rows), ORDER, PageRequest(limit=2, cursor=encode(ORDER, POSITION)))
    sql = str(query.compile(dialect=postgresql.dialect()))
    assert "rows.rank < " in sql and "rows.due_at > " in sql and "rows.id > " in sql
    assert "ORDER BY rows.rank DESC, rows.due_at ASC, rows.id ASC" in sql
    assert query._limit == 3  # one row more than the page, to know whether another page follows


def test_a_page_has_a_next_cursor_only_when_more_rows_follow() -> None:
    read = [dict(zip(("rank", "due_at", "id"), POSITION, strict=True)) | {"n": n} for n in range(3)]
    full = page_of(read, ORDER, PageRequest(limit=2))
    assert [r["n"] for r in full["items"]] == [0, 1]
    assert decode(ORDER, full["next_cursor"]) == POSITION
    assert page_of(read[:2], ORDER, PageRequest(limit=2))["next_cursor"] is None


def test_an_ordering_refuses_a_timestamp_without_zone() -> None:
    naive = Table("naive", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime, nullable=False))
    with pytest.raises(ValueError, match="without time zone"):
        Ordering("naive", (SortKey(naive.c.at), SortKey(naive.c.id)))


def test_an_ordering_refuses_a_nullable_sort_key() -> None:
    with pytest.raises(ValueError, match="may be NULL"):
        Ordering("rows.note", (SortKey(rows.c.note), SortKey(rows.c.id)))
