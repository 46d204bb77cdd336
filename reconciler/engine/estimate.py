"""Audience sizes before and after a plan, for `personas plan --estimate`.

The plan stays a pure value: the CLI calls this module for sizes beside it.
"Before" is the size the last successful run recorded for the audience
(None when it was never computed); "after" is computed from the specs on
disk like `personas preview`, storing nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

ESTIMATED_ACTIONS = ("create", "update", "replace", "move")


def _audience_address(name: str) -> str:
    return name if name.startswith("audience.") else f"audience.{name}"


def affected_audiences(plan: Any) -> dict[str, str | None]:
    """{address: previous address} of audiences a plan creates or changes, or whose upstream it changes."""
    found: dict[str, str | None] = {}
    for change in plan.resource_changes:
        if change.kind == "Audience" and change.action in ESTIMATED_ACTIONS:
            found[change.address] = change.previous_address
        for name in change.downstream.audiences:
            found.setdefault(_audience_address(name), None)
    identity = getattr(plan, "identity_change", None)
    if identity is not None:
        for name in identity.downstream.audiences:
            found.setdefault(_audience_address(name), None)
    return dict(sorted(found.items()))


def last_sizes(project: Any, addresses: dict[str, str | None]) -> dict[str, int | None]:
    """Size each audience had at its last successful run (under its previous address for a move)."""
    from reconciler.state import open_store

    store = open_store(project.resolve_url(project.settings.state))
    try:
        if not store.exists():
            return {address: None for address in addresses}
        sizes = {}
        for address, previous in addresses.items():
            record = store.last_success(address) or (store.last_success(previous) if previous else None)
            sizes[address] = record.size if record is not None else None
        return sizes
    finally:
        store.close()


def estimate_sizes(project: Any, plan: Any, as_of: datetime | None = None) -> dict[str, tuple[int | None, int | None]]:
    """{address: (size now, size after)} for each created or changed audience.

    "After" is None for an audience the plan deletes.
    """
    from reconciler.engine.preview import (
        applied_ids,
        audience_size,
        describe_sql_traits,
        disk_context,
        needed_sql_traits,
        read_only,
    )
    from reconciler.engine.runner import resolve_as_of
    from reconciler.engine.warehouse import open_warehouse

    targets = affected_audiences(plan)
    if not targets:
        return {}
    before = last_sizes(project, targets)
    moment = resolve_as_of(project, as_of)
    sizes: dict[str, tuple[int | None, int | None]] = {}
    with open_warehouse(project) as warehouse:
        ctx = disk_context(project, warehouse, moment, applied_ids(project))
        describe_sql_traits(warehouse, ctx, needed_sql_traits(project, targets))
        with read_only(warehouse) as connection:
            for address in targets:
                audience = project.resource(address)
                after = audience_size(connection, ctx, audience)[0] if audience is not None else None
                sizes[address] = (before[address], after)
    return sizes
