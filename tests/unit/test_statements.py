"""The shared insert statements are built once per table and column set (SQLAlchemy then compiles them
once), and say in SQL what the dialect's ``on_conflict_do_nothing`` inserts said."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, UniqueConstraint, Uuid

from carecoord_shared.statements import _returning

METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("thing_id", Uuid, primary_key=True),
    Column("kind", String),
    Column("cause", Uuid),
    UniqueConstraint("kind", "cause", name="uq_things_kind_cause"),
)


def test_an_insert_returning_unless_a_constraint_conflicts_is_one_statement_object_per_shape() -> None:
    first = _returning(THINGS, "uq_things_kind_cause", ("thing_id", "kind", "cause"), ("thing_id",))
    assert _returning(THINGS, "uq_things_kind_cause", ("thing_id", "kind", "cause"), ("thing_id",)) is first
    assert str(first) == (
        "INSERT INTO things (thing_id, kind, cause) VALUES (:thing_id, :kind, :cause) "
        "ON CONFLICT ON CONSTRAINT uq_things_kind_cause DO NOTHING RETURNING thing_id"
    )
    assert [c.name for c in first.selected_columns] == ["thing_id"]  # typed: the row's uuid comes back a UUID


def test_an_insert_returning_refuses_a_constraint_its_table_does_not_have() -> None:
    with pytest.raises(ValueError, match="no constraint"):
        _returning(THINGS, "uq_other_table", ("thing_id",), ("thing_id",))
    with pytest.raises(KeyError):
        _returning(THINGS, "uq_things_kind_cause", ("no_such_column",), ("thing_id",))
