"""Resources built directly from dicts, and an in-memory state snapshot, for the pure plan tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from reconciler.plan.diff import DesiredResource, DesiredState, make_desired_state
from reconciler.plan.normalize import normalize_identity, normalize_resource, spec_hash
from reconciler.spec.models import Audience, Destination, Trait
from reconciler.spec.settings import IdentityRules

MODELS = {"Trait": Trait, "Audience": Audience, "Destination": Destination}


def resource(kind: str, name: str, spec: dict[str, Any], **metadata: Any):
    body = {"apiVersion": "personas/v1", "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}
    return MODELS[kind].model_validate(body)


def trait(name: str, meta: dict[str, Any] | None = None, **spec: Any):
    return resource("Trait", name, {"type": "event_counter", "event": "Order Completed", **spec}, **(meta or {}))


def audience(name: str, include: dict[str, Any], meta: dict[str, Any] | None = None, **spec: Any):
    return resource("Audience", name, {"include": include, **spec}, **(meta or {}))


def webhook(name: str, meta: dict[str, Any] | None = None, **spec: Any):
    spec = {"type": "webhook", "url": "https://hooks.example.com/a/b", **spec}
    return resource("Destination", name, spec, **(meta or {}))


def desired(*models, identity: IdentityRules | None = None) -> DesiredState:
    resources = {}
    for model in models:
        normalized = normalize_resource(model)
        resources[model.address] = DesiredResource(
            address=model.address,
            kind=model.kind,
            name=model.metadata.name,
            spec=normalized,
            spec_hash=spec_hash(normalized),
            source_file=f"{model.kind.lower()}s/{model.metadata.name}.yaml",
            protected=model.metadata.protected,
            previous_names=tuple(model.metadata.previous_names),
        )
    return make_desired_state(resources, normalize_identity(identity or IdentityRules()))


@dataclass(frozen=True)
class Record:
    """The fields of the state store's ResourceRecord the plan reads."""

    address: str
    kind: str
    name: str
    spec: dict[str, Any]
    protected: bool = False
    source_file: str | None = None
    secret_hashes: dict[str, str] = field(default_factory=dict)
    applied_at: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Snapshot:
    lineage: str | None
    serial: int
    resources: dict[str, Record]
    identity: Record | None = None


def applied(state: DesiredState, *, serial: int = 1, secret_hashes: dict[str, dict[str, str]] | None = None) -> Snapshot:
    """The snapshot a store would read right after applying `state`."""
    records = {
        address: Record(
            address=address,
            kind=item.kind,
            name=item.name,
            spec=item.spec,
            protected=item.protected,
            source_file=item.source_file,
            secret_hashes=(secret_hashes or {}).get(address, {}),
        )
        for address, item in state.resources.items()
    }
    identity = Record("project.identity", "Identity", "identity", state.identity)
    return Snapshot("lineage-1", serial, records, identity)


EMPTY = Snapshot(None, 0, {}, None)


def fake_digest(value: str) -> str:
    import hashlib
    import hmac

    return hmac.new(b"test-key", value.encode(), hashlib.sha256).hexdigest()
