"""The state store: applied resources, their history, the audit log, locks, runs and syncs.

    from reconciler.state import open_store
    store = open_store("sqlite:////abs/path/.personas/state.db")

Importing this package is cheap: SQLAlchemy loads only when a store opens.
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
    "open_store",
]


def open_store(url: str) -> StateStore:
    """Open the store at an already resolved URL. Nothing is created or written before the first write."""
    from reconciler.state.store import StateStore

    return StateStore(url)


def __getattr__(name: str):
    if name == "StateStore":
        from reconciler.state.store import StateStore

        return StateStore
    raise AttributeError(name)
