"""Loading many rows into a warehouse table quickly, whatever the dialect.

DuckDB inserts row by row through `executemany`, so each column goes to
DuckDB as one list parameter and one statement unnests them side by side;
PostgreSQL gets COPY; other dialects get `executemany`. Column types are
given as one of the logical names in `SQL_TYPES`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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

_DUCKDB_CHUNK = 100_000


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
    """Pass each column as one list parameter and unnest them side by side, a chunk of rows at a time."""
    names = ", ".join(column for column, _ in columns)
    selected = ", ".join(
        f"CAST(unnest(CAST(:c{index} AS VARCHAR[])) AS JSON)" if logical == "json"
        else f"unnest(CAST(:c{index} AS {sql_type(logical, 'duckdb')}[]))"
        for index, (_, logical) in enumerate(columns)
    )
    statement = sa.text(f"INSERT INTO {table} ({names}) SELECT {selected}")
    for start in range(0, len(rows), _DUCKDB_CHUNK):
        chunk = rows[start : start + _DUCKDB_CHUNK]
        values = {}
        for index, (_, logical) in enumerate(columns):
            column = [row[index] for row in chunk]
            if logical == "json":
                column = [None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":")) for value in column]
            values[f"c{index}"] = column
        connection.execute(statement, values)


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
