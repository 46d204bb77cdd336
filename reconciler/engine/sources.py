"""Reading events from an existing Segment or RudderStack warehouse schema (`sources:`).

Both tools load one table per call type (`tracks`, `identifies`, `pages`,
`screens`, `groups`, `aliases`) plus one table per track event, named by the
snake_cased event, whose extra columns are that event's properties. Columns
are flat: `context_*` columns hold the context, and the columns of
`identifies` and `groups` that are not standard hold traits.

This module maps those tables into the same raw events relation as
personas_events: JSON objects are built from the flat columns found through
information_schema, a message id seen in several tables or loads is kept
once (the per-event table's row first, then the earliest load), and the load
time (`uuid_ts`, else `loaded_at`, else `received_at`) orders identity
resolution. Key names are the column names: a property `orderId` arrives as
the column `order_id` and is read as `properties.order_id`.

The tables must live in the project's warehouse, beside personas' own
identity tables, since the events relation joins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.errors import WarehouseError

if TYPE_CHECKING:
    from reconciler.engine.warehouse import Warehouse

CALL_TABLES = ("tracks", "identifies", "pages", "screens", "groups", "aliases")
_CALL_TYPES = {"tracks": "track", "identifies": "identify", "pages": "page", "screens": "screen", "groups": "group", "aliases": "alias"}
_EVENT_NAMES = {"page": "Page Viewed", "screen": "Screen Viewed"}

# Columns both tools write on every table; none of them is a property or a trait.
_STANDARD_COLUMNS = {
    "id", "message_id", "anonymous_id", "user_id", "group_id", "previous_id",
    "received_at", "sent_at", "original_timestamp", "timestamp", "uuid_ts", "loaded_at",
    "event", "event_text", "channel", "type", "rudder_id", "request_ip", "context",
}
# Context objects whose flattened keys are nested again: context_page_url -> {"page": {"url": ...}}.
_CONTEXT_OBJECTS = ("traits", "page", "library", "device", "os", "app", "campaign", "location", "network", "screen", "referrer")
# Tables the tools keep beside the event tables that are not events.
_NOT_EVENT_TABLES = {"users", "accounts", "rudder_discards", "rudder_identity_mappings"}
_LOAD_TIME_COLUMNS = ("uuid_ts", "loaded_at", "received_at")
_MAX_PAIRS_PER_OBJECT = 50  # PostgreSQL functions take at most 100 arguments


@dataclass(frozen=True)
class _Column:
    name: str
    data_type: str


def source_events(warehouse: Warehouse) -> sa.Subquery:
    """Build the raw events relation over the `sources:` tables (columns as Warehouse.raw_events)."""
    sources = warehouse.sources
    _check_same_warehouse(warehouse)
    tables = _source_tables(warehouse)
    names = {call: sources.tables.get(call, call) for call in CALL_TABLES}
    parts = []
    for call, table in names.items():
        if table in tables:
            parts.append(_call_select(warehouse, call, table, tables[table]))
    for table, columns in sorted(tables.items()):
        if table not in names.values() and _is_event_table(table, columns):
            parts.append(_call_select(warehouse, "events", table, columns))
    if not parts:
        schema = sources.schema_ or "the default schema"
        raise WarehouseError(
            f"no {sources.format} event tables found in {schema}",
            hint="Check `sources.schema` and `sources.tables` in personas.yaml, and that the tables are loaded.",
        )
    union = sa.union_all(*parts).subquery("source_union")
    ranked = sa.select(
        *(union.c[name] for name in _OUTPUT_COLUMNS),
        sa.func.row_number()
        .over(partition_by=union.c.message_id, order_by=(union.c.source_rank, union.c.load_order))
        .label("copy_number"),
    ).subquery("source_ranked")
    return (
        sa.select(*(ranked.c[name] for name in _OUTPUT_COLUMNS)).where(ranked.c.copy_number == 1).subquery("raw_events")
    )


_OUTPUT_COLUMNS = (
    "message_id", "type", "event", "user_id", "anonymous_id", "group_id",
    "timestamp", "properties", "traits", "context", "load_order",
)


def _check_same_warehouse(warehouse: Warehouse) -> None:
    url = warehouse.sources.url
    if url and sa.make_url(url).render_as_string(hide_password=False) != warehouse.url.render_as_string(hide_password=False):
        raise WarehouseError(
            "`sources.url` names a database other than the warehouse; personas reads source tables only in its own warehouse",
            hint="Point `warehouse:` at the database holding the Segment or RudderStack tables and drop `sources.url`.",
        )


def _source_tables(warehouse: Warehouse) -> dict[str, list[_Column]]:
    """Tables of the source schema and their columns, read once per open warehouse."""
    cached = warehouse.cache.get("source_tables")
    if cached is not None:
        return cached
    schema = warehouse.sources.schema_
    query = "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE "
    query += "table_schema = :schema" if schema else "table_schema = current_schema()"
    query += " ORDER BY table_name, ordinal_position"
    tables: dict[str, list[_Column]] = {}
    with warehouse.engine.connect() as connection:
        for table, column, data_type in connection.execute(sa.text(query), {"schema": schema} if schema else {}):
            if not table.startswith("personas_"):
                tables.setdefault(table, []).append(_Column(column.lower(), data_type.lower()))
    warehouse.cache["source_tables"] = tables
    return tables


def _is_event_table(table: str, columns: list[_Column]) -> bool:
    names = {column.name for column in columns}
    return table not in _NOT_EVENT_TABLES and not table.startswith("_") and {"id", "event", "event_text"} <= names


def _call_select(warehouse: Warehouse, call: str, table: str, columns: list[_Column]) -> sa.Select:
    """Select one table's rows as raw events. `call` is a call table name, or "events" for a per-event table."""
    dialect = warehouse.dialect
    by_name = {column.name: column for column in columns}
    source = sa.table(table, *(sa.column(column.name) for column in columns), schema=warehouse.sources.schema_)
    kind = "track" if call == "events" else _CALL_TYPES[call]

    def text(name: str) -> sa.ColumnElement[Any]:
        return sa.cast(source.c[name], sa.Text) if name in by_name else sa.cast(sa.null(), sa.Text)

    extra = [column for column in columns if column.name not in _STANDARD_COLUMNS and not column.name.startswith("context_")]
    context = [column for column in columns if column.name.startswith("context_")]
    properties = extra if kind in ("track", "page", "screen") and call != "tracks" else []
    traits = extra if kind in ("identify", "group") else []
    if kind == "track":
        # `event` contains the table-name slug (order_completed), and `event_text` the name as sent.
        event = sa.func.coalesce(text("event_text"), text("event"))
    else:
        event = sa.cast(sa.literal(_EVENT_NAMES[kind]) if kind in _EVENT_NAMES else sa.null(), sa.Text)
    load_column = next((name for name in _LOAD_TIME_COLUMNS if name in by_name), None)
    return sa.select(
        text("id").label("message_id"),
        sa.cast(sa.literal(kind), sa.Text).label("type"),
        event.label("event"),
        text("user_id").label("user_id"),
        text("anonymous_id").label("anonymous_id"),
        text("group_id").label("group_id"),
        _utc(source, by_name.get("timestamp") or by_name.get("received_at"), dialect).label("timestamp"),
        _json_object({column.name: source.c[column.name] for column in properties}, dialect).label("properties"),
        _json_object({column.name: source.c[column.name] for column in traits}, dialect).label("traits"),
        _json_object(_nest_context(source, context), dialect).label("context"),
        _utc(source, by_name.get(load_column) if load_column else None, dialect).label("load_order"),
        sa.literal(0 if call == "events" else 1).label("source_rank"),
    ).select_from(source)


def _utc(source: sa.TableClause, column: _Column | None, dialect: str) -> sa.ColumnElement[Any]:
    """Return a time column as naive UTC, converting columns with a time zone."""
    if column is None:
        return sa.cast(sa.null(), layout.Timestamp)
    value = source.c[column.name]
    if "with time zone" in column.data_type or column.data_type in ("timestamptz", "timestamp_tz"):
        return sa.cast(sa.func.timezone("UTC", value), layout.Timestamp)
    return sa.cast(value, layout.Timestamp)


def _nest_context(source: sa.TableClause, columns: list[_Column]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for column in columns:
        key = column.name[len("context_") :]
        head, _, rest = key.partition("_")
        if head in _CONTEXT_OBJECTS and rest:
            nested.setdefault(head, {})[rest] = source.c[column.name]
        else:
            nested[key] = source.c[column.name]
    return nested


def _json_object(values: dict[str, Any], dialect: str) -> sa.ColumnElement[Any]:
    """Build a JSON object in SQL from column expressions (nested dicts become nested objects)."""
    if not values:
        return sa.cast(sa.null(), layout.JSONType)
    pairs: list[Any] = []
    for key, value in values.items():
        quoted = sa.literal_column("'" + key.replace("'", "''") + "'", sa.Text)
        pairs += [quoted, _json_object(value, dialect) if isinstance(value, dict) else value]
    if dialect == "postgresql":
        size = 2 * _MAX_PAIRS_PER_OBJECT
        objects = [sa.func.jsonb_build_object(*pairs[start : start + size]) for start in range(0, len(pairs), size)]
        combined = objects[0]
        for item in objects[1:]:
            combined = combined.op("||")(item)
        return sa.type_coerce(combined, layout.JSONType)
    return sa.type_coerce(sa.func.json_object(*pairs), layout.JSONType)
