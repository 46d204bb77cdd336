"""Reading a SQLite state store with the standard library's `sqlite3`.

`personas plan` only reads the state, and importing SQLAlchemy costs more
than everything else the read does. This reader opens the file read-only
(`mode=ro`), so it cannot create, lock for writing or change anything. The
one exception is the rollback of what a crashed writer left, which SQLite
requires before any read.

It returns the same records as `StateStore`: it decodes the columns the way
SQLAlchemy's types store them (JSON as text, times as naive UTC text,
booleans as integers) and checks the schema version with the same rule.
Only plain file URLs take this path; see `sqlite_file`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from reconciler.errors import StateError
from reconciler.state import rows
from reconciler.state.records import IDENTITY_ADDRESS, StateSnapshot, SyncRecord
from reconciler.state.versions import VERSION_TABLE, ensure_supported, version_of

# How long SQLite waits for another process's write transaction, in seconds.
SQLITE_BUSY_TIMEOUT = 30.0
# The error code of a read-only connection that finds a journal left by a crashed writer.
SQLITE_READONLY_ROLLBACK = 776

_PLAIN_FILE_URL = re.compile(r"^sqlite(?:\+pysqlite)?:///(?P<path>[^?#]+)$")
_JSON_COLUMNS = ("spec", "previous_names", "secret_hashes")
_TIME_COLUMNS = ("applied_at", "started_at", "finished_at")


def sqlite_file(url: str) -> Path | None:
    """Return the file of a plain SQLite file URL (`sqlite:///PATH`, no query), or None for any other URL.

    URLs with driver options, in-memory databases and `file:` URIs give
    None, so they keep going through SQLAlchemy, which also reports the
    errors about them.
    """
    match = _PLAIN_FILE_URL.match(url)
    if match is None:
        return None
    database = unquote(match.group("path"))
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class SqliteReader:
    """A read-only view of a SQLite state store: the reads `personas plan` makes, and no write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        self._hmac_key: bytes | None = None

    def __repr__(self) -> str:
        return f"SqliteReader({self.where!r})"

    def __enter__(self) -> SqliteReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Do nothing: no connection stays open between reads. The method lets callers close it like a StateStore."""

    def exists(self) -> bool:
        """Tell whether the store has a schema; False for a missing file or an empty database."""
        return self.schema_version() is not None

    def schema_version(self) -> int | None:
        with self._reading() as connection:
            return _current_version(connection) if connection is not None else None

    def check_schema(self) -> None:
        """Raise StateSchemaError when the store's schema is older or newer than this personas uses."""
        ensure_supported(self.schema_version(), self.where)

    def read(self) -> StateSnapshot:
        """Return the applied state, as `StateStore.read` does; an uninitialised store reads as empty."""
        empty = StateSnapshot(lineage=None, serial=0, resources={}, identity=None)
        with self._reading() as connection:
            if connection is None or _current_version(connection) is None:
                return empty
            meta = connection.execute("SELECT lineage, serial FROM meta").fetchone()
            if meta is None:
                return empty
            found = connection.execute("SELECT * FROM resources ORDER BY address")
            records = [rows.resource_record(_decoded(row)) for row in found]
        resources = {record.address: record for record in records}
        identity = resources.pop(IDENTITY_ADDRESS, None)
        return StateSnapshot(lineage=meta["lineage"], serial=meta["serial"], resources=resources, identity=identity)

    def secret_digest(self, value: str) -> str:
        """Return the keyed HMAC-SHA256 (hex) of a secret value under this store's key."""
        return hmac.new(self._key(), value.encode("utf-8"), hashlib.sha256).hexdigest()

    def syncs(self, audience: str | None = None, destination: str | None = None, limit: int | None = 20) -> list[SyncRecord]:
        """Return sync records, newest first, of one audience and/or destination when given."""
        conditions, values = [], []
        for column, value in (("audience", audience), ("destination", destination)):
            if value is not None:
                conditions.append(f"{column} = ?")
                values.append(value)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        query = f"SELECT * FROM sync_records{where} ORDER BY seq DESC LIMIT ?"
        with self._reading() as connection:
            version = _current_version(connection) if connection is not None else None
            if connection is None or version is None or version < 2:  # version 2 added the run and sync tables
                return []
            found = connection.execute(query, (*values, -1 if limit is None else limit))
            return [rows.sync_record(_decoded(row)) for row in found]

    def _key(self) -> bytes:
        if self._hmac_key is None:
            with self._reading() as connection:
                ready = connection is not None and _current_version(connection) is not None
                row = connection.execute("SELECT hmac_key FROM meta").fetchone() if ready else None
            if row is None:
                raise StateError(
                    f"the state store at {self.where} is not initialised, so it has no key for secret digests",
                    hint="Initialise the store (as `personas apply` does) before comparing secrets.",
                )
            self._hmac_key = bytes(row["hmac_key"])
        return self._hmac_key

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """Yield a connection inside one read transaction, or None when the file does not exist."""
        if self.path.exists() and not self.path.is_file():
            raise StateError(
                f"the state file {self.path} is not a regular file",
                hint="Point `state:` in personas.yaml at a SQLite file, not a folder.",
            )
        if not self.path.is_file():
            yield None
            return
        try:
            connection = _connect(self.path)
        except sqlite3.DatabaseError as error:
            if not _cannot_use(error):
                raise
            raise self._state_error(error) from None
        try:
            yield connection
        except sqlite3.DatabaseError as error:
            if not _cannot_use(error):
                raise
            raise self._state_error(error) from None
        finally:
            connection.close()

    def _state_error(self, error: sqlite3.DatabaseError) -> StateError:
        """Word a "cannot use" error as the SQLAlchemy path does, naming the store."""
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return StateError(
            f"cannot use the state store at {self.where}: {reason}",
            hint="Check that the database is running and that `state:` in personas.yaml points at it.",
        )


def _cannot_use(error: sqlite3.DatabaseError) -> bool:
    """Tell whether an error means the store cannot be used; subclasses such as IntegrityError are bugs or races."""
    return type(error) in (sqlite3.OperationalError, sqlite3.DatabaseError)


def _connect(path: Path) -> sqlite3.Connection:
    """Open the file read-only, inside a read transaction.

    A writer that died in the middle of a transaction leaves a hot journal,
    which only a read-write connection may roll back. In that case the file
    is opened read-write (`mode=rw` never creates it) so that SQLite restores
    the last committed state, as a StateStore read does.
    """
    try:
        return _open(path, "ro")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode != SQLITE_READONLY_ROLLBACK:
            raise
    return _open(path, "rw")


def _open(path: Path, mode: str) -> sqlite3.Connection:
    uri = f"file:{quote(path.as_posix())}?mode={mode}"
    connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT, isolation_level=None)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("BEGIN")  # every query of one read reads one snapshot
        # Reading the schema takes the shared lock now, so a hot journal or a file that is not a database shows here.
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        connection.close()
        raise
    return connection


def _current_version(connection: sqlite3.Connection) -> int | None:
    found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,))
    if found.fetchone() is None:
        return None
    row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    return version_of(row[0] if row is not None else None)


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    """Return a row as a dict, with JSON and time columns decoded as SQLAlchemy's column types decode them."""
    values = dict(zip(row.keys(), row))
    for column in _JSON_COLUMNS:
        if column in values and values[column] is not None:
            values[column] = json.loads(values[column])
    for column in _TIME_COLUMNS:
        if column in values and values[column] is not None:
            values[column] = datetime.fromisoformat(values[column])
    return values
