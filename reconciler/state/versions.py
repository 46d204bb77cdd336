"""Schema versions of the state store, as numbers, without a database library.

The store records its version as an alembic revision id ("0002"). Both read
paths, SQLAlchemy's and the standard library's, turn that id into a number
and check it here, so they reject an older or newer store with one message.
"""

from __future__ import annotations

from reconciler.errors import StateSchemaError

HEAD_VERSION = 2
VERSION_TABLE = "alembic_version"


def revision_of(version: int) -> str:
    return f"{version:04d}"


def version_of(revision: str | None) -> int | None:
    """Return the schema version of a revision id, or None when the version table has no row."""
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
