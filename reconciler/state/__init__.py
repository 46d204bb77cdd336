"""The state store: applied resources, their history, the audit log, locks, runs and syncs.

    from reconciler.state import open_store
    store = open_store("sqlite:////abs/path/.personas/state.db")

Importing this package is cheap: SQLAlchemy loads only when a store opens, and
`open_reader` on a SQLite file never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.state.records import (
    IDENTITY_ADDRESS,
    AppliedChange,
    AuditEntry,
    AuditRecord,
    LockInfo,
    ResourceRecord,
    RunRecord,
    RunResourceRecord,
    StateSnapshot,
    SyncRecord,
    Tombstone,
    VersionRecord,
)

if TYPE_CHECKING:
    from reconciler.state.sqlite_read import SqliteReader
    from reconciler.state.store import StateStore

__all__ = [
    "IDENTITY_ADDRESS",
    "AppliedChange",
    "AuditEntry",
    "AuditRecord",
    "LockInfo",
    "ResourceRecord",
    "RunRecord",
    "RunResourceRecord",
    "StateSnapshot",
    "StateStore",
    "SyncRecord",
    "Tombstone",
    "VersionRecord",
    "open_reader",
    "open_store",
]


def open_store(url: str) -> StateStore:
    """Open the store at an already resolved URL. Nothing is created or written before the first write."""
    from reconciler.state.store import StateStore

    return StateStore(url)


def open_reader(url: str) -> StateStore | SqliteReader:
    """Open the store at an already resolved URL for reading only: exists, check_schema, read, secret_digest, syncs.

    A plain SQLite file URL is read through the standard library's sqlite3,
    read-only, which saves loading SQLAlchemy; any other URL opens a StateStore.
    """
    from reconciler.state.sqlite_read import SqliteReader, sqlite_file

    path = sqlite_file(url)
    return SqliteReader(path) if path is not None else open_store(url)


def __getattr__(name: str):
    if name == "StateStore":
        from reconciler.state.store import StateStore

        return StateStore
    raise AttributeError(name)
