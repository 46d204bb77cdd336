"""The Plan: a frozen value saying what an apply would change, and why.

A plan is built from the specs and a read of the state, and building it
changes nothing anywhere. `apply` consumes one. Its canonical JSON form
(`to_dict`) is what `plan --out` saves and `--format json` prints; the
`before`/`after` specs in it are masked (see `reconciler.plan.secrets`), so
a saved plan contains no secret. Apply re-derives the full specs from the
project files, whose hash the plan records, so the saved plan need not
carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import UsageError

FORMAT_VERSION = 1
ACTIONS = ("create", "update", "replace", "delete", "move")
IDENTITY_ADDRESS = "project.identity"


@dataclass(frozen=True)
class FieldChange:
    """One changed field: `path` like `spec.include.all[1].window`; None means absent."""

    path: str
    before: Any
    after: Any
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"path": self.path, "before": self.before, "after": self.after}
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FieldChange":
        return cls(data["path"], data.get("before"), data.get("after"), data.get("note"))


@dataclass(frozen=True)
class Downstream:
    """Audiences affected through references (transitively), and the destinations they feed."""

    audiences: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.audiences or self.destinations)

    def to_dict(self) -> dict[str, list[str]]:
        return {"audiences": list(self.audiences), "destinations": list(self.destinations)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Downstream":
        data = data or {}
        return cls(tuple(data.get("audiences", ())), tuple(data.get("destinations", ())))


@dataclass(frozen=True)
class ResourceChange:
    """The change planned for one address. `before`/`after` are masked normalised specs.

    `held_members` is set on deletes of audiences and destinations: for each
    audience/destination pair, the members the destination held after the
    last sync, whose exits the next run sends. `included_by` is set on a
    change a targeted plan pulled in: the selected changes that need it.
    """

    address: str
    action: str
    kind: str
    name: str
    reason: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    before_hash: str | None = None
    after_hash: str | None = None
    previous_address: str | None = None
    changed_fields: tuple[FieldChange, ...] = ()
    downstream: Downstream = field(default_factory=Downstream)
    source_file: str | None = None
    held_members: dict[str, int] = field(default_factory=dict)
    included_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "previous_address": self.previous_address,
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "reason": self.reason,
            "source_file": self.source_file,
            "before": self.before,
            "after": self.after,
            "before_hash": self.before_hash,
            "after_hash": self.after_hash,
            "changed_fields": [change.to_dict() for change in self.changed_fields],
            "downstream": self.downstream.to_dict(),
            "held_members": dict(self.held_members),
            "included_by": list(self.included_by),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResourceChange":
        return cls(
            address=data["address"],
            action=data["action"],
            kind=data["kind"],
            name=data["name"],
            reason=data.get("reason", ""),
            before=data.get("before"),
            after=data.get("after"),
            before_hash=data.get("before_hash"),
            after_hash=data.get("after_hash"),
            previous_address=data.get("previous_address"),
            changed_fields=tuple(FieldChange.from_dict(item) for item in data.get("changed_fields", [])),
            downstream=Downstream.from_dict(data.get("downstream")),
            source_file=data.get("source_file"),
            held_members=dict(data.get("held_members") or {}),
            included_by=tuple(data.get("included_by") or ()),
        )

    def fingerprint(self) -> tuple[Any, ...]:
        """What must match between a saved plan and the plan rebuilt at apply time."""
        notes = tuple(sorted((change.path, change.note or "") for change in self.changed_fields if change.note))
        return (self.address, self.action, self.previous_address, self.before_hash, self.after_hash, notes)


@dataclass(frozen=True)
class IdentityChange:
    """A change of the identity rules (`project.identity`): `create` at the first apply, else `update`."""

    action: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    before_hash: str | None
    after_hash: str
    changed_fields: tuple[FieldChange, ...] = ()
    downstream: Downstream = field(default_factory=Downstream)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": IDENTITY_ADDRESS,
            "action": self.action,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "before_hash": self.before_hash,
            "after_hash": self.after_hash,
            "changed_fields": [change.to_dict() for change in self.changed_fields],
            "downstream": self.downstream.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "IdentityChange | None":
        if not data:
            return None
        return cls(
            action=data["action"],
            reason=data.get("reason", ""),
            before=data.get("before"),
            after=data["after"],
            before_hash=data.get("before_hash"),
            after_hash=data["after_hash"],
            changed_fields=tuple(FieldChange.from_dict(item) for item in data.get("changed_fields", [])),
            downstream=Downstream.from_dict(data.get("downstream")),
        )

    def fingerprint(self) -> tuple[Any, ...]:
        return (IDENTITY_ADDRESS, self.action, self.before_hash, self.after_hash)


@dataclass(frozen=True)
class Plan:
    """The changes an apply would make to the state at (`lineage`, `serial`), given specs with `specs_hash`.

    `targets` and `excludes` are the address globs the plan was limited to.
    `steps` names what apply does, in order (see `reconciler.plan.apply`).
    `unplanned` counts the changes (identity included) the globs left out.
    """

    lineage: str | None
    serial: int
    specs_hash: str
    personas_version: str
    resource_changes: tuple[ResourceChange, ...] = ()
    identity_change: IdentityChange | None = None
    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    unplanned: int = 0
    format_version: int = FORMAT_VERSION

    @property
    def is_empty(self) -> bool:
        return not self.resource_changes and self.identity_change is None

    @property
    def summary(self) -> dict[str, int]:
        counts = {action: 0 for action in ACTIONS}
        for change in self.resource_changes:
            counts[change.action] += 1
        return counts

    def changes(self, action: str) -> list[ResourceChange]:
        return [change for change in self.resource_changes if change.action == action]

    def fingerprint(self) -> tuple[Any, ...]:
        identity = self.identity_change.fingerprint() if self.identity_change else None
        return (tuple(change.fingerprint() for change in self.resource_changes), identity)

    def to_dict(self) -> dict[str, Any]:
        from reconciler.plan.apply import describe_steps

        return {
            "format_version": self.format_version,
            "personas_version": self.personas_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "specs_hash": self.specs_hash,
            "targets": list(self.targets),
            "excludes": list(self.excludes),
            "summary": self.summary,
            "identity_change": self.identity_change.to_dict() if self.identity_change else None,
            "resource_changes": [change.to_dict() for change in self.resource_changes],
            "warnings": list(self.warnings),
            "unplanned": self.unplanned,
            "steps": describe_steps(self),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "the plan") -> "Plan":
        """Read a plan's canonical JSON, raising UsageError for anything that is not a plan of this format."""
        if not isinstance(data, dict) or "format_version" not in data or "resource_changes" not in data:
            raise UsageError(
                f"{source} is not a personas plan",
                hint="Pass a file written by `personas plan --out FILE`.",
            )
        if data["format_version"] != FORMAT_VERSION:
            raise UsageError(
                f"{source} has plan format version {data['format_version']!r}; this personas reads version {FORMAT_VERSION}",
                hint="Make the plan again with this version: `personas plan --out FILE`.",
            )
        try:
            return cls(
                lineage=data.get("lineage"),
                serial=int(data.get("serial", 0)),
                specs_hash=data["specs_hash"],
                personas_version=data.get("personas_version", "unknown"),
                resource_changes=tuple(ResourceChange.from_dict(item) for item in data["resource_changes"]),
                identity_change=IdentityChange.from_dict(data.get("identity_change")),
                targets=tuple(data.get("targets", ())),
                excludes=tuple(data.get("excludes", ())),
                warnings=tuple(data.get("warnings", ())),
                unplanned=int(data.get("unplanned", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UsageError(
                f"{source} is not a valid personas plan: {type(error).__name__}: {error}",
                hint="Make the plan again: `personas plan --out FILE`.",
            ) from None
