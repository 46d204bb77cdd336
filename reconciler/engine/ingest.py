"""`personas ingest`: load Segment-spec JSON Lines files into personas_events.

One call is one ingest batch with its own number (`batch_seq`), in one
transaction. Lines are checked in Python and loaded, in chunks, into a
temporary staging table; on PostgreSQL and other warehouses one final
statement copies the staged rows into personas_events, keeping one row per
messageId and skipping ids already stored (`ON CONFLICT DO NOTHING` behind
the primary key). That statement is the only deduplication, so two
processes ingesting the same messages at once still store each message once.
On DuckDB, which one process holds at a time, DuckDB checks most lines itself
(ingest_duckdb.py) and each block goes straight into personas_events with
the same choice of copy (ingest_merge.py), so a batch is never held whole.
Malformed lines go to personas_quarantine with the reason and the raw line;
messages carrying a suppressed (erased) identifier are dropped and counted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.engine.bulk import create_temp_table, load_rows
from reconciler.engine.identity import IdentifierExtractor, ResolveSummary, resolve, suppression_text
from reconciler.engine.ingest_duckdb import stage_file
from reconciler.engine.ingest_merge import EventMerger
from reconciler.engine.messages import MalformedMessage, parse_message
from reconciler.engine.warehouse import Warehouse
from reconciler.errors import UsageError, WarehouseError

if TYPE_CHECKING:
    from reconciler.spec.settings import IdentityRules

log = logging.getLogger(__name__)

CHUNK_SIZE = 50_000
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"  # some editors start UTF-8 files with it
_STAGE = "personas_ingest_stage"
_STAGE_COLUMNS = (
    ("message_id", "text"),
    ("type", "text"),
    ("event", "text"),
    ("user_id", "text"),
    ("anonymous_id", "text"),
    ("group_id", "text"),
    ("timestamp", "timestamp"),
    ("original_timestamp", "timestamp"),
    ("sent_at", "timestamp"),
    ("received_at", "timestamp"),
    ("properties", "json"),
    ("traits", "json"),
    ("context", "json"),
    # Hash of the raw line: picks one copy of a messageId repeated within a batch.
    ("line_hash", "text"),
)
_JSON_COLUMNS = ("properties", "traits", "context")
_ROW_COLUMNS = [name for name, _ in _STAGE_COLUMNS]

Digest = Callable[[str], str]


@dataclass
class IngestSummary:
    """Counts of one ingest call: read = stored + duplicates + quarantined + suppressed."""

    batch_seq: int
    files: list[str]
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    suppressed: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    resolution: ResolveSummary | None = None


@dataclass
class _Quarantined:
    file: str
    line_number: int
    raw_line: str
    reason: str


def ingest_files(
    warehouse: Warehouse,
    paths: Iterable[Path],
    *,
    resolve_identities: bool = True,
    digest: Digest | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
    rules: IdentityRules | None = None,
) -> IngestSummary:
    """Load every file as one batch, then resolve identities of the new messages.

    `rules` are the identity rules to resolve with: the applied ones, so that
    an edited but unapplied `identity:` does not re-resolve everything
    (default: personas.yaml's). `digest` computes the keyed HMAC of a suppression text (the state store's
    `secret_digest`). It is needed only when personas_suppressions has rows.
    `progress` is called with the number of file bytes read since the last call.
    """
    if warehouse.sources is not None:
        raise UsageError(
            "this project reads events from `sources:` tables, so `personas ingest` has nowhere to load them",
            hint="Load messages with your Segment or RudderStack pipeline, or remove `sources:` from personas.yaml.",
        )
    paths = [Path(path) for path in paths]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"no such file: {path}", hint="Pass JSON Lines files, plain or gzip-compressed.")
    rules = rules or warehouse.settings.identity
    warehouse.ensure_schema()
    extractor = IdentifierExtractor(rules)
    started = _utcnow()

    with warehouse.engine.begin() as connection:
        is_suppressed = _suppression_filter(connection, extractor, digest)
        batch_seq = connection.execute(sa.select(layout.batch_seq.next_value())).scalar_one()
        summary = IngestSummary(batch_seq=batch_seq, files=[str(path) for path in paths])
        merger = None
        if warehouse.dialect == "duckdb":
            merger = EventMerger(connection, [name for name, _ in _STAGE_COLUMNS], batch_seq, _utcnow())
        stager = _Stager(connection, summary, is_suppressed, chunk_size, merger)
        for path in paths:
            if merger is not None and is_suppressed is None:
                accepted = _stage_duckdb_file(warehouse, connection, path, merger, stager, progress)
                summary.read += accepted  # after the call: stager.add counts the lines it is handed
            else:
                for line_number, raw in _lines(path, progress):
                    stager.add(path, line_number, raw)
        stager.flush()
        if merger is None:
            summary.stored = _copy_new_messages(connection, batch_seq, _utcnow(), warehouse.dialect)
        else:
            summary.stored = merger.stored
            merger.close()
        summary.duplicates = summary.read - summary.stored - summary.quarantined - summary.suppressed
        _record_batch(connection, summary, started)
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {_STAGE}"))
    log.info(
        "ingest batch %s: read %s, stored %s, duplicates %s, quarantined %s, suppressed %s",
        batch_seq, summary.read, summary.stored, summary.duplicates, summary.quarantined, summary.suppressed,
    )

    if resolve_identities:
        summary.resolution = resolve(warehouse, rules)
    return summary


def _stage_duckdb_file(
    warehouse: Warehouse,
    connection: sa.Connection,
    path: Path,
    merger: EventMerger,
    stager: _Stager,
    progress: Callable[[int], None] | None,
) -> int:
    """Check a file's lines in DuckDB on a connection of their own; return how many DuckDB accepted.

    An in-memory DuckDB database has one connection per thread, shared by
    every `connect()`: committing on a second one would commit the ingest's
    transaction, so there the checking runs on the ingest's own connection.
    """
    if warehouse.url.database in (None, "", ":memory:"):
        return stage_file(connection, path, _ROW_COLUMNS, merger.merge, stager.add, progress, commit=False)
    with warehouse.engine.connect() as scratch:
        return stage_file(scratch, path, _ROW_COLUMNS, merger.merge, stager.add, progress)


def suppression_digests(connection: sa.Connection) -> set[str]:
    return set(connection.execute(sa.select(layout.suppressions.c.identifier_hmac)).scalars())


def _suppression_filter(
    connection: sa.Connection, extractor: IdentifierExtractor, digest: Digest | None
) -> Callable[[dict[str, Any]], bool] | None:
    """Return a test for messages carrying a suppressed identifier, or None when nothing is suppressed."""
    digests = suppression_digests(connection)
    if not digests:
        return None
    if digest is None:
        raise WarehouseError(
            "the warehouse lists erased identifiers, but no state store key was given to recognise them",
            hint="Run `personas ingest` from the project whose state store erased them.",
        )

    def is_suppressed(message: dict[str, Any]) -> bool:
        pairs = extractor.from_message(message)
        return any(digest(suppression_text(kind, value)) in digests for kind, value in pairs)

    return is_suppressed


class _Stager:
    """Checks lines in Python and sends them, in chunks, to the staging table or the quarantine.

    With a merger (DuckDB), each chunk goes on from the staging table into personas_events.
    """

    def __init__(
        self,
        connection: sa.Connection,
        summary: IngestSummary,
        is_suppressed: Callable[[dict[str, Any]], bool] | None,
        chunk_size: int,
        merger: EventMerger | None,
    ) -> None:
        self.connection = connection
        self.summary = summary
        self.is_suppressed = is_suppressed
        self.chunk_size = chunk_size
        self.merger = merger
        self.rows: list[tuple[Any, ...]] = []
        self.quarantined: list[_Quarantined] = []
        create_temp_table(connection, _STAGE, _STAGE_COLUMNS)

    def add(self, path: Path, line_number: int, raw: bytes) -> None:
        self.summary.read += 1
        try:
            message = _decode(raw)
            row = parse_message(message)
        except MalformedMessage as error:
            text = raw.decode("utf-8", errors="replace")
            self.quarantined.append(_Quarantined(str(path), line_number, text, str(error)))
        else:
            if self.is_suppressed is not None and self.is_suppressed(message):
                self.summary.suppressed += 1
                return
            row["line_hash"] = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            self.rows.append(tuple(row[name] for name, _ in _STAGE_COLUMNS))
        if len(self.rows) + len(self.quarantined) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        load_rows(self.connection, _STAGE, _STAGE_COLUMNS, self.rows)
        if self.merger is not None and self.rows:
            self.merger.merge(_STAGE, len(self.rows))
            self.connection.execute(sa.text(f"DELETE FROM {_STAGE}"))
        _quarantine(self.connection, self.summary, self.quarantined)
        self.rows, self.quarantined = [], []


def _decode(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedMessage(f"invalid JSON: {error.msg} at column {error.colno}") from None


def _lines(path: Path, progress: Callable[[int], None] | None) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers; gzip is detected by its magic bytes."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw
        reported = 0
        try:
            for number, line in enumerate(stream, start=1):
                line = line.rstrip(b"\r\n")
                if number == 1:
                    line = line.removeprefix(_UTF8_BOM)
                if line.strip():
                    yield number, line
                if progress is not None and number % 10_000 == 0:
                    reported = _report(progress, raw.tell(), reported)
        except (OSError, EOFError) as error:
            raise UsageError(
                f"cannot read {path}: {error}; nothing from this ingest was stored",
                hint="Check that the file is complete JSON Lines, plain or gzip.",
            ) from None
        if progress is not None:
            _report(progress, raw.tell(), reported)


def _report(progress: Callable[[int], None], position: int, reported: int) -> int:
    if position > reported:
        progress(position - reported)
    return max(position, reported)


_QUARANTINE_COLUMNS = (
    ("batch_seq", "bigint"),
    ("file", "text"),
    ("line_number", "bigint"),
    ("raw_line", "text"),
    ("reason", "text"),
    ("quarantined_at", "timestamp"),
)


def _quarantine(connection: sa.Connection, summary: IngestSummary, lines: list[_Quarantined]) -> None:
    if not lines:
        return
    now = _utcnow()
    rows = [(summary.batch_seq, line.file, line.line_number, line.raw_line, line.reason, now) for line in lines]
    load_rows(connection, layout.quarantine.name, _QUARANTINE_COLUMNS, rows)
    summary.quarantined += len(lines)
    for line in lines:
        summary.quarantine_reasons[line.reason] = summary.quarantine_reasons.get(line.reason, 0) + 1


def _record_batch(connection: sa.Connection, summary: IngestSummary, started: datetime) -> None:
    connection.execute(
        layout.ingest_batches.insert().values(
            seq=summary.batch_seq,
            started_at=started,
            finished_at=_utcnow(),
            files=summary.files,
            read=summary.read,
            stored=summary.stored,
            duplicates=summary.duplicates,
            quarantined=summary.quarantined,
            suppressed=summary.suppressed,
        )
    )


def _copy_new_messages(connection: sa.Connection, batch_seq: int, now: datetime, dialect: str) -> int:
    """Copy staged messages not yet stored into personas_events in one statement; return how many.

    Within the batch, one row per messageId is kept, chosen by the raw line's
    hash so the choice does not depend on file or line order.
    """
    columns = [name for name, _ in _STAGE_COLUMNS if name != "line_hash"]
    listed = ", ".join(columns)
    if dialect in ("duckdb", "postgresql"):
        json_cast = "::JSONB" if dialect == "postgresql" else ""
        selected = ", ".join(f"{name}{json_cast}" if name in _JSON_COLUMNS else name for name in columns)
        conflict = " ON CONFLICT (message_id) DO NOTHING"
    else:
        selected, conflict = listed, ""
    statement = (
        f"INSERT INTO {layout.events.name} ({listed}, batch_seq, ingested_at) "
        f"SELECT {selected}, :batch_seq, :now FROM ("
        f"SELECT *, row_number() OVER (PARTITION BY message_id ORDER BY line_hash) AS copy_number FROM {_STAGE}"
        f") AS staged WHERE copy_number = 1 AND NOT EXISTS "
        f"(SELECT 1 FROM {layout.events.name} AS stored WHERE stored.message_id = staged.message_id)"
        f"{conflict}"
    )
    result = connection.execute(sa.text(statement), {"batch_seq": batch_seq, "now": now})
    return max(result.rowcount, 0)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
