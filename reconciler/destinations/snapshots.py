"""The sync engine's warehouse tables.

`personas_sync_snapshots`: per (audience id, destination id, identifier
value), what the destination acknowledged holding from personas. Diffs run
against it, and it only ever advances for acknowledged changes.

`personas_sync_outbox`: changes written before they are sent. Status
`pending` is queued or sent without acknowledgement (re-sent with the same
idempotency key), `held` is a removal kept back by the removal guard, `acked`
exists only inside the transaction that applies it to the snapshot.

`personas_sync_rejected`: changes a destination refused (HTTP 400/422), with
the reason; the same change is not sent again until its content changes.

No primary keys are declared, because DuckDB checks them too eagerly when a
key is deleted and inserted in one transaction. The engine keeps the keys unique.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

snapshots = sa.Table(
    "personas_sync_snapshots",
    metadata,
    sa.Column("audience_id", sa.Text, nullable=False),
    sa.Column("destination_id", sa.Text, nullable=False),
    sa.Column("identifier_value", sa.Text, nullable=False),
    sa.Column("identifier_type", sa.Text, nullable=False),
    sa.Column("audience", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("traits_sig", sa.Text, nullable=False),
    sa.Column("entered_at", sa.DateTime, nullable=False),  # as_of of the run that queued the entry
    sa.Column("updated_at", sa.DateTime, nullable=False),  # wall-clock time of the last acknowledgement
)

outbox = sa.Table(
    "personas_sync_outbox",
    metadata,
    sa.Column("audience_id", sa.Text, nullable=False),
    sa.Column("destination_id", sa.Text, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("audience", sa.Text, nullable=False),
    sa.Column("change_type", sa.Text, nullable=False),
    sa.Column("identifier_type", sa.Text, nullable=False),
    sa.Column("identifier_value", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("traits_sig", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("change_at", sa.DateTime, nullable=False),
)

rejected = sa.Table(
    "personas_sync_rejected",
    metadata,
    sa.Column("audience_id", sa.Text, nullable=False),
    sa.Column("destination_id", sa.Text, nullable=False),
    sa.Column("identifier_value", sa.Text, nullable=False),
    sa.Column("identifier_type", sa.Text, nullable=False),
    sa.Column("change_type", sa.Text, nullable=False),
    sa.Column("traits_sig", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("rejected_at", sa.DateTime, nullable=False),
)

SYNC_TABLES = (snapshots, outbox, rejected)

_indexes = (
    sa.Index("ix_personas_sync_snapshots_pair", snapshots.c.audience_id, snapshots.c.destination_id),
    sa.Index("ix_personas_sync_outbox_pair", outbox.c.audience_id, outbox.c.destination_id, outbox.c.status),
)


def ensure_tables(engine: sa.Engine) -> None:
    """Create the sync tables when missing (idempotent; safe to call every run)."""
    with engine.begin() as connection:
        for table in SYNC_TABLES:
            connection.execute(sa.schema.CreateTable(table, if_not_exists=True))
        if engine.dialect.name == "postgresql":
            for index in _indexes:
                connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def pair_filter(table: sa.Table, audience_id: str, destination_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.audience_id == audience_id, table.c.destination_id == destination_id)


def members_sent(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Count, per (audience id, destination id), the members the destination received from personas."""
    query = sa.select(
        snapshots.c.audience_id, snapshots.c.destination_id, sa.func.count(sa.distinct(snapshots.c.subject_id))
    ).group_by(snapshots.c.audience_id, snapshots.c.destination_id)
    with engine.connect() as connection:
        if not _exists(connection, snapshots.name):
            return {}
        return {(row[0], row[1]): int(row[2]) for row in connection.execute(query)}


def rejected_now(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """Per (audience id, destination id), the changes rejected and not sent again yet."""
    query = sa.select(rejected.c.audience_id, rejected.c.destination_id, sa.func.count()).group_by(
        rejected.c.audience_id, rejected.c.destination_id
    )
    with engine.connect() as connection:
        if not _exists(connection, rejected.name):
            return {}
        return {(row[0], row[1]): int(row[2]) for row in connection.execute(query)}


def rejected_changes(engine: sa.Engine, audience_id: str, destination_id: str, limit: int) -> list[dict[str, Any]]:
    """Read the pair's rejected changes that wait for a content change, oldest first, with their reasons."""
    query = (
        sa.select(rejected.c.change_type, rejected.c.identifier_type, rejected.c.identifier_value, rejected.c.reason,
                  rejected.c.run_id, rejected.c.rejected_at)
        .where(pair_filter(rejected, audience_id, destination_id))
        .order_by(rejected.c.rejected_at, rejected.c.identifier_value)
        .limit(limit)
    )
    with engine.connect() as connection:
        if not _exists(connection, rejected.name):
            return []
        return [dict(row) for row in connection.execute(query).mappings()]


def _exists(connection: sa.Connection, name: str) -> bool:
    query = sa.text("SELECT count(*) FROM information_schema.tables WHERE table_name = :name")
    return bool(connection.execute(query, {"name": name}).scalar_one())
