"""Making a plan for a loaded project: open the state, read it, diff.

Reading the state is the only I/O here, and it writes nothing: a store
never applied reads as empty, and on SQLite its file is not created.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler import __version__
from reconciler.plan.diff import DesiredState, build_plan, desired_state
from reconciler.plan.model import Plan


def open_state(project: Any) -> Any:
    """Open the project's state store (personas.yaml `state:`, which defaults to PERSONAS_STATE_URL)."""
    from reconciler.state import open_store

    return open_store(project.resolve_url(project.settings.state))


def open_state_reader(project: Any) -> Any:
    """Open the project's state store for reading only, for a plan that writes nothing.

    A SQLite store is read with the standard library's sqlite3, which starts
    faster than SQLAlchemy; it offers what `read_state` and `make_plan` use.
    """
    from reconciler.state import open_reader

    return open_reader(project.resolve_url(project.settings.state))


def read_state(store: Any) -> Any:
    """Read the applied state. A store never applied reads as empty; one at another schema version raises StateSchemaError."""
    if not store.exists():
        return store.read()
    store.check_schema()
    return store.read()


def make_plan(
    project: Any,
    store: Any,
    snapshot: Any,
    *,
    env: Mapping[str, str] | None = None,
    targets: Iterable[str] = (),
    excludes: Iterable[str] = (),
    desired: DesiredState | None = None,
) -> tuple[Plan, DesiredState]:
    """Return the plan from `snapshot` to the project's specs, and the desired state it was built from."""
    desired = desired or desired_state(project)
    digest = store.secret_digest if snapshot.lineage is not None else None
    plan = build_plan(
        desired,
        snapshot,
        env=os.environ if env is None else env,
        digest=digest,
        personas_version=__version__,
        targets=targets,
        excludes=excludes,
    )
    if snapshot.lineage is not None:
        plan = with_held_members(plan, store)
    return plan, desired


def with_held_members(plan: Plan, store: Any) -> Plan:
    """Add to each delete of an audience or destination the members its destinations hold, from the last syncs."""
    changes = []
    for change in plan.resource_changes:
        if change.action == "delete" and change.kind in ("Audience", "Destination"):
            held = _held_members(store, change.kind, change.name)
            if held:
                change = dataclasses.replace(change, held_members=held)
        changes.append(change)
    return dataclasses.replace(plan, resource_changes=tuple(changes))


def _held_members(store: Any, kind: str, name: str) -> dict[str, int]:
    """{"audience.a -> destination.d": members} from the newest sync of each pair involving `name`."""
    records = store.syncs(audience=name, limit=None) if kind == "Audience" else store.syncs(destination=name, limit=None)
    held: dict[str, int] = {}
    for record in records:  # newest first
        pair = f"audience.{record.audience} -> destination.{record.destination}"
        held.setdefault(pair, record.members)
    return {pair: members for pair, members in sorted(held.items()) if members}
