"""The standard-library reader of SQLite stores returns exactly what StateStore returns, and writes nothing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from reconciler.errors import StateError, StateSchemaError
from reconciler.state import AppliedChange, SyncRecord, open_reader, open_store
from reconciler.state.sqlite_read import SqliteReader, sqlite_file
from reconciler.state.store import StateStore

from .helpers import apply, build_version_1_store, change

AT = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)


def fill(url: str) -> None:
    """A store with creates, an update, a move, a delete, the identity, protection, secrets and syncs."""
    with open_store(url) as store:
        vip = change("create", "audience.vip", size=1, tags=["b", "a"], nested={"x": None})
        webhook = AppliedChange(
            action="create", address="destination.hook", kind="Destination", name="hook",
            spec={"spec": {"url": "${HOOK_URL}"}}, spec_hash="0" * 64, protected=True,
            source_file="destinations/hook.yaml", secret_hashes={"spec.url": "ab" * 32},
        )
        apply(store, vip, webhook, change("create", "trait.orders", window="30d"), change("create", "project.identity"))
        apply(store, change("update", "audience.vip", size=2), change("create", "audience.lapsed"))
        moved = AppliedChange(
            action="move", address="audience.churned", previous_address="audience.lapsed", kind="Audience",
            name="churned", spec={"spec": {}}, spec_hash="1" * 64, previous_names=["lapsed"],
        )
        apply(store, moved, change("delete", "trait.orders"))
        store.start_run("run-1", AT, ["audience.vip"])
        for destination, members, finished in (("hook", 10, AT), ("hook", 12, None), ("crm", 3, AT)):
            store.record_sync(SyncRecord(
                run_id="run-1", audience="vip", audience_id="id-vip", destination=destination,
                destination_id=f"id-{destination}", started_at=AT, finished_at=finished, status="ok",
                entered=members, members=members, error=None if finished else "timed out",
            ))
        store.finish_run("run-1", "ok", [])


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


def test_both_read_paths_return_identical_snapshots(url):
    fill(url)

    with open_store(url) as store, SqliteReader(sqlite_file(url)) as reader:
        expected, found = store.read(), reader.read()

    assert found == expected
    assert sorted(found.resources) == ["audience.churned", "audience.vip", "destination.hook"]
    assert found.identity is not None and found.identity.kind == "Identity"
    hook = found.resources["destination.hook"]
    assert (hook.protected, hook.secret_hashes, hook.applied_at.tzinfo) == (True, {"spec.url": "ab" * 32}, timezone.utc)
    assert found.resources["audience.churned"].previous_names == ["lapsed"]


def test_both_read_paths_return_identical_syncs_and_digests(url):
    fill(url)

    with open_store(url) as store, SqliteReader(sqlite_file(url)) as reader:
        for query in ({}, {"audience": "vip", "limit": None}, {"destination": "hook", "limit": None}, {"limit": 1}):
            assert reader.syncs(**query) == store.syncs(**query)
        assert reader.secret_digest("s3cret") == store.secret_digest("s3cret")
        assert (reader.exists(), reader.schema_version()) == (store.exists(), store.schema_version())

    assert [(s.destination, s.members) for s in reader.syncs(audience="vip", limit=None)] == [("crm", 3), ("hook", 12), ("hook", 10)]


def test_missing_file_reads_empty(tmp_path):
    reader = SqliteReader(tmp_path / "project" / ".personas" / "state.db")

    reader.check_schema()
    snapshot = reader.read()

    assert (snapshot.lineage, snapshot.serial, snapshot.resources, snapshot.identity) == (None, 0, {}, None)
    assert (reader.exists(), reader.syncs()) == (False, [])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StateError, match="is not initialised, so it has no key"):
        reader.secret_digest("s3cret")


def test_reader_leaves_the_file_untouched(url, tmp_path):
    fill(url)
    path = tmp_path / "state.db"
    digest, mtime = hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns
    time.sleep(0.05)

    with SqliteReader(path) as reader:
        reader.exists()
        reader.check_schema()
        reader.read()
        reader.syncs(limit=None)
        reader.secret_digest("s3cret")

    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert os.stat(path).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_older_schema_same_error(url):
    build_version_1_store(url)

    with open_store(url) as store, pytest.raises(StateSchemaError) as expected:
        store.check_schema()
    with pytest.raises(StateSchemaError) as found:
        SqliteReader(sqlite_file(url)).check_schema()

    assert (found.value.message, found.value.hint) == (expected.value.message, expected.value.hint)
    assert found.value.message.endswith("has schema version 1; this personas needs 2")
    assert SqliteReader(sqlite_file(url)).syncs() == []


def test_reader_takes_an_unknown_revision_as_newer(url, tmp_path):
    with open_store(url) as store:
        apply(store, change("create", "audience.vip"))
    with sqlite3.connect(tmp_path / "state.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
    connection.close()

    with pytest.raises(StateSchemaError, match=r"has schema version 3, newer than this personas supports \(2\)$"):
        SqliteReader(sqlite_file(url)).check_schema()


def test_non_database_file_same_error(tmp_path):
    path = tmp_path / "state.db"
    path.write_text("not a database\n")

    with pytest.raises(StateError) as caught:
        SqliteReader(path).read()

    assert caught.value.message == f"cannot use the state store at {path}: file is not a database"
    assert caught.value.hint == "Check that the database is running and that `state:` in personas.yaml points at it."


def test_only_plain_file_urls_use_sqlite3(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/a%20b/state.db") == Path(f"{tmp_path}/a b/state.db")
    assert sqlite_file("sqlite+pysqlite:////srv/state.db") == Path("/srv/state.db")
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:////srv/state.db?timeout=5", "postgresql+psycopg://u@h/db"):
        assert sqlite_file(url) is None

    assert isinstance(open_reader(f"sqlite:///{tmp_path}/state.db"), SqliteReader)
    fallback = open_reader(f"sqlite:///{tmp_path}/state.db?timeout=5")
    assert isinstance(fallback, StateStore)
    fallback.close()
    with pytest.raises(StateError, match="needs a SQLite file"):
        open_reader("sqlite://")



CRASHING_WRITER = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size = 1")  # spill changed pages to the file before the commit
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE meta SET serial = 99")
connection.execute("CREATE TABLE filler (text TEXT)")
connection.executemany("INSERT INTO filler VALUES (?)", [("x" * 200,)] * 5000)
os._exit(0)  # die inside the transaction, leaving its journal behind
"""


def test_reader_rolls_back_a_crashed_write(url, tmp_path):
    fill(url)
    with open_store(url) as store:
        before = store.read()
    subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(tmp_path / "state.db")], check=True)
    assert (tmp_path / "state.db-journal").exists()

    snapshot = SqliteReader(sqlite_file(url)).read()

    assert snapshot == before
    assert snapshot.serial == 3
    assert not (tmp_path / "state.db-journal").exists()
