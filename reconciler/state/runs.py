"""Bookkeeping of the data plane: runs, the outcome of each resource in them, and syncs.

These writes never touch the serial: a run changes no applied spec.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa

from reconciler.errors import StateError
from reconciler.state import rows, tables
from reconciler.state.records import (
    RunRecord,
    RunResourceRecord,
    SyncRecord,
    current_host,
    current_user,
    utc_now,
)

RUN_STATUSES = {"running", "ok", "failed"}


def start_run(connection: sa.Connection, run_id: str, as_of: datetime, selectors: list[str], trigger: str) -> None:
    connection.execute(
        sa.insert(tables.runs).values(
            run_id=run_id,
            as_of=rows.to_utc(as_of),
            selectors=list(selectors),
            trigger=trigger,
            status="running",
            started_at=utc_now(),
            finished_at=None,
            started_by=f"{current_user()}@{current_host()}",
        )
    )


def finish_run(connection: sa.Connection, run_id: str, status: str, resources: list[RunResourceRecord]) -> None:
    if status not in RUN_STATUSES - {"running"}:
        raise StateError(f"invalid run status {status!r}: use ok or failed")
    result = connection.execute(
        sa.update(tables.runs).where(tables.runs.c.run_id == run_id).values(status=status, finished_at=utc_now())
    )
    if result.rowcount != 1:
        raise StateError(f"no run {run_id} was started in this state")
    if resources:
        connection.execute(
            sa.insert(tables.run_resources),
            [
                {
                    "run_id": run_id,
                    "address": record.address,
                    "resource_id": record.resource_id,
                    "status": record.status,
                    "duration_s": record.duration_s,
                    "size": record.size,
                    "error": record.error,
                }
                for record in resources
            ],
        )


def runs(connection: sa.Connection, limit: int | None) -> list[RunRecord]:
    query = sa.select(tables.runs).order_by(tables.runs.c.started_at.desc(), tables.runs.c.run_id.desc()).limit(limit)
    return [rows.run_record(row) for row in connection.execute(query).mappings()]


def _run_resources_query() -> sa.Select:
    return sa.select(
        tables.run_resources, tables.runs.c.as_of, tables.runs.c.finished_at
    ).join(tables.runs, tables.runs.c.run_id == tables.run_resources.c.run_id)


def run_resources(connection: sa.Connection, run_id: str) -> list[RunResourceRecord]:
    query = _run_resources_query().where(tables.run_resources.c.run_id == run_id).order_by(tables.run_resources.c.address)
    return [rows.run_resource_record(row) for row in connection.execute(query).mappings()]


def last_success(connection: sa.Connection, address: str) -> RunResourceRecord | None:
    """Return the latest successful computation of `address` in a finished run."""
    query = (
        _run_resources_query()
        .where(tables.run_resources.c.address == address, tables.run_resources.c.status == "ok")
        .where(tables.runs.c.finished_at.is_not(None))
        .order_by(tables.runs.c.as_of.desc(), tables.runs.c.finished_at.desc())
        .limit(1)
    )
    row = connection.execute(query).mappings().first()
    return rows.run_resource_record(row) if row is not None else None


def record_sync(connection: sa.Connection, record: SyncRecord) -> None:
    values = asdict(record)
    values["started_at"] = rows.to_utc(record.started_at)
    values["finished_at"] = rows.to_utc(record.finished_at) if record.finished_at else None
    connection.execute(sa.insert(tables.sync_records).values(values))


def syncs(connection: sa.Connection, audience: str | None, destination: str | None, limit: int | None) -> list[SyncRecord]:
    query = sa.select(tables.sync_records).order_by(tables.sync_records.c.seq.desc()).limit(limit)
    if audience is not None:
        query = query.where(tables.sync_records.c.audience == audience)
    if destination is not None:
        query = query.where(tables.sync_records.c.destination == destination)
    return [rows.sync_record(row) for row in connection.execute(query).mappings()]
