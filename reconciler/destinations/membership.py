"""What a destination should hold for an audience, as SQL over the results tables.

The desired set is the audience's members, less the holdout, less members
missing any consent trait (a consent trait is true only when its stored
boolean value is true), joined to the identifier values of the configured
type: `latest` keeps the value with the greatest last_seen (ties: the
greatest value), `all` up to 3 values in that order. Account audiences send
each account's group id instead, as identifier type `group_id`. Each row carries a
`traits_sig`, a text form of the sent traits' values, so a changed trait is
found by comparing text in SQL without building JSON there.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

ALL_VALUES_LIMIT = 3
ACCOUNT_IDENTIFIER = "group_id"
_SIG_SEPARATOR = "\x1f"
_MISSING = "\x1e"  # a value no trait holds in practice; PostgreSQL text refuses NUL

audience_members = sa.table(
    "personas_audience_members",
    sa.column("audience_id", sa.Text),
    sa.column("audience", sa.Text),
    sa.column("subject_id", sa.Text),
    sa.column("holdout", sa.Boolean),
)

trait_values = sa.table(
    "personas_trait_values",
    sa.column("trait_id", sa.Text),
    sa.column("trait", sa.Text),
    sa.column("subject_id", sa.Text),
    sa.column("value_type", sa.Text),
    sa.column("value_text", sa.Text),
    sa.column("value_number", sa.Numeric(38, 9)),
    sa.column("value_boolean", sa.Boolean),
    sa.column("value_timestamp", sa.DateTime),
    sa.column("value_json", sa.JSON),
)

_VALUE_COLUMNS = ("value_text", "value_number", "value_boolean", "value_timestamp", "value_json")


@dataclass(frozen=True)
class TraitRef:
    """A trait by name, and by its stable id when the state has one (renames keep the id)."""

    name: str
    id: str | None

    def matches(self, table: Any) -> sa.ColumnElement[bool]:
        return table.c.trait_id == self.id if self.id else table.c.trait == self.name


@dataclass(frozen=True)
class Selection:
    """Selection of the members and values one audience sends to one destination."""

    audience_id: str
    identifier_type: str
    identifier_values: str
    traits: tuple[TraitRef, ...]
    consent: tuple[TraitRef, ...]
    entity: str = "user"


def eligible_members(selection: Selection) -> sa.Select:
    """Members after the holdout: subject_id."""
    members = audience_members
    return sa.select(members.c.subject_id).where(
        members.c.audience_id == selection.audience_id,
        sa.func.coalesce(members.c.holdout, sa.false()).is_(sa.false()),
    )


def consented_members(selection: Selection) -> sa.Subquery:
    """Members after the holdout whose every consent trait is true: subject_id."""
    query = eligible_members(selection)
    members = audience_members
    for index, ref in enumerate(selection.consent):
        value = trait_values.alias(f"consent_{index}")
        query = query.where(
            sa.exists().where(
                ref.matches(value),
                value.c.subject_id == members.c.subject_id,
                value.c.value_boolean.is_(sa.true()),
            )
        )
    return query.subquery("consented")


def desired(selection: Selection, identifiers: sa.FromClause) -> sa.Subquery:
    """Build the desired set: identifier_value, identifier_type, subject_id, traits_sig (one row per value)."""
    members = consented_members(selection)
    if selection.entity == "account":
        # An account member is its group id: that value is sent, typed group_id, whatever `identifier` names.
        query = sa.select(
            members.c.subject_id.label("identifier_value"),
            sa.literal(ACCOUNT_IDENTIFIER, sa.Text).label("identifier_type"),
            members.c.subject_id,
        )
        return _with_traits_sig(query, members, selection.traits).subquery("desired")
    ranked = _ranked_identifiers(selection, identifiers)
    limit = 1 if selection.identifier_values == "latest" else ALL_VALUES_LIMIT
    query = (
        sa.select(
            ranked.c.identifier_value,
            sa.literal(selection.identifier_type, sa.Text).label("identifier_type"),
            members.c.subject_id,
        )
        .select_from(members.join(ranked, ranked.c.profile_id == members.c.subject_id))
        .where(ranked.c.rank <= limit)
    )
    query = _with_traits_sig(query, members, selection.traits)
    return query.subquery("desired")


def _ranked_identifiers(selection: Selection, identifiers: sa.FromClause) -> sa.Subquery:
    rank = sa.func.row_number().over(
        partition_by=identifiers.c.profile_id,
        order_by=(identifiers.c.last_seen.desc(), identifiers.c.identifier_value.desc()),
    )
    return (
        sa.select(identifiers.c.profile_id, identifiers.c.identifier_value, rank.label("rank"))
        .where(identifiers.c.identifier_type == selection.identifier_type)
        .subquery("ranked_identifiers")
    )


def _with_traits_sig(query: sa.Select, members: sa.Subquery, traits: tuple[TraitRef, ...]) -> sa.Select:
    """Add `traits_sig`: each sent trait's value as text, in the listed order."""
    if not traits:
        return query.add_columns(sa.literal("", sa.Text).label("traits_sig"))
    parts: list[sa.ColumnElement[Any]] = []
    for index, ref in enumerate(traits):
        value = trait_values.alias(f"sent_trait_{index}")
        query = query.join(value, sa.and_(ref.matches(value), value.c.subject_id == members.c.subject_id), isouter=True)
        texts = [sa.cast(value.c[name], sa.Text) for name in _VALUE_COLUMNS]
        parts.append(sa.func.coalesce(*texts, sa.literal(_MISSING, sa.Text)))
    sig = parts[0]
    for part in parts[1:]:
        sig = sig.concat(sa.literal(_SIG_SEPARATOR, sa.Text)).concat(part)
    return query.add_columns(sig.label("traits_sig"))


def trait_payloads(connection: sa.Connection, traits: tuple[TraitRef, ...], subject_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Sent traits per subject, as JSON-ready values; a trait without a value is null."""
    if not traits or not subject_ids:
        return {}
    result: dict[str, dict[str, Any]] = {subject: {ref.name: None for ref in traits} for subject in subject_ids}
    by_id = {ref.id: ref.name for ref in traits if ref.id}
    by_name = {ref.name: ref.name for ref in traits if not ref.id}
    query = sa.select(trait_values).where(
        trait_values.c.subject_id.in_(subject_ids),
        sa.or_(*(ref.matches(trait_values) for ref in traits)),
    )
    for row in connection.execute(query).mappings():
        name = by_id.get(row["trait_id"]) or by_name.get(row["trait"])
        if name is not None and row["subject_id"] in result:
            result[row["subject_id"]][name] = _json_value(row)
    return result


def _json_value(row: Any) -> Any:
    kind = row["value_type"]
    if kind == "boolean":
        return row["value_boolean"]
    if kind == "number":
        number = row["value_number"]
        if number is None:
            return None
        number = Decimal(number)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "timestamp":
        stamp = row["value_timestamp"]
        return None if stamp is None else stamp.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    if kind == "list":
        value = row["value_json"]
        if isinstance(value, str):
            import json

            return json.loads(value)
        return value
    return row["value_text"]
