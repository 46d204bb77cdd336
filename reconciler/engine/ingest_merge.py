"""Storing checked messages into personas_events on DuckDB, block by block.

Staging a whole ingest batch before copying it held every message in
memory twice. On DuckDB one process holds the file and the whole batch is
one transaction, so each block of checked messages goes straight into
personas_events instead, and the batch still commits or rolls back as one.

Deduplication keeps what the single final copy did. A messageId stored by
an earlier batch is never replaced. Among the copies of a messageId within
this batch, the one with the lowest hash of its raw line is kept, whatever
block it came in. The lowest hash seen so far per messageId of this batch
lives in a temporary table, consulted only when a block meets ids already
stored (a block of new ids, the usual case, costs one insert).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from reconciler.engine import layout

_HASHES = "personas_ingest_hashes"


class EventMerger:
    """Merges blocks of checked rows into personas_events for one ingest batch; counts the rows stored."""

    def __init__(self, connection: sa.Connection, columns: Sequence[str], batch_seq: int, now: datetime) -> None:
        self.connection = connection
        self.columns = [name for name in columns if name != "line_hash"]
        self.params = {"batch_seq": batch_seq, "now": now}
        self.stored = 0
        connection.execute(sa.text(f"CREATE OR REPLACE TEMPORARY TABLE {_HASHES} (message_id VARCHAR, line_hash VARCHAR)"))

    def merge(self, source: str, rows: int | None = None) -> None:
        """Store the rows of `source`, SQL naming a relation with the staged columns and line_hash.

        `rows`, when known, is how many rows `source` has; it saves counting them.
        """
        listed = ", ".join(self.columns)
        block = (
            f"(SELECT {listed}, line_hash FROM (SELECT {listed}, line_hash, "
            f"row_number() OVER (PARTITION BY message_id ORDER BY line_hash) AS copy_number "
            f"FROM {source}) AS staged WHERE copy_number = 1)"
        )
        execute = self.connection.execute
        if rows is None:
            rows = execute(sa.text(f"SELECT count(*) FROM {source} AS s")).scalar_one()
        if rows == 0:
            return
        inserted = execute(
            sa.text(
                f"INSERT INTO {layout.events.name} ({listed}, batch_seq, ingested_at) "
                f"SELECT {listed}, :batch_seq, :now FROM {block} AS b ON CONFLICT (message_id) DO NOTHING"
            ),
            self.params,
        ).rowcount
        self.stored += max(inserted, 0)
        if inserted == rows:  # all distinct and new: none of them can be in this batch's hashes yet
            execute(sa.text(f"INSERT INTO {_HASHES} SELECT message_id, line_hash FROM {source} AS s"))
            return
        self._replace_higher_copies(block)
        execute(
            sa.text(
                f"INSERT INTO {_HASHES} SELECT message_id, line_hash FROM {block} AS b "
                f"WHERE NOT EXISTS (SELECT 1 FROM {_HASHES} AS h WHERE h.message_id = b.message_id)"
            )
        )

    def _replace_higher_copies(self, block: str) -> None:
        """Replace rows this batch stored whose line hash is higher than a copy in the block."""
        assignments = ", ".join(f"{name} = r.{name}" for name in self.columns if name != "message_id")
        lower = (
            f"SELECT b.* FROM {block} AS b JOIN {_HASHES} AS h ON h.message_id = b.message_id "
            f"WHERE b.line_hash < h.line_hash"
        )
        self.connection.execute(
            sa.text(
                f"UPDATE {layout.events.name} SET {assignments} FROM ({lower}) AS r "
                f"WHERE {layout.events.name}.message_id = r.message_id AND {layout.events.name}.batch_seq = :batch_seq"
            ),
            self.params,
        )
        self.connection.execute(
            sa.text(
                f"UPDATE {_HASHES} SET line_hash = b.line_hash FROM {block} AS b "
                f"WHERE {_HASHES}.message_id = b.message_id AND b.line_hash < {_HASHES}.line_hash"
            )
        )

    def close(self) -> None:
        self.connection.execute(sa.text(f"DROP TABLE IF EXISTS {_HASHES}"))
