"""A tiny warehouse per test, on DuckDB and on PostgreSQL, with the events contract's columns.

Events are given as dicts with their profile already resolved, so the
compiler is tested apart from identity resolution:

    {"id": "m1", "at": "2024-03-01T00:00:00Z", "profile": "p1", "event": "Order Completed",
     "properties": {"revenue": 10}}

`type` defaults to track (identify when `traits` is given without `event`),
`group` sets group_id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.dialects import postgresql

from reconciler.engine.compiler import Context, Relations, audience_select, trait_values_select
from reconciler.spec.models import Resource, parse_timestamp

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def build_tables(metadata: sa.MetaData) -> Relations:
    events = sa.Table(
        "t_events", metadata,
        sa.Column("message_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("event", sa.Text),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("profile_id", sa.Text),
        sa.Column("group_id", sa.Text),
        sa.Column("properties", JSONType),
        sa.Column("traits", JSONType),
        sa.Column("context", JSONType),
    )
    profiles = sa.Table(
        "t_profiles", metadata, sa.Column("profile_id", sa.Text), sa.Column("first_seen", sa.DateTime)
    )
    identifiers = sa.Table(
        "t_identifiers", metadata,
        sa.Column("profile_id", sa.Text), sa.Column("identifier_type", sa.Text),
        sa.Column("identifier_value", sa.Text), sa.Column("last_seen", sa.DateTime),
    )
    account_users = sa.Table(
        "t_account_users", metadata,
        sa.Column("account_id", sa.Text), sa.Column("profile_id", sa.Text), sa.Column("first_seen", sa.DateTime),
    )
    return Relations(events=events, profiles=profiles, identifiers=identifiers, account_users=account_users)


def naive(text: str) -> datetime:
    return parse_timestamp(text).replace(tzinfo=None)


def resource(kind: str, name: str, **spec: Any):
    """A Trait or Audience model from keyword spec fields, validated as the loader would."""
    document = {"apiVersion": "personas/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return TypeAdapter(Resource).validate_python(document)


def trait(name: str, **spec: Any):
    return resource("Trait", name, **spec)


def audience(name: str, **spec: Any):
    return resource("Audience", name, **spec)


@dataclass
class TestWarehouse:
    engine: sa.Engine
    dialect: str
    relations: Relations
    metadata: sa.MetaData

    def load(self, events: list[dict], identifiers: list[tuple[str, str, str]] = ()) -> None:
        """Replace the tables' rows: events, the profiles they imply, identifiers (profile, type, value)."""
        rows = [self._row(item) for item in events]
        first_seen: dict[str, datetime] = {}
        account_users: dict[tuple[str, str], datetime] = {}
        for row in rows:
            if row["profile_id"]:
                first_seen[row["profile_id"]] = min(row["timestamp"], first_seen.get(row["profile_id"], row["timestamp"]))
            if row["type"] == "group" and row["profile_id"] and row["group_id"]:
                key = (row["group_id"], row["profile_id"])
                account_users[key] = min(row["timestamp"], account_users.get(key, row["timestamp"]))
        r = self.relations
        with self.engine.begin() as connection:
            for table in (r.events, r.profiles, r.identifiers, r.account_users):
                connection.execute(table.delete())
            if rows:
                connection.execute(r.events.insert(), rows)
            if first_seen:
                connection.execute(r.profiles.insert(), [{"profile_id": p, "first_seen": t} for p, t in first_seen.items()])
            if account_users:
                connection.execute(
                    r.account_users.insert(),
                    [{"account_id": a, "profile_id": p, "first_seen": t} for (a, p), t in account_users.items()],
                )
            if identifiers:
                connection.execute(
                    r.identifiers.insert(),
                    [
                        {"profile_id": p, "identifier_type": t, "identifier_value": v, "last_seen": naive("2024-01-01")}
                        for p, t, v in identifiers
                    ],
                )

    @staticmethod
    def _row(item: dict) -> dict:
        kind = item.get("type") or ("identify" if "traits" in item and "event" not in item else "track")
        return {
            "message_id": item["id"],
            "type": kind,
            "event": item.get("event"),
            "timestamp": naive(item["at"]),
            "profile_id": item.get("profile"),
            "group_id": item.get("group"),
            "properties": item.get("properties", {}),
            "traits": item.get("traits", {}),
            "context": {},
        }

    def context(self, as_of: str, resources: list = (), **kwargs: Any) -> Context:
        traits = {r.name: r for r in resources if r.kind == "Trait"}
        audiences = {r.name: r for r in resources if r.kind == "Audience"}
        return Context(relations=self.relations, as_of=naive(as_of), traits=traits, audiences=audiences, **kwargs)

    def values(self, subject: Any, as_of: str, others: list = ()) -> dict[str, Any]:
        """subject_id -> value of one trait, computed inline."""
        ctx = self.context(as_of, [subject, *others])
        with self.engine.connect() as connection:
            rows = connection.execute(trait_values_select(ctx, subject)).all()
        return {row.subject_id: _plain(row.value) for row in rows}

    def members(self, subject: Any, as_of: str, others: list = (), holdout: bool = False):
        """The member ids of an audience (with their holdout flags when asked)."""
        ctx = self.context(as_of, [subject, *others])
        with self.engine.connect() as connection:
            rows = connection.execute(audience_select(ctx, subject)).all()
        if holdout:
            return {row.subject_id: bool(row.holdout) for row in rows}
        return {row.subject_id for row in rows}


def _plain(value: Any) -> Any:
    """JSON list values come back as text on some drivers; read them as lists."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


@pytest.fixture(params=["duckdb", "postgresql"])
def warehouse(request, tmp_path) -> TestWarehouse:
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    relations = build_tables(metadata)
    metadata.create_all(engine)
    try:
        yield TestWarehouse(engine=engine, dialect=request.param, relations=relations, metadata=metadata)
    finally:
        engine.dispose()
