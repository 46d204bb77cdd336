"""The state store: applied resources, their history and audit log, and the locks around them.

Reads never write: a store that was never initialised reads as empty, and
on SQLite a missing file is not even created. Writes go through `apply`
(one transaction, guarded by the serial), the lock methods, `initialize`
and `upgrade`, and the run and sync bookkeeping.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from reconciler.errors import StateError
from reconciler.state import connect, rows, runs, schema, tables
from reconciler.state.locks import PostgresLock, SqliteLock
from reconciler.state.records import (
    IDENTITY_ADDRESS,
    AppliedChange,
    AuditEntry,
    AuditRecord,
    LockInfo,
    RunRecord,
    RunResourceRecord,
    StateSnapshot,
    SyncRecord,
    Tombstone,
    VersionRecord,
    utc_now,
)
from reconciler.state.writer import apply_changes

log = logging.getLogger(__name__)

EMPTY = StateSnapshot(lineage=None, serial=0, resources={}, identity=None)


class StateStore:
    """One state store, opened lazily from its URL; call `close()` when done."""

    def __init__(self, url: str) -> None:
        self.url = connect.parse_url(url)
        self.where = connect.display_url(self.url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._engine: sa.Engine | None = None
        self._lock_engine: sa.Engine | None = None
        self._hmac_key: bytes | None = None

    def __repr__(self) -> str:
        return f"StateStore({self.where!r})"

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = connect.create_engine(self.url)
        return self._engine

    def close(self) -> None:
        for engine in (self._engine, self._lock_engine):
            if engine is not None:
                engine.dispose()
        self._engine = self._lock_engine = None

    # Schema

    def exists(self) -> bool:
        """Tell whether the store has a schema; False for a new, empty database or a missing file."""
        with self._reading() as connection:
            return connection is not None and schema.current_version(connection) is not None

    def schema_version(self) -> int | None:
        with self._reading() as connection:
            return schema.current_version(connection) if connection is not None else None

    def check_schema(self) -> None:
        """Raise StateSchemaError when the store's schema is older or newer than this personas uses."""
        schema.ensure_supported(self.schema_version(), self.where)

    def initialize(self) -> None:
        """Create the schema at the newest version, the lineage, serial 0 and the HMAC key.

        Safe to call again and from several processes at once; an existing
        store at another schema version raises StateSchemaError instead.
        """
        path = connect.sqlite_path(self.url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StateError(
                    f"cannot create the folder of the state file {path}: {error.strerror or error}",
                    hint="Point `state:` in personas.yaml at a file in a folder you can write.",
                ) from None
        with self._writing() as connection:
            version = schema.current_version(connection)
            if version is None:
                schema.migrate(connection)
            else:
                schema.ensure_supported(version, self.where)
            if connection.execute(sa.select(tables.meta.c.lineage)).first() is None:
                lineage = str(uuid.uuid4())
                connection.execute(
                    sa.insert(tables.meta).values(
                        id=1, lineage=lineage, serial=0, hmac_key=secrets.token_bytes(32), created_at=utc_now()
                    )
                )
                log.info("created the state store at %s with lineage %s", self.where, lineage)

    def upgrade(self) -> tuple[int, int]:
        """Migrate the schema to the newest version; return (from, to), (0, 0) when there is no store."""
        if not self.exists():
            return 0, 0
        with self._writing() as connection:
            version = schema.current_version(connection) or 0
            if version > schema.HEAD_VERSION:
                schema.ensure_supported(version, self.where)
            return schema.migrate(connection)

    # Reads

    def read(self) -> StateSnapshot:
        """Return the applied state; an uninitialised store reads as empty."""
        with self._reading() as connection:
            if connection is None or schema.current_version(connection) is None:
                return EMPTY
            meta = connection.execute(sa.select(tables.meta.c.lineage, tables.meta.c.serial)).first()
            if meta is None:
                return EMPTY
            query = sa.select(tables.resources).order_by(tables.resources.c.address)
            records = [rows.resource_record(row) for row in connection.execute(query).mappings()]
        resources = {record.address: record for record in records}
        identity = resources.pop(IDENTITY_ADDRESS, None)
        return StateSnapshot(lineage=meta.lineage, serial=meta.serial, resources=resources, identity=identity)

    def history(self, address: str | None = None) -> list[VersionRecord]:
        """Return applied versions, oldest first: all, or those of the resource ever at `address`.

        A resource's history follows it across moves and, through
        `replaced_id`, back to the resource a replace took over from.
        """
        versions = tables.resource_versions
        with self._reading() as connection:
            if connection is None or schema.current_version(connection) is None:
                return []
            query = sa.select(versions).order_by(versions.c.seq)
            if address is not None:
                query = query.where(versions.c.id.in_(_ids_of(connection, address)))
            return [rows.version_record(row) for row in connection.execute(query).mappings()]

    def audit_log(self, limit: int | None = None) -> list[AuditRecord]:
        """Return applies, newest first."""
        with self._reading() as connection:
            if connection is None or schema.current_version(connection) is None:
                return []
            query = sa.select(tables.audit_log).order_by(tables.audit_log.c.id.desc()).limit(limit)
            return [rows.audit_record(row) for row in connection.execute(query).mappings()]

    def tombstones(self) -> list[Tombstone]:
        with self._reading() as connection:
            if connection is None or schema.current_version(connection) is None:
                return []
            query = sa.select(tables.tombstones).order_by(tables.tombstones.c.deleted_serial, tables.tombstones.c.address)
            return [rows.tombstone(row) for row in connection.execute(query).mappings()]

    def secret_digest(self, value: str) -> str:
        """Return the keyed HMAC-SHA256 (hex) of a secret value under this store's key."""
        return hmac.new(self._key(), value.encode("utf-8"), hashlib.sha256).hexdigest()

    # Writes

    def apply(self, expected_serial: int, lineage: str | None, changes: list[AppliedChange], audit: AuditEntry) -> int:
        """Write `changes` in one transaction and return the new serial.

        Raises StalePlanError when the state is no longer at
        `expected_serial`, or has another lineage. A `lineage` of None means
        the plan was made against an empty state, which the serial then
        checks. Creates the store first when it does not exist yet.
        """
        if not self.exists():
            self.initialize()
        with self._writing() as connection:
            schema.ensure_supported(schema.current_version(connection), self.where)
            serial = apply_changes(connection, expected_serial, lineage, changes, audit, self.where)
        log.info("applied %s changes to the state at %s: serial %s", len(changes), self.where, serial)
        return serial

    def forget_tombstone(self, id: str) -> bool:
        """Delete a tombstone once its exits were sent; returns False when there was none."""
        with self._writing() as connection:
            result = connection.execute(sa.delete(tables.tombstones).where(tables.tombstones.c.id == id))
        return result.rowcount == 1

    # Locks

    @contextmanager
    def lock(self, name: str = "state", operation: str = "apply", timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the lock `name` for the block, waiting up to `timeout` seconds; raises LockError.

        Taking a lock creates the store when it does not exist yet, since
        the lock lives in it.
        """
        if not self.exists():
            self.initialize()
        with self._locks().hold(name, operation, timeout) as info:
            yield info

    def force_unlock(self, lock_id: str) -> tuple[LockInfo, bool]:
        """Remove the lock `lock_id`; returns it and whether a live PostgreSQL session holding it was ended."""
        if not self.exists():
            raise StateError(f"there is no state store at {self.where}, so no lock to remove")
        return self._locks().force_unlock(lock_id)

    def _locks(self) -> SqliteLock | PostgresLock:
        if self.is_sqlite:
            return SqliteLock(self.engine)
        if self._lock_engine is None:
            self._lock_engine = connect.create_lock_engine(self.url)
        return PostgresLock(self.engine, self._lock_engine, self._lineage)

    # Runs and syncs

    def start_run(self, run_id: str, as_of: datetime, selectors: list[str], trigger: str = "cli") -> None:
        with self._writing() as connection:
            runs.start_run(connection, run_id, as_of, selectors, trigger)

    def finish_run(self, run_id: str, status: str, resources: list[RunResourceRecord]) -> None:
        """Mark a run ok or failed and record each resource's outcome."""
        with self._writing() as connection:
            runs.finish_run(connection, run_id, status, resources)

    def runs(self, limit: int | None = 20) -> list[RunRecord]:
        """Return runs, newest first."""
        with self._reading_data() as connection:
            return runs.runs(connection, limit) if connection is not None else []

    def run_resources(self, run_id: str) -> list[RunResourceRecord]:
        with self._reading_data() as connection:
            return runs.run_resources(connection, run_id) if connection is not None else []

    def last_success(self, address: str) -> RunResourceRecord | None:
        with self._reading_data() as connection:
            return runs.last_success(connection, address) if connection is not None else None

    def record_sync(self, record: SyncRecord) -> None:
        with self._writing() as connection:
            runs.record_sync(connection, record)

    def syncs(self, audience: str | None = None, destination: str | None = None, limit: int | None = 20) -> list[SyncRecord]:
        """Return sync records, newest first, of one audience and/or destination when given."""
        with self._reading_data() as connection:
            return runs.syncs(connection, audience, destination, limit) if connection is not None else []

    # Connections

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection | None]:
        """Yield a connection for reads, or None for a SQLite file that does not exist.

        All reads through one connection see one snapshot: SQLite's read
        transaction gives that, and PostgreSQL needs REPEATABLE READ for it.
        """
        path = connect.sqlite_path(self.url)
        if path is not None and path.exists() and not path.is_file():
            raise StateError(
                f"the state file {path} is not a regular file",
                hint="Point `state:` in personas.yaml at a SQLite file, not a folder.",
            )
        if path is not None and not path.is_file():
            yield None
            return
        with _translate_errors(self.where), self.engine.connect() as connection:
            if not self.is_sqlite:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            yield connection

    @contextmanager
    def _reading_data(self) -> Iterator[sa.Connection | None]:
        """Like `_reading`, and None too while the run tables are not there yet."""
        with self._reading() as connection:
            version = schema.current_version(connection) if connection is not None else None
            yield connection if version is not None and version >= 2 else None

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """Yield a connection inside one transaction; SQLite takes its write lock at the start."""
        with _translate_errors(self.where), self.engine.connect() as connection:
            if self.is_sqlite:
                connection = connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection

    def _lineage(self) -> str:
        with self._reading() as connection:
            lineage = connection.execute(sa.select(tables.meta.c.lineage)).scalar() if connection is not None else None
        if lineage is None:
            raise StateError(f"the state store at {self.where} is not initialised", hint="Run `personas apply` to create it.")
        return lineage

    def _key(self) -> bytes:
        if self._hmac_key is None:
            with self._reading() as connection:
                ready = connection is not None and schema.current_version(connection) is not None
                key = connection.execute(sa.select(tables.meta.c.hmac_key)).scalar() if ready else None
            if key is None:
                raise StateError(
                    f"the state store at {self.where} is not initialised, so it has no key for secret digests",
                    hint="Initialise the store (as `personas apply` does) before comparing secrets.",
                )
            self._hmac_key = bytes(key)
        return self._hmac_key


def _ids_of(connection: sa.Connection, address: str) -> set[str]:
    """Return every id ever at `address`, plus the ids they replaced, transitively."""
    versions = tables.resource_versions
    ids = set(connection.execute(sa.select(versions.c.id).where(versions.c.address == address)).scalars())
    ids |= set(connection.execute(sa.select(tables.resources.c.id).where(tables.resources.c.address == address)).scalars())
    frontier = set(ids)
    while frontier:
        query = sa.select(versions.c.replaced_id).where(versions.c.id.in_(frontier), versions.c.replaced_id.is_not(None))
        frontier = set(connection.execute(query).scalars()) - ids
        ids |= frontier
    return ids


@contextmanager
def _translate_errors(where: str) -> Iterator[None]:
    """Turn "cannot connect" and "not a database" errors into a StateError naming the store."""
    try:
        yield
    except sa.exc.DatabaseError as error:
        # Subclasses such as IntegrityError are bugs or races to raise as they are.
        if not isinstance(error, sa.exc.OperationalError) and type(error) is not sa.exc.DatabaseError:
            raise
        reason = str(error.orig).strip().splitlines()[0] if error.orig is not None else type(error).__name__
        raise StateError(
            f"cannot use the state store at {where}: {reason}",
            hint="Check that the database is running and that `state:` in personas.yaml points at it.",
        ) from None
