"""Builders of changes and audit entries for the state store tests."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from reconciler.state import AppliedChange, AuditEntry
from reconciler.state import tables as state_tables
from reconciler.state.connect import create_engine, parse_url, sqlite_path


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


def audit(user: str = "alice") -> AuditEntry:
    return AuditEntry(plan={"format_version": 1}, user=user, host="ci-runner", git_commit="abc123", git_branch="main")


def apply(store, *changes: AppliedChange, user: str = "alice") -> int:
    """Apply `changes` on top of whatever the store holds now."""
    snapshot = store.read()
    return store.apply(snapshot.serial, snapshot.lineage, list(changes), audit(user))


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
