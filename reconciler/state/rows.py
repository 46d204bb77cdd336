"""Conversions between table rows and the records of `reconciler.state.records`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from reconciler.state.records import (
    AuditRecord,
    ResourceRecord,
    RunRecord,
    RunResourceRecord,
    SyncRecord,
    Tombstone,
    VersionRecord,
)


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to a time read back from SQLite, which stores times without a zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def to_utc(value: datetime) -> datetime:
    """Convert a time to UTC for writing; a time without a zone is taken as UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def resource_record(row: Mapping[str, Any]) -> ResourceRecord:
    return ResourceRecord(
        address=row["address"],
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        spec=row["spec"],
        spec_hash=row["spec_hash"],
        version=row["version"],
        protected=bool(row["protected"]),
        previous_names=list(row["previous_names"] or []),
        source_file=row["source_file"],
        applied_at=as_utc(row["applied_at"]),
        applied_by=row["applied_by"],
        secret_hashes=dict(row["secret_hashes"] or {}),
    )


def version_record(row: Mapping[str, Any]) -> VersionRecord:
    fields = {key: row[key] for key in VersionRecord.__dataclass_fields__}
    return VersionRecord(**{**fields, "applied_at": as_utc(row["applied_at"])})


def tombstone(row: Mapping[str, Any]) -> Tombstone:
    fields = {key: row[key] for key in Tombstone.__dataclass_fields__}
    return Tombstone(**{**fields, "deleted_at": as_utc(row["deleted_at"])})


def audit_record(row: Mapping[str, Any]) -> AuditRecord:
    fields = {key: row[key] for key in AuditRecord.__dataclass_fields__}
    return AuditRecord(**{**fields, "time": as_utc(row["time"])})


def run_record(row: Mapping[str, Any]) -> RunRecord:
    fields = {key: row[key] for key in RunRecord.__dataclass_fields__}
    times = {key: as_utc(row[key]) for key in ("as_of", "started_at", "finished_at")}
    return RunRecord(**{**fields, **times, "selectors": list(row["selectors"] or [])})


def run_resource_record(row: Mapping[str, Any]) -> RunResourceRecord:
    fields = {key: row[key] for key in RunResourceRecord.__dataclass_fields__ if key in row}
    times = {key: as_utc(row[key]) for key in ("as_of", "finished_at") if key in row}
    return RunResourceRecord(**{**fields, **times})


def sync_record(row: Mapping[str, Any]) -> SyncRecord:
    fields = {key: row[key] for key in SyncRecord.__dataclass_fields__}
    return SyncRecord(**{**fields, "started_at": as_utc(row["started_at"]), "finished_at": as_utc(row["finished_at"])})
