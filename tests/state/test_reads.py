"""Reads have no side effects: planning must never create or change the state."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler.errors import StateError
from reconciler.state import open_store

from .helpers import V1_TABLES, V2_TABLES, apply, change, dump_tables


def read_everything(store) -> None:
    store.exists()
    store.check_schema()
    store.read()
    store.history()
    store.history("audience.vip")
    store.audit_log()
    store.tombstones()
    store.runs()
    store.syncs()
    store.last_success("audience.vip")


def test_reading_missing_sqlite_file_creates_nothing(tmp_path):
    folder = tmp_path / "project" / ".personas"

    with open_store(f"sqlite:///{folder}/state.db") as store:
        read_everything(store)
        snapshot = store.read()

    assert (snapshot.lineage, snapshot.serial, snapshot.resources, snapshot.identity) == (None, 0, {}, None)
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_reading_empty_postgres_database_creates_no_table(postgres_url):
    with open_store(postgres_url) as store:
        read_everything(store)
        assert not store.exists()

    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        assert sa.inspect(connection).get_table_names() == []
    engine.dispose()


def test_reading_store_changes_no_row(state_url):
    with open_store(state_url) as store:
        apply(store, change("create", "audience.vip", size=1))
        apply(store, change("delete", "audience.vip"))
    before = dump_tables(state_url, V1_TABLES + V2_TABLES)

    with open_store(state_url) as store:
        read_everything(store)

    assert dump_tables(state_url, V1_TABLES + V2_TABLES) == before


def test_reading_sqlite_store_leaves_file_untouched(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as store:
        apply(store, change("create", "audience.vip", size=1))
    path = Path(tmp_path / "state.db")
    digest, mtime = hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns
    time.sleep(0.05)

    with open_store(url) as store:
        read_everything(store)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert os.stat(path).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_unreachable_postgres_raises_state_error():
    with open_store("postgresql+psycopg://personas:pw_FAKE@127.0.0.1:1/state") as store:
        with pytest.raises(StateError) as caught:
            store.read()

    assert caught.value.message.startswith("cannot use the state store at postgresql+psycopg://personas:***@127.0.0.1:1/state: ")
    assert "pw_FAKE" not in caught.value.message
    assert caught.value.hint == "Check that the database is running and that `state:` in personas.yaml points at it."


def test_file_that_is_not_sqlite_raises_state_error(tmp_path):
    path = tmp_path / "state.db"
    path.write_text("not a database\n")

    with open_store(f"sqlite:///{path}") as store:
        with pytest.raises(StateError, match=f"^cannot use the state store at {path}: file is not a database$"):
            store.read()


def test_unsupported_url_is_rejected():
    with pytest.raises(StateError, match="must be SQLite or PostgreSQL, not mysql"):
        open_store("mysql://user@127.0.0.1/state")
    with pytest.raises(StateError, match="needs a SQLite file"):
        open_store("sqlite://")
