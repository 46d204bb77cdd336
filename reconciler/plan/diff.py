"""Desired specs against the applied state: the changes a plan is made of.

`build_plan` reads nothing and writes nothing: it takes the loaded project,
a state snapshot already read, the environment (to see rotated secrets) and
the store's digest function, and returns a `Plan`. The same inputs always
give the same plan.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import PermanentError, SpecError
from reconciler.plan import secrets
from reconciler.plan.fields import diff_values, format_path, lookup
from reconciler.plan.graph import ReferenceGraph
from reconciler.plan.model import IDENTITY_ADDRESS, Downstream, FieldChange, IdentityChange, Plan, ResourceChange
from reconciler.plan.normalize import canonical_json, normalize_identity, normalize_resource, spec_hash
from reconciler.plan.targeting import matches, select_changes, unmatched_targets

Digest = Callable[[str], str]

REPLACE_EFFECT = "membership history is closed and destinations get one guarded full resync"
IDENTITY_EFFECT = "every audience is affected; the next run re-resolves identities from scratch"


@dataclass(frozen=True)
class DesiredResource:
    """One resource as the specs want it, normalised."""

    address: str
    kind: str
    name: str
    spec: dict[str, Any]
    spec_hash: str
    source_file: str | None = None
    protected: bool = False
    previous_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesiredState:
    """Every resource and the identity rules, normalised; `specs_hash` covers them all."""

    resources: dict[str, DesiredResource]
    identity: dict[str, Any]
    specs_hash: str = field(default="")


def desired_state(project: Any) -> DesiredState:
    """Normalise a loaded project's resources and identity rules."""
    resources = {}
    for model in project.resources:
        normalized = normalize_resource(model)
        location = project.source_of(model.address)
        resources[model.address] = DesiredResource(
            address=model.address,
            kind=model.kind,
            name=model.metadata.name,
            spec=normalized,
            spec_hash=spec_hash(normalized),
            source_file=getattr(location, "file", None),
            protected=model.metadata.protected,
            previous_names=tuple(model.metadata.previous_names),
        )
    return make_desired_state(resources, normalize_identity(project.settings.identity))


def make_desired_state(resources: dict[str, DesiredResource], identity: dict[str, Any]) -> DesiredState:
    hashes = {address: resource.spec_hash for address, resource in sorted(resources.items())}
    hashes[IDENTITY_ADDRESS] = spec_hash(identity)
    digest = hashlib.sha256(canonical_json(hashes).encode("utf-8")).hexdigest()
    return DesiredState(resources, identity, digest)


def build_plan(
    desired: DesiredState,
    snapshot: Any,
    *,
    env: Mapping[str, str],
    digest: Digest | None,
    personas_version: str,
    targets: Iterable[str] = (),
    excludes: Iterable[str] = (),
) -> Plan:
    """Compare the desired state with a state snapshot and return the plan.

    `digest` is the store's keyed HMAC (`store.secret_digest`); without it
    (a store never applied) no secret can have rotated. Raises
    PermanentError when the plan would delete or replace a resource the
    state marks protected, or when the targeted changes cannot be applied
    on their own (see `reconciler.plan.targeting`).
    """
    targets, excludes = tuple(targets), tuple(excludes)
    applied = dict(snapshot.resources)
    moves = _find_moves(desired, applied)
    moved_from = set(moves.values())
    # Resources being deleted still count as users: their audiences feed destinations until then.
    graph = ReferenceGraph.from_specs(
        [resource.spec for resource in desired.resources.values()]
        + [record.spec for address, record in applied.items() if address not in desired.resources and address not in moved_from]
    )
    changes: list[ResourceChange] = []
    for address, resource in sorted(desired.resources.items()):
        record = applied.get(moves.get(address, address))
        change = _change_for(resource, record, moves.get(address), env, digest)
        if change is not None:
            changes.append(change)
    for address, record in sorted(applied.items()):
        if address not in desired.resources and address not in moved_from:
            changes.append(_delete(record))

    total = len(changes)
    changes = select_changes(changes, desired.resources, applied, targets, excludes)
    changes = [_with_downstream(change, graph) for change in changes]
    _check_protected(changes, applied, desired)
    identity = _identity_change(desired, snapshot.identity, graph)
    if identity is not None:
        total += 1
        if not matches(IDENTITY_ADDRESS, targets, excludes):
            identity = None
    known = [*desired.resources, *applied, IDENTITY_ADDRESS]
    return Plan(
        lineage=snapshot.lineage,
        serial=snapshot.serial,
        specs_hash=desired.specs_hash,
        personas_version=personas_version,
        resource_changes=tuple(changes),
        identity_change=identity,
        targets=targets,
        excludes=excludes,
        warnings=_warnings(targets, excludes, unmatched_targets(targets, known)),
        unplanned=total - len(changes) - (identity is not None),
    )


def _find_moves(desired: DesiredState, applied: Mapping[str, Any]) -> dict[str, str]:
    """{new address: applied address} for renames through `metadata.previous_names`."""
    moves: dict[str, str] = {}
    claimed: dict[str, str] = {}
    for address, resource in sorted(desired.resources.items()):
        if address in applied:
            _check_no_move_onto(resource, applied, desired)
            continue
        for previous in resource.previous_names:
            old = f"{resource.kind.lower()}.{previous}"
            if old in applied and old not in desired.resources:
                if old in claimed:
                    raise SpecError(
                        f"{claimed[old]} and {address} both list {previous!r} in metadata.previous_names",
                        hint=f"Keep {previous!r} in the previous_names of only the resource that {old} became.",
                    )
                claimed[old] = address
                moves[address] = old
                break
    return moves


def _check_no_move_onto(resource: DesiredResource, applied: Mapping[str, Any], desired: DesiredState) -> None:
    """Refuse a rename whose new address is still an applied resource: its id and history would be lost."""
    for previous in resource.previous_names:
        old = f"{resource.kind.lower()}.{previous}"
        if old in applied and old not in desired.resources:
            raise PermanentError(
                f"{old} cannot move to {resource.address}: {resource.address} already exists in the state; "
                "delete it in one apply, then rename in the next",
                hint=(
                    f"Put {old} back under its old name and apply with {resource.address} removed; "
                    f"then rename it with `previous_names: [{previous}]`."
                ),
            )


def _change_for(
    resource: DesiredResource, record: Any, moved_from: str | None, env: Mapping[str, str], digest: Digest | None
) -> ResourceChange | None:
    if record is None:
        return ResourceChange(
            address=resource.address,
            action="create",
            kind=resource.kind,
            name=resource.name,
            reason=f"new in {resource.source_file}" if resource.source_file else "new",
            after=secrets.masked(resource.spec),
            after_hash=resource.spec_hash,
            source_file=resource.source_file,
        )
    secret_notes = _secret_notes(resource.spec, record, env, digest)
    rotated = [path for path, note in secret_notes.items() if note == secrets.SENSITIVE_CHANGED]
    if record.spec == resource.spec and not rotated and moved_from is None:
        return None
    before_hash = spec_hash(record.spec)
    fields = _add_secret_notes(_field_changes(record.spec, resource.spec), resource.spec, secret_notes)
    action, reason = _classify(record.spec, resource.spec, moved_from, fields, rotated)
    return ResourceChange(
        address=resource.address,
        action=action,
        kind=resource.kind,
        name=resource.name,
        reason=reason,
        before=secrets.masked(record.spec),
        after=secrets.masked(resource.spec),
        before_hash=before_hash,
        after_hash=resource.spec_hash,
        previous_address=moved_from,
        changed_fields=tuple(fields),
        source_file=resource.source_file,
    )


def _classify(
    before: dict[str, Any], after: dict[str, Any], moved_from: str | None, fields: list[FieldChange], rotated: list[str]
) -> tuple[str, str]:
    replace_reason = replace_reason_for(before, after)
    if replace_reason:
        return "replace", replace_reason
    if moved_from is not None:
        return "move", f"renamed from {moved_from} (metadata.previous_names): keeps its id, history and destination state"
    if rotated and all(change.path in rotated for change in fields):
        return "update", "a secret value changed"
    count = len(fields)
    return "update", f"{count} field{'s' if count != 1 else ''} changed"


def replace_reason_for(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """Return why a change needs a replace (the entity, or a trait's or destination's type changed), or None."""
    old, new = before.get("spec", {}), after.get("spec", {})
    kind = after.get("kind")
    if kind in ("Trait", "Audience") and old.get("entity", "user") != new.get("entity", "user"):
        return f"entity changed from {old.get('entity', 'user')} to {new.get('entity', 'user')}: {REPLACE_EFFECT}"
    if kind == "Trait" and old.get("type") != new.get("type"):
        return f"trait type changed from {old.get('type')} to {new.get('type')}: {REPLACE_EFFECT}"
    if kind == "Destination" and old.get("type") != new.get("type"):
        return (
            f"destination type changed from {old.get('type')} to {new.get('type')}: "
            "its audiences get one guarded full resync to the new destination"
        )
    return None


def _field_changes(before: dict[str, Any], after: dict[str, Any]) -> list[FieldChange]:
    """List changed fields with values as plans show them, noting where masking hides a change."""
    shown_before, shown_after = secrets.masked(before), secrets.masked(after)
    changes = []
    for path, _old, _new in diff_values(before, after):
        old, new = lookup(shown_before, path), lookup(shown_after, path)
        note = secrets.SENSITIVE_CHANGED if old == new else None
        changes.append(FieldChange(format_path(path), old, new, note))
    return changes


def _secret_notes(spec: dict[str, Any], record: Any, env: Mapping[str, str], digest: Digest | None) -> dict[str, str]:
    """{path: note} for secret fields whose value rotated or cannot be resolved now."""
    if digest is None or not secrets.secret_fields(spec):
        return {}
    stored = getattr(record, "secret_hashes", None) or {}
    result = secrets.digest_secrets(spec, env, digest)
    notes = {path: secrets.SENSITIVE_UNKNOWN for path in result.unknown}
    for path, value in result.digests.items():
        if stored.get(path) not in (None, value):
            notes[path] = secrets.SENSITIVE_CHANGED
    return notes


def _add_secret_notes(fields: list[FieldChange], spec: dict[str, Any], notes: dict[str, str]) -> list[FieldChange]:
    by_path = {change.path: change for change in fields}
    shown = secrets.masked(spec)
    paths = {format_path(path): path for path in secrets.secret_field_paths(spec)}
    for path, note in sorted(notes.items()):
        if path in by_path:
            change = by_path[path]
            by_path[path] = FieldChange(change.path, change.before, change.after, change.note or note)
        else:
            value = lookup(shown, paths[path])
            by_path[path] = FieldChange(path, value, value, note)
    return [by_path[path] for path in sorted(by_path)]


def _delete(record: Any) -> ResourceChange:
    where = f" (last applied from {record.source_file})" if record.source_file else ""
    return ResourceChange(
        address=record.address,
        action="delete",
        kind=record.kind,
        name=record.name,
        reason=f"no longer in the specs{where}",
        before=secrets.masked(record.spec),
        before_hash=spec_hash(record.spec),
        source_file=record.source_file,
    )


def _with_downstream(change: ResourceChange, graph: ReferenceGraph) -> ResourceChange:
    downstream = graph.downstream(change.previous_address or change.address)
    if change.previous_address:
        moved = graph.downstream(change.address)
        downstream = Downstream(
            tuple(sorted(set(downstream.audiences) | set(moved.audiences))),
            tuple(sorted(set(downstream.destinations) | set(moved.destinations))),
        )
    if not downstream:
        return change
    return dataclasses.replace(change, downstream=downstream)


def _check_protected(changes: list[ResourceChange], applied: Mapping[str, Any], desired: DesiredState) -> None:
    """Raise PermanentError for deletes and replaces of what the state marks protected, whatever the files contain now."""
    problems, hints = [], []
    for change in changes:
        record = applied.get(change.previous_address or change.address)
        if change.action not in ("delete", "replace") or record is None or not record.protected:
            continue
        where = record.source_file or "its spec file"
        if change.action == "delete":
            problems.append(f"{change.address} is protected and cannot be deleted (last applied from {where})")
            hints.append(f"restore {change.address} in {where} with `protected: false`, apply, then delete it")
        else:
            current = desired.resources[change.address].source_file or where
            problems.append(f"{change.address} is protected and cannot be replaced: {change.reason.split(':')[0]}")
            hints.append(f"set `protected: false` in {current} and apply that first, or undo the change")
    if problems:
        raise PermanentError("; ".join(problems), hint="To go ahead: " + "; ".join(hints) + ".")


def _identity_change(desired: DesiredState, record: Any, graph: ReferenceGraph) -> IdentityChange | None:
    after_hash = spec_hash(desired.identity)
    if record is None:
        return IdentityChange(
            action="create",
            reason="the identity rules are recorded for the first time",
            before=None,
            after=desired.identity,
            before_hash=None,
            after_hash=after_hash,
        )
    before_hash = spec_hash(record.spec)
    if before_hash == after_hash:
        return None
    return IdentityChange(
        action="update",
        reason=IDENTITY_EFFECT,
        before=record.spec,
        after=desired.identity,
        before_hash=before_hash,
        after_hash=after_hash,
        changed_fields=tuple(_field_changes(record.spec, desired.identity)),
        downstream=graph.everything(),
    )


def _warnings(targets: tuple[str, ...], excludes: tuple[str, ...], unmatched: list[str]) -> tuple[str, ...]:
    if not targets and not excludes:
        return ()
    return (
        *(f"--target {glob!r} matches no resource" for glob in unmatched),
        "This plan covers only the addresses matching --target/--exclude and the changes they need; "
        "other changes wait for a later apply.",
    )
