"""The SQL side of identity resolution: unresolved messages grouped by identifier set.

Most messages repeat an identifier set seen before (the same user id, email
and anonymous id), and a repeat changes nothing once its set is linked. So
the warehouse, not Python, reads the unresolved messages. It copies them
into a staging table with two numbers: `pos`, the resolution order (load
order, then timestamp, then messageId), and `set_id`, equal for equal raw
identifier values. Then it sums up each set: its first message, its time
range and its size. Python resolves sets, and asks for every message only of
the few sets whose first message had a merge refused. The message-to-profile
mapping is written back with one join on `set_id`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.engine.bulk import create_temp_table, load_rows

if TYPE_CHECKING:
    from reconciler.engine.warehouse import Warehouse

MESSAGES = "personas_resolve_messages"
_SET_PROFILES = "personas_resolve_set_profiles"
_MESSAGE_PROFILES = "personas_resolve_message_profiles"
_SETS_WANTED = "personas_resolve_sets_wanted"
_SETS = "personas_resolve_sets"
_PAGE = 50_000


@dataclass(frozen=True, slots=True)
class IdentifierSet:
    """One distinct set of raw identifier values and its first message in resolution order."""

    set_id: int
    pos: int
    message_id: str
    timestamp: datetime
    first_seen: datetime
    last_seen: datetime
    messages: int
    second_pos: int | None  # position of the set's second message, if it has one
    values: tuple[Any, ...]  # raw field values, aligned with the extractor's fields


Occurrence = tuple[int, int, datetime, str]  # (pos, set_id, timestamp, message_id)


def stage_unresolved(
    writer: sa.Connection, warehouse: Warehouse, fields: Sequence[sa.ColumnElement[Any]], raw: sa.Subquery, full: bool
) -> Any:
    """Copy the unresolved messages into the staging table; return the highest load order among them."""
    names = [f"field_{n}" for n in range(len(fields))]
    load_order_type = "bigint" if warehouse.sources is None else "timestamp"
    columns = [
        ("message_id", "text"),
        ("timestamp", "timestamp"),
        ("load_order", load_order_type),
        ("group_id", "text"),
        ("pos", "bigint"),
        ("set_id", "bigint"),
        *[(name, "text") for name in names],
    ]
    create_temp_table(writer, MESSAGES, columns)
    values = [field.label(name) for field, name in zip(fields, names)]
    inner = sa.select(
        raw.c.message_id,
        raw.c.timestamp,
        raw.c.load_order,
        # Only group calls link a profile to an account.
        sa.case((sa.and_(raw.c.type == "group", raw.c.group_id != ""), raw.c.group_id)).label("group_id"),
        *values,
    )
    if not full:
        mapping = layout.message_profiles
        inner = inner.where(~sa.exists().where(mapping.c.message_id == raw.c.message_id))
    staged = inner.subquery("unresolved")
    numbered = sa.select(
        staged.c.message_id,
        staged.c.timestamp,
        staged.c.load_order,
        staged.c.group_id,
        sa.func.row_number().over(order_by=[staged.c.load_order, staged.c.timestamp, staged.c.message_id]).label("pos"),
        sa.func.dense_rank().over(order_by=[staged.c[name] for name in names] or [sa.literal(1)]).label("set_id"),
        *[staged.c[name] for name in names],
    ).subquery("numbered")
    # Stored by set, so that DuckDB skips most of the table when fetching the messages of a few sets.
    query = sa.select(*numbered.c).order_by(numbered.c.set_id)
    target = sa.table(MESSAGES, *(sa.column(name) for name, _ in columns))
    writer.execute(sa.insert(target).from_select([name for name, _ in columns], query))
    if writer.dialect.name == "postgresql":
        writer.execute(sa.text(f"CREATE INDEX ON {MESSAGES} (set_id)"))
        writer.execute(sa.text(f"ANALYZE {MESSAGES}"))
    return writer.execute(sa.text(f"SELECT max(load_order) FROM {MESSAGES}")).scalar()


def stage_sets(writer: sa.Connection, field_count: int) -> None:
    """Sum up the staged messages by identifier set: first message, second position, time range, size."""
    listed = "".join(f", f.field_{n}" for n in range(field_count))
    create_statement = (
        f"CREATE TEMPORARY TABLE {_SETS} AS "
        f"WITH numbered AS (SELECT *, row_number() OVER (PARTITION BY set_id ORDER BY pos) AS nth FROM {MESSAGES}), "
        f"sums AS (SELECT set_id, min(timestamp) AS first_seen, max(timestamp) AS last_seen, count(*) AS messages, "
        f"min(CASE WHEN nth = 2 THEN pos END) AS second_pos FROM numbered GROUP BY set_id) "
        f"SELECT f.set_id, f.pos, f.message_id, f.timestamp, a.first_seen, a.last_seen, a.messages, a.second_pos{listed} "
        f"FROM numbered AS f JOIN sums AS a ON a.set_id = f.set_id WHERE f.nth = 1"
    )
    writer.execute(sa.text(f"DROP TABLE IF EXISTS {_SETS}"))
    writer.execute(sa.text(create_statement))


def read_sets(writer: sa.Connection) -> Iterator[IdentifierSet]:
    """Yield the identifier sets of the staged messages, by the position of their first message.

    Read a page at a time, so that other statements may run on the same
    connection between pages (a streamed DuckDB result would end).
    """
    after = 0
    while True:
        rows = writer.execute(
            sa.text(f"SELECT * FROM {_SETS} WHERE pos > :after ORDER BY pos LIMIT {_PAGE}"), {"after": after}
        ).all()
        for row in rows:
            yield IdentifierSet(*row[:8], values=tuple(row[8:]))
        if len(rows) < _PAGE:
            return
        after = rows[-1][1]


def read_occurrences(writer: sa.Connection, firsts: dict[int, int]) -> list[Occurrence]:
    """Return the staged messages of the given sets after their first (set id -> its position), in resolution order."""
    if not firsts:
        return []
    columns = (("set_id", "bigint"), ("pos", "bigint"))
    create_temp_table(writer, _SETS_WANTED, columns)
    load_rows(writer, _SETS_WANTED, columns, sorted(firsts.items()))
    rows = writer.execute(
        sa.text(
            f"SELECT m.pos, m.set_id, m.timestamp, m.message_id FROM {MESSAGES} AS m "
            f"JOIN {_SETS_WANTED} AS w ON w.set_id = m.set_id WHERE m.pos > w.pos ORDER BY m.pos"
        )
    ).all()
    writer.execute(sa.text(f"DROP TABLE {_SETS_WANTED}"))
    return [tuple(row) for row in rows]


def write_mapping(
    writer: sa.Connection, set_profiles: list[tuple[int, str | None]], message_profiles: list[tuple[str, str | None]]
) -> None:
    """Map staged messages to profiles: whole sets by a join, single messages (of refused sets) as given.

    Both lists stay in temporary tables until `drop_stage`, for `account_ranges`.
    """
    columns = (("set_id", "bigint"), ("profile_id", "text"))
    create_temp_table(writer, _SET_PROFILES, columns)
    load_rows(writer, _SET_PROFILES, columns, set_profiles)
    columns = (("message_id", "text"), ("profile_id", "text"))
    create_temp_table(writer, _MESSAGE_PROFILES, columns)
    load_rows(writer, _MESSAGE_PROFILES, columns, message_profiles)
    writer.execute(
        sa.text(
            f"INSERT INTO {layout.message_profiles.name} (message_id, profile_id) "
            f"SELECT m.message_id, s.profile_id FROM {MESSAGES} AS m JOIN {_SET_PROFILES} AS s ON s.set_id = m.set_id "
            f"UNION ALL SELECT message_id, profile_id FROM {_MESSAGE_PROFILES}"
        )
    )


def account_ranges(writer: sa.Connection) -> list[tuple[str, str, datetime, datetime]]:
    """Return (account, profile, first seen, last seen) of the staged group calls, by their mapped profile.

    Reads the mapping from the small tables `write_mapping` left, not from
    personas_message_profiles, which a join would have to hash whole.
    """
    rows = writer.execute(
        sa.text(
            f"SELECT group_id, profile_id, min(timestamp), max(timestamp) FROM ("
            f"SELECT m.group_id, s.profile_id, m.timestamp FROM {MESSAGES} AS m "
            f"JOIN {_SET_PROFILES} AS s ON s.set_id = m.set_id WHERE m.group_id IS NOT NULL "
            f"UNION ALL SELECT m.group_id, r.profile_id, m.timestamp FROM {MESSAGES} AS m "
            f"JOIN {_MESSAGE_PROFILES} AS r ON r.message_id = m.message_id WHERE m.group_id IS NOT NULL"
            f") AS calls WHERE profile_id IS NOT NULL GROUP BY group_id, profile_id"
        )
    )
    return [tuple(row) for row in rows]


def drop_stage(writer: sa.Connection) -> None:
    for table in (MESSAGES, _SETS, _SET_PROFILES, _MESSAGE_PROFILES):
        writer.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
