"""Schema versions of the state store, and migrations between them.

Migrations are alembic revisions inside the package, run programmatically
on a connection this module opens; no alembic.ini is needed. Alembic's
`alembic_version` table is the one record of the version a store is at.
Reading it needs no alembic import, so the check every command makes
stays cheap.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import sqlalchemy as sa

from reconciler.state.versions import HEAD_VERSION, VERSION_TABLE, ensure_supported, revision_of, version_of

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Advisory lock key that serialises schema creation and upgrades on PostgreSQL.
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"personas:state:migrate").digest()[:8], "big", signed=True)


def current_version(connection: sa.Connection) -> int | None:
    """Return the schema version of the store, or None when it has no schema yet."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return version_of(connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar())


def migrate(connection: sa.Connection, target: int = HEAD_VERSION) -> tuple[int, int]:
    """Migrate the schema to `target` inside the caller's transaction; return (from, to) versions.

    On PostgreSQL a transaction-scoped advisory lock makes concurrent
    callers wait, so the second one finds the work done.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    before = current_version(connection) or 0
    if before > HEAD_VERSION:
        ensure_supported(before, "this URL")
    if before >= target:
        return before, before
    _run_alembic(connection, revision_of(target))
    log.info("migrated the state schema from version %s to %s", before, target)
    return before, target


def _run_alembic(connection: sa.Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
