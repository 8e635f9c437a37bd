"""This service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import MetaData

from carecoord_shared.messaging.journal import journal_table
from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)
journal = journal_table(metadata)
