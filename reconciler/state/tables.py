"""The state store's tables at the newest schema version, for queries.

The migrations in `migrations/versions/` create these tables. They spell the
columns out again on purpose, because a migration must keep doing what it
did when it shipped. A test checks that both agree.
"""

from __future__ import annotations

import sqlalchemy as sa

# Plain JSON, not JSONB, on PostgreSQL: it keeps the key order of normalised specs for display.
Json = sa.JSON()
Time = sa.DateTime(timezone=True)

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lineage", sa.String(36), nullable=False),
    sa.Column("serial", sa.Integer, nullable=False),
    # The key of the keyed HMAC of secret values; it never leaves this table.
    sa.Column("hmac_key", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("address", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("spec", Json, nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("protected", sa.Boolean, nullable=False),
    sa.Column("previous_names", Json, nullable=False),
    sa.Column("source_file", sa.Text, nullable=True),
    sa.Column("secret_hashes", Json, nullable=False),
    sa.Column("applied_at", Time, nullable=False),
    sa.Column("applied_by", sa.String(200), nullable=False),
)

resource_versions = sa.Table(
    "resource_versions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(36), nullable=False, index=True),
    sa.Column("address", sa.String(200), nullable=False, index=True),
    sa.Column("previous_address", sa.String(200), nullable=True),
    sa.Column("replaced_id", sa.String(36), nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("spec", Json, nullable=True),
    sa.Column("spec_hash", sa.String(64), nullable=True),
    sa.Column("serial", sa.Integer, nullable=False),
    sa.Column("applied_at", Time, nullable=False),
    sa.Column("applied_by", sa.String(200), nullable=False),
)

tombstones = sa.Table(
    "tombstones",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("spec", Json, nullable=True),
    sa.Column("deleted_at", Time, nullable=False),
    sa.Column("deleted_serial", sa.Integer, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", Time, nullable=False),
    sa.Column("user", sa.String(200), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("git_branch", sa.String(200), nullable=True),
    sa.Column("serial_before", sa.Integer, nullable=False),
    sa.Column("serial_after", sa.Integer, nullable=False),
    sa.Column("plan", Json, nullable=False),
    sa.Column("summary", Json, nullable=False),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("since", Time, nullable=False),
)

# Schema version 2: data-plane bookkeeping.

SYNC_COUNTS = (
    "entered",
    "exited",
    "updated",
    "sent",
    "acknowledged",
    "rejected",
    "held_back",
    "members",
    "eligible",
    "non_consented",
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("as_of", Time, nullable=False),
    sa.Column("selectors", Json, nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", Time, nullable=False, index=True),
    sa.Column("finished_at", Time, nullable=True),
    sa.Column("started_by", sa.String(200), nullable=False),
)

run_resources = sa.Table(
    "run_resources",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("address", sa.String(200), primary_key=True),
    sa.Column("resource_id", sa.String(36), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

sync_records = sa.Table(
    "sync_records",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("audience", sa.String(200), nullable=False),
    sa.Column("audience_id", sa.String(36), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("destination_id", sa.String(36), nullable=False),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("finished_at", Time, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    *(sa.Column(count, sa.BigInteger, nullable=False) for count in SYNC_COUNTS),
    sa.Column("error", sa.Text, nullable=True),
)
sa.Index("ix_sync_records_pair", sync_records.c.audience, sync_records.c.destination)
