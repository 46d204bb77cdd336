"""The write side of the state store: one apply is one transaction.

Identity of resources across changes:

* `create` gives a resource a new stable id.
* `update` and `move` keep the id, so a renamed resource keeps its history,
  results and destination state. A move records the address it came from.
* `replace` gives a new id, because the old resource's history is closed
  (its entity or type changed); the history row names the id it replaced.
* `delete` removes the resource and, for audiences and destinations, leaves
  a tombstone so that the next run can send the exits.

Every change adds a row to `resource_versions`, and every apply a row to
`audit_log`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from reconciler.errors import StalePlanError, StateError
from reconciler.state import tables
from reconciler.state.records import AppliedChange, AuditEntry
from reconciler.state.rows import to_utc

TOMBSTONE_KINDS = {"Audience", "Destination"}
ACTIONS = {"create", "update", "replace", "delete", "move"}


@dataclass(frozen=True)
class _Context:
    serial: int
    time: datetime
    applied_by: str


def apply_changes(
    connection: sa.Connection,
    expected_serial: int,
    lineage: str | None,
    changes: list[AppliedChange],
    audit: AuditEntry,
    where: str,
) -> int:
    """Write `changes` as the next serial within the caller's transaction; return that serial."""
    new_serial = _advance_serial(connection, expected_serial, lineage, where)
    context = _Context(serial=new_serial, time=to_utc(audit.time), applied_by=audit.user)
    for change in changes:
        _apply_one(connection, change, context)
    connection.execute(
        sa.insert(tables.audit_log).values(
            time=context.time,
            user=audit.user,
            host=audit.host,
            git_commit=audit.git_commit,
            git_branch=audit.git_branch,
            serial_before=expected_serial,
            serial_after=new_serial,
            plan=audit.plan,
            summary=dict(Counter(change.action for change in changes)),
        )
    )
    return new_serial


def _advance_serial(connection: sa.Connection, expected: int, lineage: str | None, where: str) -> int:
    current = connection.execute(sa.select(tables.meta.c.lineage, tables.meta.c.serial)).first()
    if current is None:
        raise StateError(f"the state store at {where} is not initialised", hint="Run `personas apply` to create it.")
    if lineage is not None and lineage != current.lineage:
        raise StalePlanError(
            f"the plan was made against the state with lineage {lineage}, "
            f"but the state at {where} has lineage {current.lineage}",
            hint="The plan belongs to another state, or the state was recreated: run `personas plan` again.",
        )

    # The condition on the serial makes a concurrent apply that committed first win, even between
    # the read above and this write: PostgreSQL re-checks the condition once that apply commits.
    result = connection.execute(
        sa.update(tables.meta).where(tables.meta.c.serial == expected).values(serial=expected + 1)
    )
    if result.rowcount != 1:
        actual = connection.execute(sa.select(tables.meta.c.serial)).scalar()
        raise StalePlanError(
            f"the plan was made at serial {expected} of the state, but the state at {where} is now at serial {actual}",
            hint="Someone applied in the meantime: run `personas plan` again and review the new plan.",
        )
    return expected + 1


def _apply_one(connection: sa.Connection, change: AppliedChange, context: _Context) -> None:
    if change.action not in ACTIONS:
        raise StateError(f"unknown change action {change.action!r} for {change.address}")
    if change.action == "create":
        _create(connection, change, context)
    elif change.action in ("update", "move"):
        _update(connection, change, context)
    elif change.action == "replace":
        _replace(connection, change, context)
    else:
        _delete(connection, change, context)


def _create(connection: sa.Connection, change: AppliedChange, context: _Context) -> None:
    if _current(connection, change.address) is not None:
        raise _inconsistent(change, "it is already in the state")
    _insert_resource(connection, change, context, str(uuid.uuid4()), version=1)
    _record_version(connection, change, context, _current(connection, change.address))


def _update(connection: sa.Connection, change: AppliedChange, context: _Context) -> None:
    source = change.previous_address if change.action == "move" else change.address
    if source is None:
        raise _inconsistent(change, "a move needs the address it comes from")
    existing = _current(connection, source)
    if existing is None:
        raise _inconsistent(change, f"{source} is not in the state")
    if change.action == "move" and _current(connection, change.address) is not None:
        raise _inconsistent(change, "that address is already in the state")
    connection.execute(
        sa.update(tables.resources)
        .where(tables.resources.c.address == source)
        .values(address=change.address, version=existing["version"] + 1, **_resource_values(change, context))
    )
    _record_version(connection, change, context, _current(connection, change.address))


def _replace(connection: sa.Connection, change: AppliedChange, context: _Context) -> None:
    existing = _current(connection, change.address)
    if existing is None:
        raise _inconsistent(change, "it is not in the state")
    _refuse_protected(change, existing)
    connection.execute(sa.delete(tables.resources).where(tables.resources.c.address == change.address))
    _insert_resource(connection, change, context, str(uuid.uuid4()), version=existing["version"] + 1)
    _record_version(connection, change, context, _current(connection, change.address), replaced_id=existing["id"])


def _delete(connection: sa.Connection, change: AppliedChange, context: _Context) -> None:
    existing = _current(connection, change.address)
    if existing is None:
        raise _inconsistent(change, "it is not in the state")
    _refuse_protected(change, existing)
    connection.execute(sa.delete(tables.resources).where(tables.resources.c.address == change.address))
    deleted = {**existing, "version": existing["version"] + 1}
    _record_version(connection, change, context, deleted)
    if existing["kind"] in TOMBSTONE_KINDS:
        connection.execute(
            sa.insert(tables.tombstones).values(
                id=existing["id"],
                address=existing["address"],
                kind=existing["kind"],
                name=existing["name"],
                spec=existing["spec"],
                deleted_at=context.time,
                deleted_serial=context.serial,
            )
        )


def _current(connection: sa.Connection, address: str) -> dict[str, Any] | None:
    row = connection.execute(sa.select(tables.resources).where(tables.resources.c.address == address)).mappings().first()
    return dict(row) if row is not None else None


def _resource_values(change: AppliedChange, context: _Context) -> dict[str, Any]:
    if change.spec is None or change.spec_hash is None:
        raise _inconsistent(change, "the change carries no spec or spec hash")
    return {
        "kind": change.kind,
        "name": change.name,
        "spec": change.spec,
        "spec_hash": change.spec_hash,
        "protected": change.protected,
        "previous_names": list(change.previous_names),
        "source_file": change.source_file,
        "secret_hashes": dict(change.secret_hashes),
        "applied_at": context.time,
        "applied_by": context.applied_by,
    }


def _insert_resource(connection: sa.Connection, change: AppliedChange, context: _Context, id_: str, version: int) -> None:
    values = _resource_values(change, context)
    connection.execute(sa.insert(tables.resources).values(address=change.address, id=id_, version=version, **values))


def _record_version(
    connection: sa.Connection,
    change: AppliedChange,
    context: _Context,
    row: dict[str, Any],
    replaced_id: str | None = None,
) -> None:
    connection.execute(
        sa.insert(tables.resource_versions).values(
            id=row["id"],
            address=row["address"],
            previous_address=change.previous_address if change.action == "move" else None,
            replaced_id=replaced_id,
            kind=row["kind"],
            name=row["name"],
            version=row["version"],
            action=change.action,
            spec=row["spec"],
            spec_hash=row["spec_hash"],
            serial=context.serial,
            applied_at=context.time,
            applied_by=context.applied_by,
        )
    )


def _refuse_protected(change: AppliedChange, existing: dict[str, Any]) -> None:
    if existing["protected"]:
        source = existing["source_file"] or "its file"
        raise StateError(
            f"cannot {change.action} {change.address}: it is protected",
            hint=f"Set `metadata.protected: false` in {source} and apply that first.",
        )


def _inconsistent(change: AppliedChange, reason: str) -> StateError:
    return StateError(
        f"cannot {change.action} {change.address}: {reason}",
        hint="The plan does not match the state: run `personas plan` again.",
    )
