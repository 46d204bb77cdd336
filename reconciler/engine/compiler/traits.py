"""Traits as SELECTs of (subject_id, value).

Traits that read the same events share one scan: `scan_key` groups them by
(entity, event, `where` filters), and `TraitScan` computes every counter,
aggregate and distinct-value trait of a group in one GROUP BY, each
aggregate with its own window as a CASE inside it. `first`, `last` and
`most_frequent` need a ranking, `identify` reads identify or group calls and
`sql` runs the user's query: each of those is a query of its own.

Candidates with no matching events get 0 (`event_counter`,
`unique_count`) or `[]` (`unique_list`); for every other type they have no
row, which is a missing value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.expression import ColumnElement

from reconciler.engine.compiler.context import Context
from reconciler.engine.compiler.functions import DECIMAL, DecimalAvg, EmptyJsonList, JsonHasKey, JsonList, JsonText, SafeCast
from reconciler.engine.compiler.operators import property_predicate
from reconciler.spec.models import Trait, trait_value_type

SCAN_TYPES = ("event_counter", "aggregation", "unique_count", "unique_list")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def property_path(name: str) -> tuple[str, ...]:
    return tuple(name.split("."))


def typed_value(text: ColumnElement, value_type: str) -> ColumnElement:
    """Text read from JSON converted to a value type; NULL when it does not convert."""
    if value_type == "number":
        return SafeCast(text, "decimal")
    if value_type == "timestamp":
        return SafeCast(text, "timestamp")
    if value_type == "boolean":
        return SafeCast(text, "boolean")
    if value_type == "list":
        return sa.cast(text, JSON_TYPE)
    return text


def event_filter(ctx: Context, entity: str, event: str, where: Any) -> list[ColumnElement]:
    """Conditions on events shared by every trait of a scan: name, filters, as_of, subject present."""
    events = ctx.events(entity)
    clauses = [
        events.c.event == event,
        events.c.timestamp < ctx.as_of,
        ctx.subject_column(entity).isnot(None),
    ]
    for item in where:
        clauses.append(property_predicate(JsonText(events.c.properties, property_path(item.property)), item, ctx.as_of))
    return clauses


def scan_key(trait: Trait) -> tuple | None:
    """Traits with equal keys read the same events and share one scan; None: not shareable."""
    spec = trait.spec
    if spec.type not in SCAN_TYPES:
        return None
    where = tuple(sorted(item.model_dump_json(by_alias=True, exclude_none=True) for item in spec.where))
    return (spec.entity, spec.event, where)


@dataclass
class TraitScan:
    """One GROUP BY over a group's events, a column per trait (and per aggregation, its invalid count)."""

    traits: list[Trait]
    select: sa.Select
    labels: dict[str, str] = field(default_factory=dict)
    invalid_labels: dict[str, str] = field(default_factory=dict)


def build_scan(ctx: Context, traits: list[Trait]) -> TraitScan:
    first = traits[0].spec
    events = ctx.events(first.entity)
    subject = ctx.subject_column(first.entity)
    columns: list[ColumnElement] = [subject.label("subject_id")]
    scan = TraitScan(traits=traits, select=sa.select())
    for index, trait in enumerate(traits):
        label = f"t{index}"
        scan.labels[trait.name] = label
        inside = ctx.in_window(events.c.timestamp, trait.spec.window)
        columns.append(_aggregate(trait, inside, events).label(label))
        if trait.spec.type == "aggregation":
            raw = JsonText(events.c.properties, property_path(trait.spec.property))
            invalid = sa.and_(inside, raw.isnot(None), SafeCast(raw, "decimal").is_(None))
            scan.invalid_labels[trait.name] = f"i{index}"
            columns.append(sa.func.count(sa.case((invalid, 1))).label(f"i{index}"))
    clauses = event_filter(ctx, first.entity, first.event, first.where)
    starts = [ctx.window_bounds(trait.spec.window)[0] for trait in traits]
    if all(start is not None for start in starts):
        clauses.append(events.c.timestamp >= min(starts))
    scan.select = sa.select(*columns).where(*clauses).group_by(subject)
    return scan


def _aggregate(trait: Trait, inside: ColumnElement, events) -> ColumnElement:
    spec = trait.spec
    if spec.type == "event_counter":
        return sa.func.count(sa.case((inside, 1)))
    raw = JsonText(events.c.properties, property_path(spec.property))
    if spec.type == "unique_count":
        return sa.func.count(sa.distinct(sa.case((inside, raw))))
    if spec.type == "unique_list":
        return JsonList(sa.case((inside, raw)))
    number = sa.case((inside, SafeCast(raw, "decimal")))
    if spec.function == "avg":
        return DecimalAvg(number)
    return sa.cast(getattr(sa.func, spec.function)(number), DECIMAL)


def scan_values(ctx: Context, scan: TraitScan, relation, trait: Trait) -> sa.Select:
    """Select one trait's (subject_id, value) rows from a computed scan relation."""
    column = relation.c[scan.labels[trait.name]]
    spec = trait.spec
    if spec.type in ("event_counter", "unique_count", "unique_list"):
        candidates = ctx.candidates(spec.entity).subquery()
        default = EmptyJsonList() if spec.type == "unique_list" else sa.literal(0)
        value = sa.func.coalesce(column, default)
        if spec.type != "unique_list":
            value = sa.cast(value, DECIMAL)
        return sa.select(candidates.c.subject_id, value.label("value")).select_from(
            candidates.outerjoin(relation, relation.c.subject_id == candidates.c.subject_id)
        )
    return sa.select(relation.c.subject_id, column.label("value")).where(column.isnot(None))


def trait_values_select(ctx: Context, trait: Trait) -> sa.Select:
    """(subject_id, value) for one trait, compiled on its own."""
    spec = trait.spec
    if spec.type in SCAN_TYPES:
        scan = build_scan(ctx, [trait])
        return scan_values(ctx, scan, scan.select.subquery(f"scan_{trait.name}"), trait)
    if spec.type in ("first", "last"):
        return _first_last(ctx, trait)
    if spec.type == "most_frequent":
        return _most_frequent(ctx, trait)
    if spec.type == "identify":
        return _identify(ctx, trait)
    return _sql(ctx, trait)


def _first_last(ctx: Context, trait: Trait) -> sa.Select:
    spec = trait.spec
    events = ctx.events(spec.entity)
    clauses = event_filter(ctx, spec.entity, spec.event, spec.where) + [ctx.in_window(events.c.timestamp, spec.window)]
    if spec.property is None:
        value = events.c.timestamp
    else:
        raw = JsonText(events.c.properties, property_path(spec.property))
        clauses.append(raw.isnot(None))
        value = typed_value(raw, trait_value_type(spec))
    order = (events.c.timestamp, events.c.message_id)
    if spec.type == "last":
        order = tuple(column.desc() for column in order)
    return _latest_per_subject(ctx.subject_column(spec.entity), value, order, clauses)


def _latest_per_subject(subject, value, order, clauses) -> sa.Select:
    rank = sa.func.row_number().over(partition_by=subject, order_by=order)
    ranked = sa.select(subject.label("subject_id"), value.label("value"), rank.label("position")).where(*clauses).subquery()
    return sa.select(ranked.c.subject_id, ranked.c.value).where(ranked.c.position == 1, ranked.c.value.isnot(None))


def _most_frequent(ctx: Context, trait: Trait) -> sa.Select:
    spec = trait.spec
    events = ctx.events(spec.entity)
    subject = ctx.subject_column(spec.entity)
    raw = JsonText(events.c.properties, property_path(spec.property))
    clauses = event_filter(ctx, spec.entity, spec.event, spec.where)
    clauses += [ctx.in_window(events.c.timestamp, spec.window), raw.isnot(None)]
    counted = (
        sa.select(subject.label("subject_id"), raw.label("raw"), sa.func.count().label("occurrences"))
        .where(*clauses)
        .group_by(subject, raw)
        .having(sa.func.count() >= spec.min_frequency)
        .subquery()
    )
    # Ties go to the alphabetically first value.
    rank = sa.func.row_number().over(
        partition_by=counted.c.subject_id, order_by=(counted.c.occurrences.desc(), counted.c.raw.asc())
    )
    ranked = sa.select(counted.c.subject_id, counted.c.raw, rank.label("position")).subquery()
    value = typed_value(ranked.c.raw, trait_value_type(spec))
    return sa.select(ranked.c.subject_id, value.label("value")).where(ranked.c.position == 1, value.isnot(None))


def _identify(ctx: Context, trait: Trait) -> sa.Select:
    spec = trait.spec
    events = ctx.relations.events
    path = property_path(spec.trait)
    call = "identify" if spec.entity == "user" else "group"
    # Account traits come from the group call's own group id, not from every account of its user.
    subject = events.c.profile_id if spec.entity == "user" else events.c.group_id
    clauses = [
        events.c.type == call,
        events.c.timestamp < ctx.as_of,
        subject.isnot(None),
        JsonHasKey(events.c.traits, path),
    ]
    # The latest call holding the key wins, even with null: an explicit null clears the value.
    value = typed_value(JsonText(events.c.traits, path), spec.value_type)
    order = (events.c.timestamp.desc(), events.c.message_id.desc())
    return _latest_per_subject(subject, value, order, clauses)


def _sql(ctx: Context, trait: Trait) -> sa.Select:
    spec = trait.spec
    key_name, value_name = ctx.sql_columns.get(trait.name, ("identifier_value", "value"))
    query = sa.text(spec.query)
    if "as_of" in query._bindparams:
        query = query.bindparams(sa.bindparam("as_of", value=ctx.as_of, type_=sa.DateTime()))
    rows = query.columns(sa.column(key_name), sa.column(value_name)).subquery(f"sql_{trait.name}")
    key = sa.cast(rows.c[key_name], sa.Text)
    value = _sql_value(rows.c[value_name], spec.value_type)
    if spec.entity == "account":
        return sa.select(key.label("subject_id"), value.label("value")).where(key.isnot(None), value.isnot(None))
    identifiers = ctx.relations.identifiers
    # A profile holding several values of the identifier takes the row of its most recently seen one.
    rank = sa.func.row_number().over(
        partition_by=identifiers.c.profile_id,
        order_by=(identifiers.c.last_seen.desc(), identifiers.c.identifier_value.asc()),
    )
    joined = (
        sa.select(identifiers.c.profile_id.label("subject_id"), value.label("value"), rank.label("position"))
        .select_from(rows.join(identifiers, identifiers.c.identifier_value == key))
        .where(identifiers.c.identifier_type == spec.identifier, value.isnot(None))
        .subquery()
    )
    return sa.select(joined.c.subject_id, joined.c.value).where(joined.c.position == 1)


def _sql_value(column: ColumnElement, value_type: str) -> ColumnElement:
    if value_type == "list":
        return sa.cast(column, JSON_TYPE)
    text = sa.cast(column, sa.Text)
    return text if value_type == "string" else typed_value(text, value_type)


def sql_trait_columns(connection, trait: Trait, as_of) -> tuple[str, str]:
    """Read the names of a `sql` trait query's two columns from an empty result.

    Raises ValueError when the query does not return exactly two columns.
    """
    query = sa.text(trait.spec.query)
    if "as_of" in query._bindparams:
        query = query.bindparams(sa.bindparam("as_of", value=as_of, type_=sa.DateTime()))
    probe = sa.select(sa.literal_column("*")).select_from(query.columns().subquery("probe")).where(sa.false())
    names = list(connection.execute(probe).keys())
    if len(names) != 2:
        raise ValueError(
            f"the query of trait.{trait.name} returns {len(names)} columns; it must return two: "
            "an identifier value, then the trait value"
        )
    return names[0], names[1]
