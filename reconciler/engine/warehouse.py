"""The warehouse connection and the relations the engine reads: events, profiles, identifiers.

`open_warehouse(project)` connects to the project's warehouse for the length
of a `with` block. The embedded DuckDB file admits one process at a time, so
it is opened only while needed: when another process holds it, opening
retries until `runtime.warehouse_busy_timeout` and then raises
WarehouseBusyError naming that process.

The relations (`events()`, `profiles()`, `identifiers()`, `account_users()`)
are SQLAlchemy selectables with the same columns whether events come from
personas' own tables or from a `sources:` mapping of Segment or RudderStack
tables; see docs/warehouse.md.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.errors import WarehouseBusyError, WarehouseError

log = logging.getLogger(__name__)

_LOCK_PID_RE = re.compile(r"\(PID (\d+)\)")
_RETRY_INTERVAL_S = 0.2
_SCHEMA_LOCK_KEY = 0x70657273_736368  # "persch": creating personas' tables


class ProjectLike(Protocol):
    """The part of a project the engine reads (reconciler.project.Project provides it)."""

    root: Path
    settings: Any

    def resolve_url(self, text: str) -> str: ...


@dataclass
class Warehouse:
    """An open warehouse: the engine, its dialect name and personas' relations over it."""

    engine: sa.Engine
    settings: Any
    url: sa.URL
    # Facts read once per open warehouse, such as the columns of `sources:` tables.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _schema_ready: bool = field(default=False, repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def sources(self) -> Any:
        """The project's `sources:` mapping, or None when events are personas' own."""
        return getattr(self.settings, "sources", None)

    def ensure_schema(self) -> None:
        """Create personas' own tables and sequences when missing (idempotent).

        The relations below call it, so they work on a warehouse nothing was ingested into yet.
        """
        if self._schema_ready:
            return
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                # Two commands starting at once must not both create the tables.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            existing = table_names(connection)
            missing = [table for table in layout.metadata.sorted_tables if table.name not in existing]
            if missing:
                _create_sequences(connection)
            for table in missing:
                connection.execute(sa.schema.CreateTable(table))
                if self.dialect != "duckdb":
                    # DuckDB joins by hashing; its indexes would only slow the bulk updates down.
                    for index in table.indexes:
                        connection.execute(sa.schema.CreateIndex(index))
        self._schema_ready = True

    def events(self) -> sa.Subquery:
        """Return the resolved events: one row per message with its current canonical profile."""
        self.ensure_schema()
        raw = self.raw_events()
        mapping = layout.message_profiles
        query = sa.select(
            raw.c.message_id,
            raw.c.type,
            raw.c.event,
            raw.c.timestamp,
            mapping.c.profile_id,
            raw.c.group_id,
            raw.c.properties,
            raw.c.traits,
            raw.c.context,
        ).select_from(raw.outerjoin(mapping, mapping.c.message_id == raw.c.message_id))
        return query.subquery("events")

    def raw_events(self) -> sa.Subquery:
        """Events before identity resolution, with the ordering columns resolution reads.

        Columns: message_id, type, event, user_id, anonymous_id, group_id,
        timestamp, properties, traits, context, and `load_order` (the ingest
        batch, or the load time for `sources:` tables), which orders resolution.
        """
        if self.sources is not None:
            from reconciler.engine.sources import source_events

            return source_events(self)
        table = layout.events
        columns = [table.c[name] for name in _RAW_COLUMNS]
        return sa.select(*columns, table.c.batch_seq.label("load_order")).subquery("raw_events")

    def profiles(self) -> sa.Subquery:
        """Canonical profiles (not merged into another): profile_id, first_seen."""
        self.ensure_schema()
        table = layout.profiles
        query = sa.select(table.c.profile_id, table.c.first_seen).where(table.c.merged_into.is_(None))
        return query.subquery("profiles")

    def identifiers(self) -> sa.Subquery:
        """Identifier values of canonical profiles: profile_id, identifier_type, identifier_value, last_seen."""
        self.ensure_schema()
        table = layout.identifiers
        query = sa.select(table.c.profile_id, table.c.identifier_type, table.c.identifier_value, table.c.last_seen)
        return query.subquery("identifiers")

    def account_users(self) -> sa.Subquery:
        """Accounts (group ids) and the profiles seen in their group calls: account_id, profile_id."""
        self.ensure_schema()
        table = layout.account_users
        return sa.select(table.c.account_id, table.c.profile_id).subquery("account_users")


_RAW_COLUMNS = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "group_id",
    "timestamp",
    "properties",
    "traits",
    "context",
)


def table_names(connection: sa.Connection, schema: str | None = None) -> set[str]:
    """Names of the tables and views in a schema, read from information_schema.

    SQLAlchemy's inspector cannot reflect DuckDB tables with duckdb-engine
    0.17, while information_schema works on every dialect personas supports.
    """
    query = "SELECT table_name FROM information_schema.tables WHERE "
    if schema is None:
        query += "table_schema = current_schema()"
        rows = connection.execute(sa.text(query))
    else:
        query += "table_schema = :schema"
        rows = connection.execute(sa.text(query), {"schema": schema})
    return {row[0] for row in rows}


def _create_sequences(connection: sa.Connection) -> None:
    for sequence in layout.SEQUENCES:
        connection.execute(sa.text(f"CREATE SEQUENCE IF NOT EXISTS {sequence.name}"))


@contextmanager
def open_warehouse(project: ProjectLike) -> Iterator[Warehouse]:
    """Connect to the project's warehouse for the length of the block, then close it."""
    url_text = project.resolve_url(project.settings.warehouse)
    try:
        url = sa.make_url(url_text)
    except sa.exc.ArgumentError:
        raise WarehouseError(
            "the warehouse URL in personas.yaml is not a valid SQLAlchemy URL",
            hint="Write it as duckdb:///path/to/file.duckdb or postgresql+psycopg://user@host/db.",
        ) from None
    try:
        engine = _create_engine(url, project)
    except (ImportError, sa.exc.NoSuchModuleError) as error:
        raise WarehouseError(
            f"cannot use the warehouse URL {_safe_url(url)}: {error}",
            hint="Name an installed driver in the URL, such as postgresql+psycopg:// or duckdb:///.",
        ) from None
    keeper = None
    try:
        timeout_s = project.settings.runtime.warehouse_busy_timeout.seconds
        keeper = _connect(engine, url, timeout_s, _file_label(url, project))
        yield Warehouse(engine=engine, settings=project.settings, url=url)
    finally:
        if keeper is not None:
            keeper.close()
        engine.dispose()


def _create_engine(url: sa.URL, project: ProjectLike) -> sa.Engine:
    if url.get_backend_name() != "duckdb":
        return sa.create_engine(url)
    database = url.database or ":memory:"
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"config": duckdb_config(project)})
    sa.event.listen(engine, "connect", _quiet_duckdb)
    return engine


def _quiet_duckdb(dbapi_connection: Any, _record: Any) -> None:
    # DuckDB draws its own progress bar on stdout, which belongs to the CLI.
    dbapi_connection.execute("SET enable_progress_bar = false")


def duckdb_config(project: ProjectLike) -> dict[str, Any]:
    """DuckDB settings from `runtime.duckdb`, set explicitly instead of DuckDB's defaults."""
    runtime = project.settings.runtime.duckdb
    temp_directory = Path(runtime.temp_directory)
    if not temp_directory.is_absolute():
        temp_directory = Path(project.root) / temp_directory
    return {
        "memory_limit": runtime.memory_limit,
        "threads": runtime.threads or os.cpu_count() or 1,
        "temp_directory": str(temp_directory),
    }


def _connect(engine: sa.Engine, url: sa.URL, timeout_s: float, label: str) -> sa.Connection:
    """Open the first connection, waiting while another process holds a DuckDB file.

    The returned connection stays open for the whole block, so this process
    keeps the file until the block ends instead of racing others between queries.
    The first wait logs one warning, so a waiting command does not look hung.
    """
    deadline = time.monotonic() + timeout_s
    warned = False
    while True:
        try:
            return engine.connect()
        except sa.exc.OperationalError as error:
            holder = _lock_holder(error) if url.get_backend_name() == "duckdb" else None
            if holder is None:
                raise WarehouseError(
                    f"cannot connect to the warehouse {_safe_url(url)}: {_first_line(error.orig)}",
                    hint="Check the warehouse URL in personas.yaml and that the database is running.",
                ) from None
            if time.monotonic() >= deadline:
                raise _busy_error(url, holder, timeout_s) from None
            if not warned:
                warned = True
                log.warning(
                    "waiting for the warehouse file %s, held by %s (up to %gs; set runtime.warehouse_busy_timeout)",
                    label, f"pid {holder}" if holder != "?" else "another process", timeout_s,
                )
            time.sleep(_RETRY_INTERVAL_S)


def _file_label(url: sa.URL, project: ProjectLike) -> str:
    """Return the warehouse file as the user wrote it: relative to the project folder when inside it."""
    database = Path(url.database or ":memory:")
    try:
        return database.relative_to(Path(project.root)).as_posix()
    except ValueError:
        return str(database)


def _lock_holder(error: sa.exc.OperationalError) -> str | None:
    """Return the pid in DuckDB's lock conflict message, '?' when it names none, None for other errors."""
    message = str(error.orig)
    if "lock" not in message.lower():
        return None
    match = _LOCK_PID_RE.search(message)
    return match.group(1) if match else "?"


def _busy_error(url: sa.URL, holder: str, timeout_s: float) -> WarehouseBusyError:
    who = f"process {holder}" if holder != "?" else "another process"
    return WarehouseBusyError(
        f"the warehouse file {url.database} is held by {who}; waited {timeout_s:g}s",
        hint="Wait for that process (such as a run or an ingest) to finish, "
        "or raise runtime.warehouse_busy_timeout in personas.yaml.",
    )


def _safe_url(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "unknown error"
