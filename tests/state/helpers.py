"""Builders of changes and audit entries for the state store tests."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa

from reconciler.state import AppliedChange, AuditEntry, records
from reconciler.state import tables as state_tables
from reconciler.state.connect import create_engine, parse_url, sqlite_path
from reconciler.state.schema import migrate
from reconciler.state.writer import apply_changes


def spec_of(kind: str, name: str, **fields) -> dict:
    return {"apiVersion": "personas/v1", "kind": kind, "metadata": {"name": name}, "spec": fields}


def change(action: str, address: str, previous_address: str | None = None, **fields) -> AppliedChange:
    """An AppliedChange for `address` ("audience.vip"), with a spec built from `fields`."""
    kind_word, name = address.split(".", 1)
    kind = "Identity" if address == "project.identity" else kind_word.capitalize()
    spec = spec_of(kind, name, **fields)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return AppliedChange(
        action=action,
        address=address,
        previous_address=previous_address,
        kind=kind,
        name=name,
        spec=spec,
        spec_hash=digest,
        source_file=f"{kind_word}s.yaml",
    )


def audit(user: str = "alice", time: datetime | None = None) -> AuditEntry:
    return AuditEntry(
        plan={"format_version": 1},
        user=user,
        host="ci-runner",
        git_commit="abc123",
        git_branch="main",
        time=time or datetime.now(timezone.utc),
    )


def apply(store, *changes: AppliedChange, user: str = "alice", time: datetime | None = None) -> int:
    """Apply `changes` on top of the store's current serial and lineage."""
    snapshot = store.read()
    return store.apply(snapshot.serial, snapshot.lineage, list(changes), audit(user, time))


V1_TABLES = ["meta", "resources", "resource_versions", "tombstones", "audit_log", "locks"]
V2_TABLES = ["runs", "run_resources", "sync_records"]


def engine_for(url: str) -> sa.Engine:
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return create_engine(parsed)


def dump_tables(url: str, names: list[str]) -> dict[str, list[tuple]]:
    engine = engine_for(url)
    dump = {}
    with engine.connect() as connection:
        for name in names:
            table = state_tables.metadata.tables[name]
            query = sa.select(table).order_by(*table.primary_key.columns)
            dump[name] = [tuple(row) for row in connection.execute(query)]
    engine.dispose()
    return dump


def build_version_1_store(url: str) -> None:
    """Create a store at schema version 1 holding resources, history, a tombstone, an audit row and a lock."""
    engine = engine_for(url)
    with engine.begin() as connection:
        migrate(connection, target=1)
        connection.execute(
            sa.insert(state_tables.meta).values(
                id=1, lineage=str(uuid.uuid4()), serial=0, hmac_key=secrets.token_bytes(32), created_at=records.utc_now()
            )
        )
        lineage = connection.execute(sa.select(state_tables.meta.c.lineage)).scalar()
        first = [change("create", "audience.vip", size=1), change("create", "destination.crm", url="https://crm")]
        apply_changes(connection, 0, lineage, first, audit(), "test")
        second = [change("update", "audience.vip", size=2), change("delete", "destination.crm")]
        apply_changes(connection, 1, lineage, second, audit("bob"), "test")
        connection.execute(
            sa.insert(state_tables.locks).values(
                name="run", id=str(uuid.uuid4()), holder="bob@elsewhere", operation="run",
                host="elsewhere", pid=4242, since=records.utc_now(),
            )
        )
    engine.dispose()
