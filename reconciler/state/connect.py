"""Engines for the state store's URL: SQLite and PostgreSQL.

pysqlite opens transactions only before DML, so DDL and reads would run
outside them. The SQLite engine here turns the driver's own transaction
handling off and emits `BEGIN` itself, which makes migrations atomic and
lets writers ask for `BEGIN IMMEDIATE` (the write lock up front) with the
execution option `sqlite_begin="IMMEDIATE"`.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from reconciler.errors import StateError
from reconciler.state.sqlite_read import SQLITE_BUSY_TIMEOUT


def display_url(url: sa.URL) -> str:
    """Render a URL for messages: no password and no query string, which may carry tokens."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.set(query={}).render_as_string(hide_password=True)


def parse_url(url: str) -> sa.URL:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StateError(
            "the state URL is not a valid database URL",
            hint="Set `state:` in personas.yaml to sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.",
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StateError(
            f"the state store must be SQLite or PostgreSQL, not {backend}",
            hint="Set `state:` in personas.yaml to sqlite:///PATH or postgresql+psycopg://USER@HOST/DB.",
        )
    if backend == "sqlite" and not sqlite_path(parsed):
        raise StateError(
            "the state store needs a SQLite file, not an in-memory database",
            hint="Set `state:` in personas.yaml to sqlite:///PATH.",
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, sa.exc.NoSuchModuleError) as error:
        raise StateError(
            f"cannot use the state URL {display_url(parsed)}: its driver is not installed ({error})",
            hint="Name an installed driver, such as postgresql+psycopg://USER@HOST/DB or sqlite:///PATH.",
        ) from None
    return parsed


def sqlite_path(url: sa.URL) -> Path | None:
    """Return the file of a SQLite URL; None for other databases and in-memory SQLite."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return sa.create_engine(url, pool_pre_ping=True)


def create_lock_engine(url: sa.URL) -> sa.Engine:
    """Create an engine without a pool for PostgreSQL lock sessions, so that closing a connection ends its session."""
    return sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT})

    @sa.event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
