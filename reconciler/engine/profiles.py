"""Finding a profile by one of its identifier values, and gathering what personas stores about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.engine.identity import IdentifierExtractor
from reconciler.engine.warehouse import Warehouse, table_names
from reconciler.errors import UsageError


@dataclass
class ProfileDetails:
    profile_id: str
    first_seen: datetime | None
    identifiers: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    traits: list[dict[str, Any]] | None = None  # None: no trait has been computed in this warehouse
    audiences: list[dict[str, Any]] | None = None  # None: no audience has been computed
    accounts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "first_seen": _iso(self.first_seen),
            "identifiers": self.identifiers,
            "accounts": self.accounts,
            "merges": self.merges,
            "traits": self.traits,
            "audiences": self.audiences,
        }


def find_profile(warehouse: Warehouse, identifier: str, identifier_type: str | None = None) -> str:
    """The canonical profile holding `identifier` (normalised by its type's rule).

    Raises UsageError when no profile holds it, or when it is a value of
    several types held by different profiles and `identifier_type` does not
    choose one.
    """
    warehouse.ensure_schema()
    rules = warehouse.settings.identity
    extractor = IdentifierExtractor(rules)
    if identifier_type is not None and rules.rule(identifier_type) is None:
        known = ", ".join(extractor.types)
        raise UsageError(f"unknown identifier type {identifier_type!r}", hint=f"Use one of the types in personas.yaml: {known}.")
    candidates = [
        (kind, value)
        for index, kind in enumerate(extractor.types)
        if identifier_type in (None, kind)
        for value in [extractor.normalize(index, identifier)]
        if value is not None
    ]
    table = layout.identifiers
    with warehouse.engine.connect() as connection:
        matches = sorted(
            {
                (kind, profile_id)
                for kind, value in candidates
                for profile_id in connection.execute(
                    sa.select(table.c.profile_id).where(table.c.identifier_type == kind, table.c.identifier_value == value)
                ).scalars()
            }
        )
        if not matches:
            by_id = _canonical(connection, identifier)
            if by_id is not None:
                return by_id
    if not matches:
        where = f" of type {identifier_type}" if identifier_type else ""
        raise UsageError(
            f"no profile has the identifier {identifier!r}{where}",
            hint="Check the value (it is matched after normalisation, so emails ignore case), or ingest its messages first.",
        )
    if len({profile_id for _, profile_id in matches}) > 1:
        types = ", ".join(kind for kind, _ in matches)
        raise UsageError(
            f"{identifier!r} is an identifier of several types: {types}",
            hint="Choose one with --type TYPE.",
        )
    return matches[0][1]


def _canonical(connection: sa.Connection, profile_id: str) -> str | None:
    """Follow merges from a profile id to the current profile; None when the id is unknown."""
    table = layout.profiles
    seen: set[str] = set()
    current: str | None = profile_id
    while current is not None and current not in seen:
        seen.add(current)
        row = connection.execute(sa.select(table.c.merged_into).where(table.c.profile_id == current)).first()
        if row is None:
            return None
        if row.merged_into is None:
            return current
        current = row.merged_into
    return None


def describe_profile(warehouse: Warehouse, profile_id: str) -> ProfileDetails:
    """Identifiers, merges, accounts, trait values and audience memberships of one profile."""
    with warehouse.engine.connect() as connection:
        first_seen = connection.execute(
            sa.select(layout.profiles.c.first_seen).where(layout.profiles.c.profile_id == profile_id)
        ).scalar_one_or_none()
        details = ProfileDetails(profile_id=profile_id, first_seen=first_seen)
        details.identifiers = _identifiers(connection, profile_id)
        details.merges = _merges(connection, profile_id)
        accounts = layout.account_users
        details.accounts = list(
            connection.execute(
                sa.select(accounts.c.account_id).where(accounts.c.profile_id == profile_id).order_by(accounts.c.account_id)
            ).scalars()
        )
        existing = table_names(connection)
        if "personas_trait_values" in existing:
            details.traits = _traits(connection, profile_id)
        if "personas_audience_members" in existing:
            details.audiences = _audiences(connection, profile_id)
    return details


def _identifiers(connection: sa.Connection, profile_id: str) -> list[dict[str, Any]]:
    table = layout.identifiers
    rows = connection.execute(
        sa.select(table).where(table.c.profile_id == profile_id).order_by(table.c.identifier_type, table.c.identifier_value)
    )
    return [
        {"type": row.identifier_type, "value": row.identifier_value, "first_seen": _iso(row.first_seen), "last_seen": _iso(row.last_seen)}
        for row in rows
    ]


def _merges(connection: sa.Connection, profile_id: str) -> list[dict[str, Any]]:
    table = layout.merges
    rows = connection.execute(
        sa.select(table)
        .where(sa.or_(table.c.survivor_profile_id == profile_id, table.c.merged_profile_id == profile_id))
        .order_by(table.c.seq)
    )
    return [
        {
            "merged_profile_id": row.merged_profile_id,
            "survivor_profile_id": row.survivor_profile_id,
            "refused": bool(row.refused),
            "reason": row.reason,
            "identifiers": row.identifiers,
            "message_id": row.message_id,
            "message_timestamp": _iso(row.message_timestamp),
        }
        for row in rows
    ]


def _traits(connection: sa.Connection, profile_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.text(
            "SELECT trait, value_type, value_text, value_number, value_boolean, value_timestamp, value_json, as_of "
            "FROM personas_trait_values WHERE subject_id = :profile_id ORDER BY trait"
        ),
        {"profile_id": profile_id},
    )
    return [{"trait": row.trait, "value": _trait_value(row), "as_of": _iso(row.as_of)} for row in rows]


def _trait_value(row: Any) -> Any:
    for name in ("value_text", "value_number", "value_boolean", "value_timestamp", "value_json"):
        value = getattr(row, name)
        if value is not None:
            if isinstance(value, datetime):
                return _iso(value)
            if name == "value_number":
                return int(value) if value == int(value) else float(value)
            return value
    return None


def _audiences(connection: sa.Connection, profile_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.text(
            "SELECT audience, holdout, as_of FROM personas_audience_members WHERE subject_id = :profile_id ORDER BY audience"
        ),
        {"profile_id": profile_id},
    )
    return [{"audience": row.audience, "holdout": bool(row.holdout), "as_of": _iso(row.as_of)} for row in rows]


def _iso(value: datetime | None) -> str | None:
    """Format a warehouse time (naive, holding UTC) as ISO 8601 UTC, like `2024-01-01T00:00:00Z`."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"
