"""Which pairs a sync pass works on, and how: from the project, the state and the tombstones.

* Every destination an applied audience lists gets a pair, keyed by the
  stable ids of the state store, so renames keep snapshots and history.
* A pair that has sync rows but is no longer wanted (deleted audience or
  destination, or no longer listed) is retired: exits for everything
  personas sent there, unguarded, since an applied change asked for it.
* A `replace` gives a resource a new id at the same address: its sync rows
  move to the new id and the pair gets one guarded full resync.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from reconciler.destinations import outbox as box
from reconciler.destinations.membership import Selection, TraitRef
from reconciler.destinations.options import SyncOptions
from reconciler.destinations.sync import DestinationWork, PairWork

log = logging.getLogger(__name__)


@dataclass
class SyncPlan:
    destinations: list[DestinationWork] = field(default_factory=list)
    resynced: set[str] = field(default_factory=set)


def plan_work(
    connection: sa.Connection,
    project: Any,
    store: Any,
    state: Any,
    tombstones: Sequence[Any],
    audiences: Iterable[Any],
    options: SyncOptions,
) -> SyncPlan:
    """Build the work of one pass; moves the rows of replaced resources to their new ids first."""
    plan = SyncPlan()
    stones = {stone.id: stone for stone in tombstones}
    plan.resynced = _move_replaced(connection, store, state, stones)
    present = set(box.pairs_present(connection))
    works: dict[str, DestinationWork] = {}

    for audience in _selected_audiences(project, audiences):
        for work, destination, destination_id in _audience_pairs(project, state, audience, options, plan.resynced):
            works.setdefault(destination_id, DestinationWork(destination, destination_id)).pairs.append(work)

    configured = _configured_pairs(project, state)
    for audience_id, destination_id in sorted(present - configured):
        retirement = _retirement(project, state, stones, audience_id, destination_id)
        if retirement is None:
            continue
        work, destination = retirement
        works.setdefault(destination_id, DestinationWork(destination, destination_id)).pairs.append(work)
    plan.destinations = list(works.values())
    return plan


def _selected_audiences(project: Any, audiences: Iterable[Any]) -> list[Any]:
    selected = []
    for item in audiences:
        if hasattr(item, "spec"):
            selected.append(item)
            continue
        name = str(item).removeprefix("audience.")
        if name in project.audiences:
            selected.append(project.audiences[name])
    return selected


def _audience_pairs(project: Any, state: Any, audience: Any, options: SyncOptions, resynced: set[str]) -> Iterable[tuple[PairWork, Any, str]]:
    audience_id = _id(state, audience.address)
    if audience_id is None:
        log.warning("audience.%s is not applied; it is not synced", audience.name)
        return
    for target in audience.spec.destinations:
        destination = project.destinations.get(target.destination)
        destination_id = _id(state, f"destination.{target.destination}")
        if destination is None or destination_id is None:
            log.warning("destination.%s is not applied; audience.%s is not sent there", target.destination, audience.name)
            continue
        spec = destination.spec
        pair = box.Pair(audience.name, audience_id, destination.name, destination_id)
        selection = Selection(
            audience_id=audience_id,
            identifier_type=target.identifier,
            identifier_values=target.identifier_values,
            traits=tuple(TraitRef(name, _id(state, f"trait.{name}")) for name in sorted(target.traits)),
            consent=tuple(TraitRef(name, _id(state, f"trait.{name}")) for name in sorted(spec.consent)),
            entity=audience.spec.entity,
        )
        work = PairWork(
            pair=pair,
            selection=selection,
            mode=spec.mode,
            send_updates=target.send_updates,
            guard=_guard(project, spec),
            full_resync=options.resyncs(audience.name, destination.name) or bool({audience_id, destination_id} & resynced),
            approved=options.approves(audience.name, destination.name),
            batch_size=spec.batch_size,
        )
        yield work, destination, destination_id


def _guard(project: Any, spec: Any) -> box.Guard:
    rule = spec.max_removals
    default = getattr(getattr(project.settings, "defaults", None), "max_removals", None)
    if "max_removals" not in spec.model_fields_set and default is not None:
        rule = default
    return box.Guard(share=rule.share.fraction, at_least=rule.at_least)


def _configured_pairs(project: Any, state: Any) -> set[tuple[str, str]]:
    pairs = set()
    for audience in project.audiences.values():
        audience_id = _id(state, audience.address)
        for target in audience.spec.destinations:
            destination_id = _id(state, f"destination.{target.destination}")
            if audience_id and destination_id:
                pairs.add((audience_id, destination_id))
    return pairs


def _retirement(project: Any, state: Any, stones: dict[str, Any], audience_id: str, destination_id: str) -> tuple[PairWork, Any] | None:
    audience_name = _name(state, stones, audience_id)
    destination = destination_model(project, state, stones, destination_id)
    if audience_name is None or destination is None:
        log.warning("sync rows of unknown audience %s or destination %s are kept; no spec to send exits with", audience_id, destination_id)
        return None
    pair = box.Pair(audience_name, audience_id, destination.name, destination_id)
    return PairWork(pair=pair, selection=None, batch_size=destination.spec.batch_size), destination


def destination_model(project: Any, state: Any, stones: dict[str, Any], destination_id: str) -> Any | None:
    """Find the Destination model of an id: the project's, else the applied spec, else the tombstone's."""
    from reconciler.spec.models import Destination

    for record in state.resources.values():
        if record.id == destination_id and record.kind == "Destination":
            if record.name in project.destinations:
                return project.destinations[record.name]
            return _model(Destination, record.spec)
    stone = stones.get(destination_id)
    if stone is not None and stone.spec:
        return _model(Destination, stone.spec)
    return None


def _model(model: Any, spec: dict[str, Any]) -> Any | None:
    document = spec if "kind" in spec else None
    if document is None:
        return None
    try:
        return model.model_validate(document)
    except ValueError as error:
        log.warning("cannot read a stored destination spec: %s", error)
        return None


def _name(state: Any, stones: dict[str, Any], resource_id: str) -> str | None:
    for record in state.resources.values():
        if record.id == resource_id:
            return record.name
    stone = stones.get(resource_id)
    return stone.name if stone is not None else None


def _id(state: Any, address: str) -> str | None:
    record = state.resources.get(address)
    return record.id if record is not None else None


def _move_replaced(connection: sa.Connection, store: Any, state: Any, stones: dict[str, Any]) -> set[str]:
    """Move sync rows of replaced ids to their successors; returns the successors' ids."""
    live = {record.id for record in state.resources.values()}
    unknown = {resource_id for pair in box.pairs_present(connection) for resource_id in pair if resource_id not in live}
    moved: set[str] = set()
    for old_id in sorted(unknown):
        new_id = _successor(store, state, stones, old_id)
        if new_id is None:
            continue
        box.rekey(connection, "audience_id", old_id, new_id)
        box.rekey(connection, "destination_id", old_id, new_id)
        log.info("sync rows of replaced id %s moved to %s; a full resync follows", old_id, new_id)
        moved.add(new_id)
    return moved


def _successor(store: Any, state: Any, stones: dict[str, Any], old_id: str) -> str | None:
    stone = stones.get(old_id)
    if stone is not None:
        record = state.resources.get(stone.address)
        return record.id if record is not None and record.id != old_id else None
    for record in state.resources.values():
        if record.kind not in ("Audience", "Destination"):
            continue
        for version in store.history(record.address):
            if getattr(version, "replaced_id", None) == old_id:
                return record.id
    return None
