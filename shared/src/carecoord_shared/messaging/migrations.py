"""Migration steps for the messaging tables every service has (outbox, inbox).

Each step is frozen once released: a later change to the tables is a new
step (``..._v2``) that services add in a new migration of their own, so that
replaying an old migration always builds the schema it built the first time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_messaging_tables_v1() -> None:
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "trace_context",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_outbox_unsent", "outbox", ["id"], unique=False, postgresql_where=sa.text("sent_at IS NULL"))


def drop_messaging_tables_v1() -> None:
    op.drop_index("ix_outbox_unsent", table_name="outbox", postgresql_where=sa.text("sent_at IS NULL"))
    op.drop_table("outbox")
    op.drop_table("inbox")


def create_parked_events_v1() -> None:
    op.create_table(
        "parked_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("error", sa.String(length=120), server_default="", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_parked_events_patient", "parked_events", ["patient_id", "id"], unique=False)


def drop_parked_events_v1() -> None:
    op.drop_index("ix_parked_events_patient", table_name="parked_events")
    op.drop_table("parked_events")


def add_outbox_parking_v1() -> None:
    op.add_column("outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("park_error", sa.String(length=80), nullable=True))
    op.create_index(
        "ix_outbox_parked",
        "outbox",
        ["topic", "key", "id"],
        unique=False,
        postgresql_where=sa.text("parked_at IS NOT NULL AND sent_at IS NULL"),
    )


def drop_outbox_parking_v1() -> None:
    op.drop_index(
        "ix_outbox_parked", table_name="outbox", postgresql_where=sa.text("parked_at IS NOT NULL AND sent_at IS NULL")
    )
    op.drop_column("outbox", "park_error")
    op.drop_column("outbox", "parked_at")


def create_event_journal_v1() -> None:
    op.create_table(
        "event_journal",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=80), nullable=False),
        sa.Column("producer", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_event_journal_patient", "event_journal", ["patient_id", "occurred_at"], unique=False)


def drop_event_journal_v1() -> None:
    op.drop_index("ix_event_journal_patient", table_name="event_journal")
    op.drop_table("event_journal")


def create_idempotency_keys_v1() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("subject", "route", "key"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"], unique=False)


def drop_idempotency_keys_v1() -> None:
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")


def add_row_version_v1(table: str) -> None:
    """A ``version`` column on ``table`` that a trigger raises on every update: the resource's ETag
    (carecoord_shared.http.preconditions). Existing rows start at 1."""
    op.add_column(table, sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    function = f"{table}_bump_version"
    op.execute(
        f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.version := OLD.version + 1;
            RETURN NEW;
        END $$"""
    )
    op.execute(f"CREATE TRIGGER {function} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()")


def drop_row_version_v1(table: str) -> None:
    function = f"{table}_bump_version"
    op.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_column(table, "version")
