"""Limiting a plan to `--target`/`--exclude` globs without breaking references.

A selected create, update, replace or move needs what its spec references:
traits and audiences (transitively), the destinations it feeds and the
traits a destination checks for consent. The changes of those are pulled
into the plan, each marked with the selected changes that need it. A
needed change that `--exclude` leaves out is refused. So is removing an address
(a delete, or the old name of a move) that a resource left outside the
selection still references, since apply would leave that reference dangling.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.errors import PermanentError
from reconciler.plan.graph import references
from reconciler.plan.model import ResourceChange


def select_changes(
    changes: list[ResourceChange],
    desired: Mapping[str, Any],
    applied: Mapping[str, Any],
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
) -> list[ResourceChange]:
    """Return the changes the globs select plus the changes those need, in their original order.

    `desired` maps addresses to DesiredResource, `applied` to state records.
    Raises PermanentError when the selection cannot be applied on its own.
    """
    if not targets and not excludes:
        return changes
    chosen = {change.address for change in changes if selected(change, targets, excludes)}
    included = _pull_dependencies(changes, chosen, desired, excludes)
    result = []
    for change in changes:
        if change.address in included:
            result.append(dataclasses.replace(change, included_by=tuple(sorted(included[change.address]))))
        elif change.address in chosen:
            result.append(change)
    _check_removals(result, desired, applied)
    return result


def selected(change: ResourceChange, targets: tuple[str, ...], excludes: tuple[str, ...]) -> bool:
    """Return whether the globs select a change, by its address or the address it moves from."""
    return any(matches(address, targets, excludes) for address in _addresses(change))


def matches(address: str, targets: tuple[str, ...], excludes: tuple[str, ...]) -> bool:
    if targets and not _any_glob(address, targets):
        return False
    return not _any_glob(address, excludes)


def unmatched_targets(targets: Iterable[str], addresses: Iterable[str]) -> list[str]:
    """Return the target globs that match none of `addresses`."""
    known = list(addresses)
    return [glob for glob in targets if not any(fnmatch.fnmatchcase(address, glob) for address in known)]


def _pull_dependencies(
    changes: list[ResourceChange], chosen: set[str], desired: Mapping[str, Any], excludes: tuple[str, ...]
) -> dict[str, set[str]]:
    """{address of a needed change outside `chosen`: the chosen addresses needing it}."""
    by_address = {change.address: change for change in changes}
    included: dict[str, set[str]] = defaultdict(set)
    blocked: list[tuple[str, str]] = []
    for root in sorted(chosen):
        if by_address[root].action == "delete":
            continue
        for dependency in sorted(_dependencies(root, desired)):
            change = by_address.get(dependency)
            if change is None or dependency in chosen:
                continue
            if any(_any_glob(address, excludes) for address in _addresses(change)):
                blocked.append((root, dependency))
            else:
                included[dependency].add(root)
    if blocked:
        needs = "; ".join(f"{root} needs the change of {dependency}, which --exclude leaves out" for root, dependency in blocked)
        raise PermanentError(
            needs,
            hint="Drop the --exclude glob that matches the needed change, or leave out what needs it too.",
        )
    return included


def _dependencies(root: str, desired: Mapping[str, Any]) -> set[str]:
    """Return every address the desired spec of `root` references, transitively."""
    found: set[str] = set()
    pending = [root]
    while pending:
        resource = desired.get(pending.pop())
        if resource is None:
            continue
        for address in references(resource.spec):
            if address not in found and address != root:
                found.add(address)
                pending.append(address)
    return found


def _check_removals(planned: list[ResourceChange], desired: Mapping[str, Any], applied: Mapping[str, Any]) -> None:
    """Refuse removing an address that a resource outside the plan still references."""
    removed = {change.address: change for change in planned if change.action == "delete"}
    removed.update({change.previous_address: change for change in planned if change.previous_address})
    if not removed:
        return
    inside = {address for change in planned for address in _addresses(change)}
    users: dict[str, set[str]] = defaultdict(set)
    for address in sorted(set(desired) | set(applied)):
        if address in inside:
            continue
        specs = [item.spec for item in (desired.get(address), applied.get(address)) if item is not None]
        for used in set().union(*(references(spec) for spec in specs)) & set(removed):
            users[used].add(address)
    if not users:
        return
    problems = [_removal_problem(removed[address], address, sorted(names)) for address, names in sorted(users.items())]
    dependents = sorted(set().union(*users.values()))
    flags = " ".join(f"--target {name}" for name in dependents)
    raise PermanentError(
        "; ".join(problems),
        hint=(
            f"Target them too ({flags}), or change them to stop using it and apply that first."
        ),
    )


def _removal_problem(change: ResourceChange, address: str, users: list[str]) -> str:
    names = ", ".join(users)
    verb = "still references" if len(users) == 1 else "still reference"
    if change.action == "delete":
        return f"{address} cannot be deleted on its own: {names} outside the targets {verb} it"
    return f"{address} cannot move to {change.address} on its own: {names} outside the targets {verb} {address}"


def _addresses(change: ResourceChange) -> list[str]:
    return [change.address] + ([change.previous_address] if change.previous_address else [])


def _any_glob(address: str, globs: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(address, glob) for glob in globs)
