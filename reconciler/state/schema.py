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

from reconciler.errors import StateSchemaError

log = logging.getLogger(__name__)

HEAD_VERSION = 2
VERSION_TABLE = "alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"
# Advisory lock key that serialises schema creation and upgrades on PostgreSQL.
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"personas:state:migrate").digest()[:8], "big", signed=True)


def revision_of(version: int) -> str:
    return f"{version:04d}"


def current_version(connection: sa.Connection) -> int | None:
    """Return the schema version of the store, or None when it has no schema yet."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    revision = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    if revision is None:
        return None
    try:
        return int(revision)
    except ValueError:
        # A revision id personas does not use, so it comes from a newer release.
        return HEAD_VERSION + 1


def ensure_supported(version: int | None, where: str) -> None:
    """Raise StateSchemaError unless the store is absent or at the version this personas uses."""
    if version is None or version == HEAD_VERSION:
        return
    if version < HEAD_VERSION:
        raise StateSchemaError(
            f"the state store at {where} has schema version {version}; this personas needs {HEAD_VERSION}",
            hint="Run `personas state upgrade` to migrate it (back it up first if you may need to go back).",
        )
    raise StateSchemaError(
        f"the state store at {where} has schema version {version}, newer than this personas "
        f"supports ({HEAD_VERSION})",
        hint="Upgrade personas to the version that last wrote this state.",
    )


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
