"""Locks in the state store: `state` for applies, `run` for runs.

PostgreSQL holds a session advisory lock on a connection of its own, keyed
by the state's lineage and the lock name, so a holder that dies releases it
with its connection. A row in `locks` names the holder for messages; on
PostgreSQL that row is only informational and the next holder replaces it.

SQLite has no session locks, so the row itself is the lock: the primary key
on the name makes a second insert fail. A row left by a process that died
on this host is cleared automatically; one from another host needs
`personas force-unlock`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from reconciler.errors import LockError, StateError
from reconciler.state import tables
from reconciler.state.records import LockInfo, current_host, current_user, utc_now
from reconciler.state.rows import as_utc

log = logging.getLogger(__name__)

# Seconds between attempts while waiting for a lock.
POLL_INTERVAL = 0.2


def advisory_key(lineage: str, name: str) -> int:
    """Derive the signed 64-bit PostgreSQL advisory lock key of a lock from the lineage and lock name."""
    digest = hashlib.sha256(f"personas:{lineage}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def new_lock_info(name: str, operation: str) -> LockInfo:
    user, host = current_user(), current_host()
    return LockInfo(
        id=str(uuid.uuid4()),
        name=name,
        holder=f"{user}@{host}",
        operation=operation,
        host=host,
        pid=os.getpid(),
        since=utc_now().replace(microsecond=0),
    )


def lock_error(name: str, holder: LockInfo | None, timeout: float = 0.0) -> LockError:
    """Build the error for a lock still held after waiting `timeout` seconds (0: no wait)."""
    subject = "the state is locked" if name == "state" else f"the {name} lock is held"
    waited = f" (still held after waiting {timeout:g}s)" if timeout > 0 else ""
    wait_advice = "wait longer with a larger --lock-timeout" if timeout > 0 else "pass --lock-timeout to wait for it"
    if holder is None:
        return LockError(
            f"{subject} by another session that has not recorded its details{waited}",
            hint=f"Wait and retry, or {wait_advice}.",
        )
    return LockError(
        f"{subject} by {holder.describe()}; lock id {holder.id}{waited}",
        holder={field: getattr(holder, field) for field in ("id", "name", "holder", "operation", "host", "pid")}
        | {"since": holder.since.isoformat()},
        hint=(
            f"Wait and retry, {wait_advice}, or run "
            f"`personas force-unlock {holder.id}` if that process is gone."
        ),
    )


def read_lock(connection: sa.Connection, name: str | None = None, lock_id: str | None = None) -> LockInfo | None:
    query = sa.select(tables.locks)
    query = query.where(tables.locks.c.name == name) if name else query.where(tables.locks.c.id == lock_id)
    row = connection.execute(query).mappings().first()
    if row is None:
        return None
    return LockInfo(**{**row, "since": as_utc(row["since"])})


def insert_lock(connection: sa.Connection, info: LockInfo) -> None:
    values = {field: getattr(info, field) for field in ("id", "name", "holder", "operation", "host", "pid", "since")}
    connection.execute(sa.insert(tables.locks).values(values))


def wait_for(attempt: Callable[[], bool], timeout: float) -> bool:
    """Call `attempt` until it returns True or `timeout` seconds pass; 0 means one try."""
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        if attempt():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(remaining, POLL_INTERVAL * (0.5 + random.random())))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SqliteLock:
    """The lock row is the lock."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @contextmanager
    def hold(self, name: str, operation: str, timeout: float) -> Iterator[LockInfo]:
        info = new_lock_info(name, operation)
        if not wait_for(lambda: self._try_insert(info), timeout):
            with self.engine.connect() as connection:
                raise lock_error(name, read_lock(connection, name=name), timeout)
        log.debug("took the %s lock %s", name, info.id)
        try:
            yield info
        finally:
            with self.engine.begin() as connection:
                connection.execute(sa.delete(tables.locks).where(tables.locks.c.id == info.id))
            log.debug("released the %s lock %s", name, info.id)

    def _try_insert(self, info: LockInfo) -> bool:
        with self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection, connection.begin():
            held = read_lock(connection, name=info.name)
            if held is not None and held.host == info.host and not process_alive(held.pid):
                log.warning("cleared the %s lock %s left by %s, which no longer runs", held.name, held.id, held.describe())
                connection.execute(sa.delete(tables.locks).where(tables.locks.c.id == held.id))
                held = None
            if held is not None:
                return False
            insert_lock(connection, info)
            return True

    def force_unlock(self, lock_id: str) -> tuple[LockInfo, bool]:
        """Delete the lock row; returns it and False, since no session holds a SQLite lock."""
        with self.engine.begin() as connection:
            held = read_lock(connection, lock_id=lock_id)
            if held is None:
                raise missing_lock(lock_id)
            connection.execute(sa.delete(tables.locks).where(tables.locks.c.id == lock_id))
        return held, False


class PostgresLock:
    """A session advisory lock on its own connection, plus an informational row."""

    def __init__(self, engine: sa.Engine, lock_engine: sa.Engine, lineage: Callable[[], str]) -> None:
        self.engine = engine
        self.lock_engine = lock_engine
        self.lineage = lineage

    @contextmanager
    def hold(self, name: str, operation: str, timeout: float) -> Iterator[LockInfo]:
        info = new_lock_info(name, operation)
        key = advisory_key(self.lineage(), name)
        session = self.lock_engine.connect()
        try:
            try_lock = sa.text("SELECT pg_try_advisory_lock(:key)")
            if not wait_for(lambda: bool(session.execute(try_lock, {"key": key}).scalar()), timeout):
                with self.engine.connect() as connection:
                    raise lock_error(name, read_lock(connection, name=name), timeout)
            self._record(info)
            log.debug("took the %s lock %s", name, info.id)
            try:
                yield info
            finally:
                with self.engine.begin() as connection:
                    connection.execute(sa.delete(tables.locks).where(tables.locks.c.id == info.id))
                _unlock(session, key, info)
        finally:
            # Closing the session releases the advisory lock even when a step above failed.
            session.close()

    def _record(self, info: LockInfo) -> None:
        # Whatever row is there belongs to a session that is gone, since this one holds the lock now.
        with self.engine.begin() as connection:
            connection.execute(sa.delete(tables.locks).where(tables.locks.c.name == info.name))
            insert_lock(connection, info)

    def force_unlock(self, lock_id: str) -> tuple[LockInfo, bool]:
        """Delete the lock row and end the database session holding the lock, if any.

        Returns the lock removed and whether a live session was ended.
        """
        with self.engine.begin() as connection:
            held = read_lock(connection, lock_id=lock_id)
            if held is None:
                raise missing_lock(lock_id)
            key = advisory_key(self.lineage(), held.name)
            ended = bool(connection.execute(_TERMINATE_HOLDER, _key_parts(key)).scalar())
            connection.execute(sa.delete(tables.locks).where(tables.locks.c.id == lock_id))
        return held, ended


def _unlock(session: sa.Connection, key: int, info: LockInfo) -> None:
    try:
        session.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except sa.exc.DBAPIError as error:
        # `personas force-unlock` ends the holder's session; the lock is gone with it.
        log.warning("the session holding the %s lock %s had already ended: %s", info.name, info.id, error.orig)
        return
    log.debug("released the %s lock %s", info.name, info.id)


# Advisory locks on a bigint key show in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
_TERMINATE_HOLDER = sa.text(
    "SELECT bool_or(pg_terminate_backend(pid)) FROM pg_locks "
    "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
    "AND classid::bigint = CAST(:classid AS bigint) AND objid::bigint = CAST(:objid AS bigint) "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _key_parts(key: int) -> dict[str, int]:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return {"classid": unsigned >> 32, "objid": unsigned & 0xFFFFFFFF}


def missing_lock(lock_id: str) -> StateError:
    return StateError(
        f"no lock with id {lock_id} is held",
        hint="It may have been released already; the id is shown in the message of the command that found the state locked.",
    )
