"""Loading many rows into a warehouse table quickly, whatever the dialect.

DuckDB inserts row by row through `executemany`, so rows are written to a
temporary JSON Lines file that DuckDB's own reader loads in one statement;
PostgreSQL gets COPY; other dialects get `executemany`. Column types are
given as one of the logical names in `SQL_TYPES`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

SQL_TYPES = {
    "text": {"duckdb": "VARCHAR", "postgresql": "TEXT", "default": "TEXT"},
    "json": {"duckdb": "JSON", "postgresql": "JSONB", "default": "TEXT"},
    "timestamp": {"duckdb": "TIMESTAMP", "postgresql": "TIMESTAMP", "default": "TIMESTAMP"},
    "bigint": {"duckdb": "BIGINT", "postgresql": "BIGINT", "default": "BIGINT"},
    "boolean": {"duckdb": "BOOLEAN", "postgresql": "BOOLEAN", "default": "BOOLEAN"},
}

Columns = Sequence[tuple[str, str]]


def sql_type(logical: str, dialect: str) -> str:
    types = SQL_TYPES[logical]
    return types.get(dialect, types["default"])


def create_temp_table(connection: sa.Connection, name: str, columns: Columns) -> None:
    """Create (or recreate) a temporary table that lives as long as the connection."""
    dialect = connection.dialect.name
    listed = ", ".join(f"{column} {sql_type(logical, dialect)}" for column, logical in columns)
    connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    connection.execute(sa.text(f"CREATE TEMPORARY TABLE {name} ({listed})"))


def load_rows(connection: sa.Connection, table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
    """Append rows (tuples in `columns` order; JSON values as Python objects) to a table."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "duckdb":
        _load_duckdb(connection, table, columns, rows)
    elif dialect == "postgresql":
        _load_postgresql(connection, table, columns, rows)
    else:
        _load_generic(connection, table, columns, rows)


def _load_duckdb(connection: sa.Connection, table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
    names = [column for column, _ in columns]
    handle, path = tempfile.mkstemp(prefix="personas-load-", suffix=".jsonl")
    try:
        longest = 0
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for row in rows:
                line = json.dumps(dict(zip(names, row)), default=_isoformat, ensure_ascii=False)
                longest = max(longest, len(line))
                out.write(line)
                out.write("\n")
        # The reader's buffers grow with this size, so give it what the longest line needs.
        object_size = max(1 << 20, 4 * (longest + 1))
        types = ", ".join(f"'{column}': '{sql_type(logical, 'duckdb')}'" for column, logical in columns)
        quoted = path.replace("'", "''")
        connection.execute(
            sa.text(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM read_json('{quoted}', "
                f"format = 'newline_delimited', columns = {{{types}}}, maximum_object_size = {object_size})"
            )
        )
    finally:
        os.unlink(path)


def _load_postgresql(connection: sa.Connection, table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
    """COPY on the transaction's own connection, so the rows commit or roll back with it."""
    json_positions = [index for index, (_, logical) in enumerate(columns) if logical == "json"]
    driver = connection.connection.driver_connection
    names = ", ".join(column for column, _ in columns)
    with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(_postgres_row(row, json_positions))


def _postgres_row(row: Sequence[Any], json_positions: list[int]) -> list[Any]:
    values = list(row)
    for index in json_positions:
        if values[index] is not None:
            # PostgreSQL text cannot contain NUL, which JSON writes as \u0000.
            values[index] = json.dumps(values[index], ensure_ascii=False).replace("\\u0000", "")
    return [value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value for value in values]


def _load_generic(connection: sa.Connection, table: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
    target = sa.table(table, *(sa.column(column) for column, _ in columns))
    encoded = [
        {
            column: json.dumps(value) if logical == "json" and value is not None else value
            for (column, logical), value in zip(columns, row)
        }
        for row in rows
    ]
    connection.execute(target.insert(), encoded)


def _isoformat(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
