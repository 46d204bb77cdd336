"""Values read from and written to the state store.

This module imports only the standard library, so the plan can build
`AppliedChange` and read `StateSnapshot` without loading SQLAlchemy.
Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

Action = Literal["create", "update", "replace", "delete", "move"]
IDENTITY_ADDRESS = "project.identity"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def current_user() -> str:
    """Name of the user running personas, or "unknown" when the system has none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


def current_host() -> str:
    return socket.gethostname()


def format_time(value: datetime | None) -> str:
    """Render a UTC time as ISO 8601 to the second, such as 2026-12-04T21:00:00Z."""
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ResourceRecord:
    """The applied version of one resource (or of `project.identity`)."""

    address: str
    id: str
    kind: str
    name: str
    spec: dict[str, Any]
    spec_hash: str
    version: int
    protected: bool
    previous_names: list[str]
    source_file: str | None
    applied_at: datetime
    applied_by: str
    secret_hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StateSnapshot:
    """The applied state as read at one moment. An uninitialised store has lineage None and serial 0."""

    lineage: str | None
    serial: int
    resources: dict[str, ResourceRecord]
    identity: ResourceRecord | None = None

    @property
    def is_empty(self) -> bool:
        return self.lineage is None


@dataclass(frozen=True)
class AppliedChange:
    """One change of an apply, as the plan computed it.

    `previous_address` is the address a `move` comes from. `spec` is the
    normalised spec; for a `delete` it is ignored and the last applied spec
    is kept in the history and the tombstone.
    """

    action: Action
    address: str
    kind: str
    name: str
    spec: dict[str, Any] | None = None
    spec_hash: str | None = None
    previous_address: str | None = None
    protected: bool = False
    previous_names: list[str] = field(default_factory=list)
    source_file: str | None = None
    secret_hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    """Audit details of one apply: the user, host, git commit and branch, and the plan applied."""

    plan: dict[str, Any]
    user: str = field(default_factory=current_user)
    host: str = field(default_factory=current_host)
    git_commit: str | None = None
    git_branch: str | None = None
    time: datetime = field(default_factory=utc_now)


@dataclass(frozen=True)
class VersionRecord:
    """One applied version of a resource.

    `previous_address` is set on a `move`; `replaced_id` on a `replace`,
    naming the id the new one took over from.
    """

    address: str
    id: str
    kind: str
    name: str
    version: int
    action: str
    spec: dict[str, Any] | None
    spec_hash: str | None
    serial: int
    applied_at: datetime
    applied_by: str
    previous_address: str | None = None
    replaced_id: str | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One apply: `summary` counts changes per action."""

    id: int
    time: datetime
    user: str
    host: str
    git_commit: str | None
    git_branch: str | None
    serial_before: int
    serial_after: int
    plan: dict[str, Any]
    summary: dict[str, int]


@dataclass(frozen=True)
class Tombstone:
    """A deleted audience or destination whose exits the next run still sends."""

    id: str
    address: str
    kind: str
    name: str
    spec: dict[str, Any] | None
    deleted_at: datetime
    deleted_serial: int


@dataclass(frozen=True)
class LockInfo:
    """A held lock; `holder` is user@host."""

    id: str
    name: str
    holder: str
    operation: str
    host: str
    pid: int
    since: datetime

    def describe(self) -> str:
        return f"{self.holder} (pid {self.pid}, {self.operation}) since {format_time(self.since)}"


@dataclass(frozen=True)
class RunRecord:
    """One `personas run` or daemon tick; status is running, ok or failed."""

    run_id: str
    as_of: datetime
    selectors: list[str]
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    started_by: str


@dataclass(frozen=True)
class RunResourceRecord:
    """The outcome of one resource in a run; `size` is members or values, `duration_s` in seconds."""

    address: str
    resource_id: str
    status: Literal["ok", "failed", "skipped"]
    duration_s: float | None = None
    size: int | None = None
    error: str | None = None
    run_id: str | None = None
    as_of: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class SyncRecord:
    """One sync of an audience to a destination within a run.

    `eligible` counts members after holdout and before consent, `members`
    after both; `held_back` counts removals the removal guard kept back.
    """

    run_id: str
    audience: str
    audience_id: str
    destination: str
    destination_id: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    entered: int = 0
    exited: int = 0
    updated: int = 0
    sent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    held_back: int = 0
    members: int = 0
    eligible: int = 0
    non_consented: int = 0
    error: str | None = None
