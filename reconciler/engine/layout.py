"""The tables personas owns in the warehouse: events, quarantine, ingest batches, identity.

docs/warehouse.md documents every table and column here; keep the two in step.
JSON columns are JSON on DuckDB and JSONB on PostgreSQL; timestamps are
TIMESTAMP WITHOUT TIME ZONE holding UTC. Integer keys use explicit sequences
because duckdb-engine cannot create SERIAL columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=False)

batch_seq = sa.Sequence("personas_ingest_batch_seq", metadata=metadata)
merge_seq = sa.Sequence("personas_merge_seq", metadata=metadata)
quarantine_seq = sa.Sequence("personas_quarantine_seq", metadata=metadata)

events = sa.Table(
    "personas_events",
    metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("event", sa.Text),
    sa.Column("user_id", sa.Text),
    sa.Column("anonymous_id", sa.Text),
    sa.Column("group_id", sa.Text),
    sa.Column("timestamp", Timestamp, nullable=False),
    sa.Column("original_timestamp", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp),
    sa.Column("received_at", Timestamp),
    sa.Column("properties", JSONType),
    sa.Column("traits", JSONType),
    sa.Column("context", JSONType),
    sa.Column("batch_seq", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", Timestamp, nullable=False),
)

quarantine = sa.Table(
    "personas_quarantine",
    metadata,
    sa.Column("id", sa.BigInteger, quarantine_seq, server_default=quarantine_seq.next_value(), primary_key=True),
    sa.Column("batch_seq", sa.BigInteger, nullable=False),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("line_number", sa.BigInteger, nullable=False),
    sa.Column("raw_line", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("quarantined_at", Timestamp, nullable=False),
)

ingest_batches = sa.Table(
    "personas_ingest_batches",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("files", JSONType, nullable=False),
    sa.Column("read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("stored", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("quarantined", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("suppressed", sa.BigInteger, nullable=False, server_default="0"),
)

suppressions = sa.Table(
    "personas_suppressions",
    metadata,
    sa.Column("identifier_hmac", sa.Text, primary_key=True),
    sa.Column("suppressed_at", Timestamp, nullable=False),
)

profiles = sa.Table(
    "personas_profiles",
    metadata,
    sa.Column("profile_id", sa.Text, primary_key=True),
    # Creation order within one resolution; the oldest profile survives a merge.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("first_seen", Timestamp, nullable=False),
    sa.Column("first_message_id", sa.Text, nullable=False),
    sa.Column("merged_into", sa.Text),
    sa.Index("personas_profiles_merged_into", "merged_into"),
)

identifiers = sa.Table(
    "personas_identifiers",
    metadata,
    sa.Column("identifier_type", sa.Text, primary_key=True),
    sa.Column("identifier_value", sa.Text, primary_key=True),
    sa.Column("profile_id", sa.Text, nullable=False),
    sa.Column("first_seen", Timestamp, nullable=False),
    sa.Column("last_seen", Timestamp, nullable=False),
    sa.Index("personas_identifiers_profile", "profile_id"),
)

message_profiles = sa.Table(
    "personas_message_profiles",
    metadata,
    sa.Column("message_id", sa.Text, primary_key=True),
    # The current canonical profile: rewritten when its profile merges into another.
    # NULL when the message carries no usable identifier.
    sa.Column("profile_id", sa.Text),
    sa.Index("personas_message_profiles_profile", "profile_id"),
)

merges = sa.Table(
    "personas_merges",
    metadata,
    sa.Column("seq", sa.BigInteger, merge_seq, server_default=merge_seq.next_value(), primary_key=True),
    # A merge: the profile merged away and the one it merged into. A refused merge:
    # merged_profile_id is NULL and reason says which limit and which value was dropped.
    sa.Column("survivor_profile_id", sa.Text),
    sa.Column("merged_profile_id", sa.Text),
    sa.Column("profiles", JSONType, nullable=False),
    sa.Column("identifiers", JSONType, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("message_timestamp", Timestamp, nullable=False),
    sa.Column("refused", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("resolved_at", Timestamp, nullable=False),
)

account_users = sa.Table(
    "personas_account_users",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("profile_id", sa.Text, primary_key=True),
    sa.Column("first_seen", Timestamp, nullable=False),
    sa.Column("last_seen", Timestamp, nullable=False),
)

identity_state = sa.Table(
    "personas_identity_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rules_hash", sa.Text, nullable=False),
    sa.Column("last_batch_seq", sa.BigInteger),
    sa.Column("resolved_at", Timestamp, nullable=False),
)

SEQUENCES = (batch_seq, merge_seq, quarantine_seq)
IDENTITY_TABLES = (profiles, identifiers, message_profiles, merges, account_users, identity_state)
