"""The reference graph between traits, audiences and destinations.

Built from normalised specs, so a plan can list what each change touches
downstream: the audiences using a changed trait or audience (transitively)
and the destinations those audiences feed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from reconciler.plan.model import Downstream


class ReferenceGraph:
    """Edges from a used address to the audiences and destinations that use it."""

    def __init__(self) -> None:
        self.users: dict[str, set[str]] = defaultdict(set)  # trait/audience -> audiences using it
        self.feeds: dict[str, set[str]] = defaultdict(set)  # audience -> destinations it feeds
        self.consent: dict[str, set[str]] = defaultdict(set)  # trait -> destinations checking it
        self.audiences: set[str] = set()

    @classmethod
    def from_specs(cls, specs: Iterable[dict[str, Any]]) -> "ReferenceGraph":
        graph = cls()
        for spec in specs:
            name = spec.get("metadata", {}).get("name")
            body = spec.get("spec", {})
            if spec.get("kind") == "Audience":
                graph._add_audience(f"audience.{name}", body)
            elif spec.get("kind") == "Destination":
                for trait in body.get("consent", []):
                    graph.consent[f"trait.{trait}"].add(f"destination.{name}")
        return graph

    def _add_audience(self, address: str, body: dict[str, Any]) -> None:
        self.audiences.add(address)
        for condition in (body.get("include"), body.get("exclude")):
            for used in _condition_references(condition):
                self.users[used].add(address)
        for entry in body.get("destinations", []):
            self.feeds[address].add(f"destination.{entry['destination']}")
            for trait in entry.get("traits", []):
                self.users[f"trait.{trait}"].add(address)

    def downstream(self, address: str) -> Downstream:
        """Return what a change of `address` touches: the audiences using it (transitively) and the destinations they feed."""
        if address.startswith("destination."):
            feeding = sorted(audience for audience, targets in self.feeds.items() if address in targets)
            return Downstream(tuple(feeding), ())
        audiences: set[str] = set()
        pending = [address]
        while pending:
            for user in self.users.get(pending.pop(), ()):
                if user not in audiences and user != address:
                    audiences.add(user)
                    pending.append(user)
        destinations = set(self.consent.get(address, ()))
        for audience in audiences | ({address} if address.startswith("audience.") else set()):
            destinations |= self.feeds.get(audience, set())
        return Downstream(tuple(sorted(audiences)), tuple(sorted(destinations)))

    def everything(self) -> Downstream:
        """Return every audience and every destination an audience feeds, which an identity change touches."""
        destinations = set().union(*self.feeds.values()) if self.feeds else set()
        return Downstream(tuple(sorted(self.audiences)), tuple(sorted(destinations)))


def references(spec: dict[str, Any]) -> set[str]:
    """Return every address a normalised spec names: conditions, the destinations it feeds and their traits, consent traits."""
    body = spec.get("spec", {})
    if spec.get("kind") == "Destination":
        return {f"trait.{trait}" for trait in body.get("consent", [])}
    if spec.get("kind") != "Audience":
        return set()
    found = set(_condition_references(body.get("include"))) | set(_condition_references(body.get("exclude")))
    for entry in body.get("destinations", []):
        found.add(f"destination.{entry['destination']}")
        found.update(f"trait.{trait}" for trait in entry.get("traits", []))
    return found


def _condition_references(condition: Any) -> Iterable[str]:
    """`trait.x` and `audience.y` named anywhere in a condition tree."""
    if isinstance(condition, list):
        for item in condition:
            yield from _condition_references(item)
    elif isinstance(condition, dict):
        if isinstance(condition.get("trait"), str):
            yield f"trait.{condition['trait']}"
        if isinstance(condition.get("audience"), str):
            yield f"audience.{condition['audience']}"
        for key, value in condition.items():
            if isinstance(value, (dict, list)):
                yield from _condition_references(value)
