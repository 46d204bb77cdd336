"""Choosing which traits and audiences a run computes, as dbt selects models.

A selector is one of:

* an address, `audience.winback`, or a bare name, `winback`;
* a glob over addresses or names, `audience.win*`, `trait.ltv_*`;
* `+SELECTOR`: the selected resources and everything upstream of them
  (the traits and audiences their conditions read, transitively);
  `SELECTOR+` adds everything downstream;
* `label:KEY=VALUE` (or `label:KEY` for any value).

Several selectors select the union. No selector selects everything.
Destinations are never computed, so they are never selected.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.errors import UsageError
from reconciler.spec import models as m


def condition_references(condition: Any) -> set[str]:
    """Addresses of the traits and audiences a condition tree reads."""
    if condition is None:
        return set()
    if isinstance(condition, m.TraitCondition):
        return {f"trait.{condition.trait}"}
    if isinstance(condition, m.AudienceCondition):
        return {f"audience.{condition.audience}"}
    found: set[str] = set()
    for child in _children(condition):
        found |= condition_references(child)
    return found


def _children(condition: Any) -> list[Any]:
    if isinstance(condition, m.AllCondition):
        return list(condition.all)
    if isinstance(condition, m.AnyCondition):
        return list(condition.any)
    if isinstance(condition, m.NotCondition):
        return [condition.not_]
    for name in ("any_user", "all_users", "no_user"):
        if hasattr(condition, name):
            return [getattr(condition, name)]
    return []


def direct_upstream(resource: Any) -> set[str]:
    """Addresses a trait or audience reads directly (traits read none)."""
    if resource.kind != "Audience":
        return set()
    return condition_references(resource.spec.include) | condition_references(resource.spec.exclude)


def upstream(resources: Mapping[str, Any], address: str) -> set[str]:
    """Return every address that `address` depends on, transitively, without itself."""
    found: set[str] = set()
    pending = [address]
    while pending:
        current = resources.get(pending.pop())
        if current is None:
            continue
        for parent in direct_upstream(current):
            if parent not in found:
                found.add(parent)
                pending.append(parent)
    return found


def downstream(resources: Mapping[str, Any], address: str) -> set[str]:
    return {other for other in resources if address in upstream(resources, other)}


def dependency_order(resources: Mapping[str, Any], addresses: Iterable[str]) -> list[str]:
    """`addresses` with every resource after the ones it reads; ties by address, traits first."""
    chosen = set(addresses)
    ordered: list[str] = []
    done: set[str] = set()

    def visit(address: str, path: tuple[str, ...]) -> None:
        if address in done or address not in resources:
            return
        if address in path:
            raise UsageError(f"dependency cycle: {' -> '.join(path + (address,))}")
        for parent in sorted(direct_upstream(resources[address])):
            visit(parent, path + (address,))
        done.add(address)
        if address in chosen:
            ordered.append(address)

    for address in sorted(chosen, key=lambda a: (not a.startswith("trait."), a)):
        visit(address, ())
    return ordered


def _matches(pattern: str, address: str) -> bool:
    name = address.split(".", 1)[1]
    return fnmatch.fnmatchcase(address, pattern) or fnmatch.fnmatchcase(name, pattern)


def _label_matches(selector: str, resource: Any) -> bool:
    key, _, value = selector.removeprefix("label:").partition("=")
    labels = resource.metadata.labels
    return key in labels and (not value or labels[key] == value)


def select(resources: Mapping[str, Any], selectors: Iterable[str]) -> list[str]:
    """Return the addresses of the traits and audiences the selectors pick, in dependency order.

    Raises UsageError for a selector that picks nothing, naming it.
    """
    computable = {address: item for address, item in resources.items() if item.kind in ("Trait", "Audience")}
    selectors = [text.strip() for text in selectors if text.strip()]
    if not selectors:
        return dependency_order(computable, computable)
    chosen: set[str] = set()
    for selector in selectors:
        picked = _pick(computable, selector)
        if not picked:
            raise UsageError(
                f"--select {selector} matches no trait or audience",
                hint="Use an address such as audience.winback, a glob such as 'trait.ltv_*', "
                "+ADDRESS for upstream too, or label:KEY=VALUE; `personas state list` shows what is applied.",
            )
        chosen |= picked
    return dependency_order(computable, chosen)


def _pick(resources: Mapping[str, Any], selector: str) -> set[str]:
    with_upstream = selector.startswith("+")
    with_downstream = selector.endswith("+") and not selector.startswith("label:")
    core = selector.strip("+") if not selector.startswith("label:") else selector
    if core.startswith("label:"):
        picked = {address for address, item in resources.items() if _label_matches(core, item)}
    else:
        picked = {address for address in resources if _matches(core, address)}
    extra: set[str] = set()
    for address in picked:
        if with_upstream:
            extra |= upstream(resources, address)
        if with_downstream:
            extra |= downstream(resources, address)
    return picked | {address for address in extra if address in resources}
