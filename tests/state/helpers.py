"""Builders of changes and audit entries for the state store tests."""

from __future__ import annotations

import hashlib
import json

from reconciler.state import AppliedChange, AuditEntry


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
