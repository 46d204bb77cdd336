"""The warehouse connection: DuckDB settings, the busy file, personas' tables and relations."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.engine.warehouse import open_warehouse, table_names
from reconciler.errors import WarehouseBusyError, WarehouseError
from reconciler.spec.settings import ProjectSettings

from .conftest import ProjectForTests

HOLD_FILE = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def duckdb_project(tmp_path: Path, **settings) -> ProjectForTests:
    values = {"version": 1, "name": "test", "warehouse": "duckdb:///data/warehouse.duckdb", **settings}
    return ProjectForTests(root=tmp_path, settings=ProjectSettings.model_validate(values))


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Start a process that opens the DuckDB file and keeps it for `seconds`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_duckdb_settings_from_runtime(tmp_path):
    project = duckdb_project(tmp_path, runtime={"duckdb": {"memory_limit": "512MB", "threads": 1, "temp_directory": "spill"}})

    with open_warehouse(project) as warehouse, warehouse.engine.connect() as connection:
        settings = connection.execute(
            sa.text("SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')")
        ).one()

    assert settings[0] in ("512.0 MiB", "488.2 MiB")  # DuckDB reports 512MB in binary units
    assert settings[1] == 1
    assert settings[2] == str(tmp_path / "spill")
    assert (tmp_path / "data" / "warehouse.duckdb").exists()


def test_busy_duckdb_file_names_holder(tmp_path):
    project = duckdb_project(tmp_path, runtime={"warehouse_busy_timeout": "1s"})
    holder = hold(tmp_path / "data" / "warehouse.duckdb", 30)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusyError) as raised:
            with open_warehouse(project):
                pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()

    assert f"is held by process {holder.pid}; waited 1s" in raised.value.message
    assert "warehouse_busy_timeout" in raised.value.hint
    assert 1 <= waited < 10


def test_busy_duckdb_file_opens_after_holder_exits(tmp_path):
    project = duckdb_project(tmp_path, runtime={"warehouse_busy_timeout": "30s"})
    holder = hold(tmp_path / "data" / "warehouse.duckdb", 1)
    try:
        with open_warehouse(project) as warehouse:
            warehouse.ensure_schema()
    finally:
        holder.kill()
        holder.wait()


def test_busy_duckdb_file_logs_one_waiting_line(tmp_path, caplog):
    project = duckdb_project(tmp_path, runtime={"warehouse_busy_timeout": "30s"})
    holder = hold(tmp_path / "data" / "warehouse.duckdb", 1.5)
    try:
        with caplog.at_level(logging.WARNING, logger="reconciler.engine.warehouse"):
            with open_warehouse(project):
                pass
    finally:
        holder.kill()
        holder.wait()

    assert [record.getMessage() for record in caplog.records] == [
        f"waiting for the warehouse file data/warehouse.duckdb, held by pid {holder.pid} "
        "(up to 30s; set runtime.warehouse_busy_timeout)"
    ]


def test_duckdb_file_released_after_block(tmp_path):
    project = duckdb_project(tmp_path)
    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()

    holder = hold(tmp_path / "data" / "warehouse.duckdb", 0)
    holder.wait()
    assert holder.returncode == 0


def test_ensure_schema_creates_tables_once(project):
    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
        with warehouse.engine.connect() as connection:
            names = table_names(connection)

    assert {table.name for table in layout.metadata.sorted_tables} <= names


def test_relations_have_documented_columns(project):
    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
        columns = {
            name: list(getattr(warehouse, name)().c.keys()) for name in ("events", "profiles", "identifiers", "account_users")
        }
        with warehouse.engine.connect() as connection:
            for name in columns:
                connection.execute(sa.select(getattr(warehouse, name)()))

    assert columns == {
        "events": ["message_id", "type", "event", "timestamp", "profile_id", "group_id", "properties", "traits", "context"],
        "profiles": ["profile_id", "first_seen"],
        "identifiers": ["profile_id", "identifier_type", "identifier_value", "last_seen"],
        "account_users": ["account_id", "profile_id"],
    }


def test_unreachable_postgresql_fails_clearly(tmp_path):
    project = duckdb_project(tmp_path, warehouse="postgresql+psycopg://nobody:secret@127.0.0.1:1/none")

    with pytest.raises(WarehouseError) as raised:
        with open_warehouse(project):
            pass

    assert raised.value.message.startswith("cannot connect to the warehouse postgresql+psycopg://nobody:***@127.0.0.1:1/none")
    assert "secret" not in raised.value.message


def test_warehouse_url_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_WAREHOUSE_FILE", str(tmp_path / "from_env.duckdb"))
    project = duckdb_project(tmp_path, warehouse="duckdb:///${TEST_WAREHOUSE_FILE}")

    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()

    assert os.path.exists(tmp_path / "from_env.duckdb")


def test_url_without_installed_driver_fails_clearly(tmp_path):
    project = duckdb_project(tmp_path, warehouse="postgresql+nodriver://user@127.0.0.1/db")

    with pytest.raises(WarehouseError) as raised:
        with open_warehouse(project):
            pass

    assert raised.value.message.startswith("cannot use the warehouse URL postgresql+nodriver://user@127.0.0.1/db: ")
    assert "postgresql+psycopg://" in raised.value.hint
