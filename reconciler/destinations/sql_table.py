"""The `sql_table` destination: one row per member in a table of any SQLAlchemy database.

Columns: audience, identifier_type, identifier_value (the key, none
nullable), traits (JSON), entered_at and updated_at (UTC, no zone). An entry
or update upserts the row, keeping entered_at; an exit deletes it, so the
table always equals the current membership. The table is created when
missing; each batch is one transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from reconciler.destinations.base import Capabilities, Change, DestinationAdapter, SendResult
from reconciler.errors import PermanentError, TransientError

log = logging.getLogger(__name__)


class SqlTableAdapter(DestinationAdapter):
    capabilities = Capabilities(
        supports_removals=True,
        default_batch_size=1000,
        max_batch_size=50_000,
        idempotency_keys=False,
        carries_traits=True,
    )

    def __init__(self, name: str, *, url: str, table: str, schema: str | None) -> None:
        import sqlalchemy as sa

        self.name = name
        self.sa = sa
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self.table = sa.Table(
            table,
            sa.MetaData(schema=schema),
            sa.Column("audience", sa.Text, primary_key=True, nullable=False),
            sa.Column("identifier_type", sa.Text, primary_key=True, nullable=False),
            sa.Column("identifier_value", sa.Text, primary_key=True, nullable=False),
            sa.Column("traits", sa.JSON().with_variant(_jsonb(), "postgresql"), nullable=False),
            sa.Column("entered_at", sa.DateTime, nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
        )
        self._ready = False

    def describe(self) -> str:
        return f"sql_table destination {self.name} ({self.engine.url.get_backend_name()} table {self.table.fullname})"

    def send(self, changes: Sequence[Change]) -> SendResult:
        sa = self.sa
        try:
            self._create_table()
            with self.engine.begin() as connection:
                exits = [change for change in changes if change.type == "exited"]
                stays = [change for change in changes if change.type != "exited"]
                for change in exits:
                    connection.execute(sa.delete(self.table).where(*self._key(change)))
                if stays:
                    self._upsert(connection, stays)
        except sa.exc.OperationalError as error:
            raise TransientError(f"{self.describe()}: {_first_line(error)}") from error
        except sa.exc.SQLAlchemyError as error:
            raise PermanentError(
                f"{self.describe()}: {_first_line(error)}", hint="Check the table's columns and the user's privileges."
            ) from error
        return SendResult(acknowledged=[change.idempotency_key for change in changes])

    def rename(self, old: str, new: str, values: Sequence[str]) -> None:
        sa = self.sa
        try:
            self._create_table()
            with self.engine.begin() as connection:
                connection.execute(sa.update(self.table).where(self.table.c.audience == old).values(audience=new))
        except sa.exc.OperationalError as error:
            raise TransientError(f"{self.describe()}: {_first_line(error)}") from error

    def _create_table(self) -> None:
        if not self._ready:
            self.table.metadata.create_all(self.engine, checkfirst=True)
            self._ready = True

    def _key(self, change: Change) -> list[Any]:
        columns = self.table.c
        return [
            columns.audience == change.audience,
            columns.identifier_type == change.identifier_type,
            columns.identifier_value == change.identifier_value,
        ]

    def _upsert(self, connection: Any, changes: Sequence[Change]) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = [
            {
                "audience": change.audience,
                "identifier_type": change.identifier_type,
                "identifier_value": change.identifier_value,
                "traits": json.loads(json.dumps(change.traits, default=str)),
                "entered_at": now,
                "updated_at": now,
            }
            for change in changes
        ]
        dialect = connection.dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = _dialect_insert(dialect)(self.table)
            statement = insert.on_conflict_do_update(
                index_elements=["audience", "identifier_type", "identifier_value"],
                set_={"traits": insert.excluded.traits, "updated_at": insert.excluded.updated_at},
            )
            connection.execute(statement, rows)
            return
        # Elsewhere: keep entered_at of rows already there, then replace the rows.
        sa = self.sa
        for row, change in zip(rows, changes):
            existing = connection.execute(sa.select(self.table.c.entered_at).where(*self._key(change))).scalar()
            if existing is not None:
                row["entered_at"] = existing
                connection.execute(sa.delete(self.table).where(*self._key(change)))
        connection.execute(sa.insert(self.table), rows)

    def close(self) -> None:
        self.engine.dispose()


def _dialect_insert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _jsonb() -> Any:
    from sqlalchemy.dialects.postgresql import JSONB

    return JSONB()


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
