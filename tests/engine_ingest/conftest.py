"""Fixtures for ingest and identity tests: a project on DuckDB or PostgreSQL, message files."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.engine.ingest import IngestSummary, ingest_files
from reconciler.engine.warehouse import open_warehouse
from reconciler.spec.interpolation import interpolate
from reconciler.spec.settings import ProjectSettings


@dataclass
class ProjectForTests:
    """The part of reconciler.project.Project the engine reads: root, settings, resolve_url."""

    root: Path
    settings: ProjectSettings

    def resolve_url(self, text: str, env: dict[str, str] | None = None) -> str:
        url = interpolate(text, os.environ if env is None else env)
        prefix = "duckdb:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/") and ":memory:" not in url:
            url = prefix + str(self.root / url[len(prefix) :])
        return url


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse_url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/warehouse.duckdb"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def duckdb_url(tmp_path) -> str:
    return f"duckdb:///{tmp_path}/warehouse.duckdb"


@pytest.fixture
def make_project(tmp_path, warehouse_url):
    """Build a project on the test's warehouse; keyword arguments are personas.yaml keys."""

    def make(**settings: Any) -> ProjectForTests:
        values = {"version": 1, "name": "test", "warehouse": warehouse_url, **settings}
        return ProjectForTests(root=tmp_path, settings=ProjectSettings.model_validate(values))

    return make


@pytest.fixture
def project(make_project) -> ProjectForTests:
    return make_project()


def write_jsonl(path: Path, messages: list[Any], *, compress: bool = False) -> Path:
    """Write messages one per line; a str item is written as the raw line."""
    text = "".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in messages)
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return path


def ingest(project: ProjectForTests, *paths: Path, **options: Any) -> IngestSummary:
    with open_warehouse(project) as warehouse:
        return ingest_files(warehouse, list(paths), **options)


def query(project: ProjectForTests, build) -> list[tuple]:
    """Run `build(warehouse)` (a SQLAlchemy select) and return its rows as tuples."""
    with open_warehouse(project) as warehouse, warehouse.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(build(warehouse))]


def profile_of_users(project: ProjectForTests) -> dict[str, str]:
    """user_id -> canonical profile id."""
    return dict(identifier_profiles(project, "user_id"))


def identifier_profiles(project: ProjectForTests, identifier_type: str) -> list[tuple[str, str]]:
    """(value, canonical profile id) of one identifier type, sorted by value."""

    def build(warehouse):
        identifiers = warehouse.identifiers()
        return (
            sa.select(identifiers.c.identifier_value, identifiers.c.profile_id)
            .where(identifiers.c.identifier_type == identifier_type)
            .order_by(identifiers.c.identifier_value)
        )

    return query(project, build)


def message(kind: str, message_id: str, timestamp: str = "2024-01-01T00:00:00Z", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": message_id, "timestamp": timestamp, **fields}
