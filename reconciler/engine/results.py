"""The results tables a run writes in the warehouse.

Keyed by the stable resource id from the state store, so a renamed trait or
audience keeps its values, members and history; the name columns are for
people reading the tables.

* `personas_trait_values`: the current value of each trait per subject, one
  typed column filled by the trait's value type (0 counts are stored).
* `personas_audience_members`: the current members, with the holdout flag.
* `personas_membership_history`: one row per stay in an audience; open while
  `exited_at` is NULL. Entries and exits carry the run's as_of and id.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=False)
Decimal38 = sa.Numeric(38, 9)

trait_values = sa.Table(
    "personas_trait_values",
    metadata,
    sa.Column("trait_id", sa.Text, nullable=False),
    sa.Column("trait", sa.Text, nullable=False),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("value_type", sa.Text, nullable=False),
    sa.Column("value_text", sa.Text),
    sa.Column("value_number", Decimal38),
    sa.Column("value_boolean", sa.Boolean),
    sa.Column("value_timestamp", Timestamp),
    sa.Column("value_json", JSONType),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("as_of", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("trait_id", "subject_id"),
)

audience_members = sa.Table(
    "personas_audience_members",
    metadata,
    sa.Column("audience_id", sa.Text, nullable=False),
    sa.Column("audience", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("holdout", sa.Boolean, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("as_of", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("audience_id", "subject_id"),
)

membership_history = sa.Table(
    "personas_membership_history",
    metadata,
    sa.Column("audience_id", sa.Text, nullable=False),
    sa.Column("subject_id", sa.Text, nullable=False),
    sa.Column("entered_at", Timestamp, nullable=False),
    sa.Column("exited_at", Timestamp),
    sa.Column("entered_run", sa.Text, nullable=False),
    sa.Column("exited_run", sa.Text),
    sa.Index("personas_membership_history_open", "audience_id", "subject_id"),
)

TABLES = (trait_values, audience_members, membership_history)


def ensure_results_tables(connection: sa.Connection) -> None:
    """Create the results tables that are missing (reads information_schema, no reflection)."""
    tables = sa.table("tables", sa.column("table_name"), sa.column("table_schema"), schema="information_schema")
    query = sa.select(tables.c.table_name).where(
        tables.c.table_name.like("personas_%"), tables.c.table_schema == sa.func.current_schema()
    )
    existing = set(connection.execute(query).scalars())
    for table in TABLES:
        if table.name not in existing:
            table.create(connection)
