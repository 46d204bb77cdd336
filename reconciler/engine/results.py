"""The results tables a run writes in the warehouse.

They are keyed by the stable resource id from the state store, so a renamed
trait or audience keeps its values, members and history. The name columns
are for people reading the tables.

* `personas_trait_values`: the current value of each trait per subject, one
  typed column filled by the trait's value type (0 counts are stored).
* `personas_audience_members`: the current members, with the holdout flag.
* `personas_membership_history`: one row per stay in an audience; open while
  `exited_at` is NULL. Entries and exits carry the run's as_of and id.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from reconciler.engine.compiler.functions import ExactDecimal

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=False)
Decimal38 = ExactDecimal()

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
)

TABLES = (trait_values, audience_members, membership_history)

# Lookups by resource and subject. DuckDB gets none: its indexes make a run's
# delete and re-insert of the same keys in one transaction very slow (over two
# minutes for a million rows, against seconds without), and it scans fast anyway.
INDEXES = {
    "personas_trait_values": ("personas_trait_values_subject", ("trait_id", "subject_id")),
    "personas_audience_members": ("personas_audience_members_subject", ("audience_id", "subject_id")),
    "personas_membership_history": ("personas_membership_history_subject", ("audience_id", "subject_id")),
}


def ensure_results_tables(connection: sa.Connection) -> None:
    """Create the results tables that are missing, with their indexes (reads information_schema, no reflection)."""
    tables = sa.table("tables", sa.column("table_name"), sa.column("table_schema"), schema="information_schema")
    query = sa.select(tables.c.table_name).where(
        tables.c.table_name.like("personas_%"), tables.c.table_schema == sa.func.current_schema()
    )
    existing = set(connection.execute(query).scalars())
    for table in TABLES:
        if table.name in existing:
            continue
        table.create(connection)
        if connection.dialect.name != "duckdb":
            name, columns = INDEXES[table.name]
            # A detached copy, so the index never attaches to the shared table definition.
            detached = sa.Table(table.name, sa.MetaData(), *(sa.Column(column) for column in columns))
            connection.execute(sa.schema.CreateIndex(sa.Index(name, *detached.c)))


def temp_table(name: str, *columns: str) -> sa.Table:
    """Return a handle on a temporary table made with CreateTempTableAs, naming its columns."""
    return sa.Table(name, sa.MetaData(), *(sa.Column(column) for column in columns))


def analyze(connection: sa.Connection, table: sa.Table) -> None:
    """Index a freshly filled temporary table by subject_id and gather statistics, on PostgreSQL.

    Without them the planner may guess a handful of rows and pick a nested
    loop that scans the table once per history row: an exit update against
    15,000 members took 13 s. With the index such a loop is a lookup per row.
    DuckDB needs neither.
    """
    if connection.dialect.name != "postgresql":
        return
    index = sa.Index(f"{table.name}_subject", table.c.subject_id)
    connection.execute(sa.schema.CreateIndex(index))
    connection.execute(sa.text(f"ANALYZE {connection.dialect.identifier_preparer.quote(table.name)}"))


def refresh_statistics(connection: sa.Connection) -> list[str]:
    """ANALYZE personas' own PostgreSQL tables whose statistics are missing or stale; returns their names.

    A table changed by a large ingest or run is stale until autovacuum gets to
    it (or forever, with autovacuum off). The planner then guesses a few rows
    and picks nested loops: the CDNOW winback audience took 23 s instead of
    0.3 s. Stale means never analyzed, or more changes since the last ANALYZE
    than a tenth of its rows plus 1,000. Tables read through `sources:` are
    not ours and are left alone.
    """
    if connection.dialect.name != "postgresql":
        return []
    stats = sa.table(
        "pg_stat_user_tables", sa.column("relname"), sa.column("n_live_tup"), sa.column("n_mod_since_analyze"),
        sa.column("last_analyze"), sa.column("last_autoanalyze"), schema="pg_catalog",
    )
    never = sa.and_(stats.c.last_analyze.is_(None), stats.c.last_autoanalyze.is_(None))
    changed = stats.c.n_mod_since_analyze > stats.c.n_live_tup / 10 + 1000
    query = sa.select(stats.c.relname).where(
        stats.c.relname.like("personas\\_%", escape="\\"), sa.or_(never, changed)
    ).order_by(stats.c.relname)
    names = list(connection.execute(query).scalars())
    quote = connection.dialect.identifier_preparer.quote
    for name in names:
        connection.execute(sa.text(f"ANALYZE {quote(name)}"))
    return names


def write_trait_values(
    connection: sa.Connection, trait: Any, trait_id: str, values: sa.Select, value_type: str, run_id: str, as_of: Any
) -> int:
    """Replace a trait's stored values by `values` (subject_id, value); returns how many have a value."""
    from reconciler.engine.compiler.context import VALUE_COLUMNS

    rows = values.subquery("trait_rows")
    target = VALUE_COLUMNS[value_type]
    query = sa.select(
        sa.literal(trait_id, sa.Text),
        sa.literal(trait.name, sa.Text),
        sa.literal(trait.spec.entity, sa.Text),
        rows.c.subject_id,
        sa.literal(value_type, sa.Text),
        rows.c.value,
        sa.literal(run_id, sa.Text),
        sa.literal(as_of, Timestamp),
    ).where(rows.c.value.isnot(None), rows.c.subject_id.isnot(None))
    columns = ["trait_id", "trait", "entity", "subject_id", "value_type", target, "run_id", "as_of"]
    connection.execute(trait_values.delete().where(trait_values.c.trait_id == trait_id))
    connection.execute(trait_values.insert().from_select(columns, query))
    count = sa.select(sa.func.count()).select_from(trait_values).where(trait_values.c.trait_id == trait_id)
    return int(connection.execute(count).scalar_one())


def write_members(
    connection: sa.Connection, audience: Any, audience_id: str, members: sa.Table, run_id: str, as_of: Any
) -> tuple[int, int, int]:
    """Replace an audience's members by the rows of `members` and record entries and exits.

    Returns (size, entered, exited). Open history rows are those with no
    exited_at; a member keeps one open row for as long as it stays.
    """
    history = membership_history
    open_rows = sa.select(history.c.subject_id).where(history.c.audience_id == audience_id, history.c.exited_at.is_(None))
    # NOT EXISTS rather than NOT IN: PostgreSQL plans it as an anti join at any size.
    is_open = sa.exists().where(
        history.c.audience_id == audience_id, history.c.exited_at.is_(None), history.c.subject_id == members.c.subject_id
    )
    entering = sa.select(members.c.subject_id).where(~is_open)
    leaving = ~sa.exists().where(members.c.subject_id == history.c.subject_id)
    count = lambda query: int(connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())  # noqa: E731
    size = count(sa.select(members.c.subject_id))
    entered = count(entering)
    exited = count(open_rows.where(leaving))

    # Exits first: the rows about to be inserted are members, so the update skips them.
    connection.execute(
        history.update()
        .where(history.c.audience_id == audience_id, history.c.exited_at.is_(None), leaving)
        .values(exited_at=as_of, exited_run=run_id)
    )
    connection.execute(
        history.insert().from_select(
            ["audience_id", "subject_id", "entered_at", "entered_run"],
            sa.select(
                sa.literal(audience_id, sa.Text), members.c.subject_id, sa.literal(as_of, Timestamp), sa.literal(run_id, sa.Text)
            ).where(~is_open),
        )
    )
    connection.execute(audience_members.delete().where(audience_members.c.audience_id == audience_id))
    connection.execute(
        audience_members.insert().from_select(
            ["audience_id", "audience", "subject_id", "holdout", "run_id", "as_of"],
            sa.select(
                sa.literal(audience_id, sa.Text),
                sa.literal(audience.name, sa.Text),
                members.c.subject_id,
                members.c.holdout,
                sa.literal(run_id, sa.Text),
                sa.literal(as_of, Timestamp),
            ),
        )
    )
    return size, entered, exited


def retire_removed(connection: sa.Connection, live_ids: set[str], run_id: str, as_of: Any) -> None:
    """Close the open history of audiences no longer applied, and drop current rows of removed resources.

    A deleted or replaced resource (a replace gives a new id) leaves rows
    under its old id: its members exit at this run's as_of. The sync engine
    sends the exits to destinations, from their own snapshots.

    NOTE: this assumes one state per warehouse. Two projects sharing a
    warehouse would each retire the other's results.
    """
    ids = sorted(live_ids)
    history = membership_history
    connection.execute(
        history.update()
        .where(history.c.exited_at.is_(None), history.c.audience_id.not_in(ids))
        .values(exited_at=as_of, exited_run=run_id)
    )
    connection.execute(audience_members.delete().where(audience_members.c.audience_id.not_in(ids)))
    connection.execute(trait_values.delete().where(trait_values.c.trait_id.not_in(ids)))


def stored_size(connection: sa.Connection, audience_id: str) -> int | None:
    """Members of an audience as last stored, or None when the results tables do not exist yet."""
    try:
        query = sa.select(sa.func.count()).select_from(audience_members).where(audience_members.c.audience_id == audience_id)
        return int(connection.execute(query).scalar_one())
    except sa.exc.DBAPIError:
        return None
