"""`sources:` mapping of a Segment-shaped schema, on DuckDB and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reconciler.engine.identity import profile_id_for, resolve
from reconciler.engine.warehouse import open_warehouse
from reconciler.errors import UsageError, WarehouseError

from .conftest import ingest, write_jsonl

SEGMENT_TABLES = """
CREATE SCHEMA segment;
CREATE TABLE segment.identifies (id TEXT, received_at {ts}, uuid_ts {ts}, user_id TEXT, anonymous_id TEXT,
    timestamp {ts}, context_library_name TEXT, email TEXT, plan TEXT);
CREATE TABLE segment.tracks (id TEXT, received_at {ts}, uuid_ts {ts}, user_id TEXT, anonymous_id TEXT,
    event TEXT, event_text TEXT, timestamp {ts}, context_traits_email TEXT);
CREATE TABLE segment.order_completed (id TEXT, received_at {ts}, uuid_ts {ts}, user_id TEXT, anonymous_id TEXT,
    event TEXT, event_text TEXT, timestamp {ts}, revenue DOUBLE PRECISION, currency TEXT);
CREATE TABLE segment.pages (id TEXT, received_at {ts}, uuid_ts {ts}, user_id TEXT, anonymous_id TEXT,
    timestamp {ts}, name TEXT, url TEXT);
CREATE TABLE segment.groups (id TEXT, received_at {ts}, uuid_ts {ts}, user_id TEXT, anonymous_id TEXT, group_id TEXT,
    timestamp {ts}, name TEXT, plan TEXT);
INSERT INTO segment.identifies VALUES
    ('i1', '2024-01-01 10:00:01', '2024-01-01 11:00:00', 'u_1', 'a-1', '2024-01-01 10:00:00', 'analytics.js', 'Jane@Example.com', 'pro');
INSERT INTO segment.tracks VALUES
    ('t1', '2024-01-01 08:00:01', '2024-01-01 09:00:00', NULL, 'a-1', 'order_completed', 'Order Completed', '2024-01-01 08:00:00', NULL),
    ('t2', '2024-01-01 11:30:01', '2024-01-01 12:00:00', NULL, 'a-2', 'signed_up', 'Signed Up', '2024-01-01 11:30:00', ' jane@example.com ');
INSERT INTO segment.order_completed VALUES
    ('t1', '2024-01-01 08:00:01', '2024-01-01 09:00:00', NULL, 'a-1', 'order_completed', 'Order Completed', '2024-01-01 08:00:00', 10.5, 'USD'),
    ('t1', '2024-01-01 08:00:01', '2024-01-02 09:00:00', NULL, 'a-1', 'order_completed', 'Order Completed', '2024-01-01 08:00:00', 10.5, 'USD');
INSERT INTO segment.pages VALUES
    ('pg1', '2024-01-01 08:30:01', '2024-01-01 09:00:00', NULL, 'a-1', '2024-01-01 08:30:00', 'Pricing', '/pricing');
INSERT INTO segment.groups VALUES
    ('g1', '2024-01-01 11:45:01', '2024-01-01 12:00:00', 'u_1', NULL, 'acme', '2024-01-01 11:45:00', 'Acme', 'enterprise');
"""


@pytest.fixture
def segment_project(make_project):
    project = make_project(sources={"format": "segment", "schema": "segment"})
    with open_warehouse(project) as warehouse:
        zoned = "TIMESTAMP WITH TIME ZONE" if warehouse.dialect == "postgresql" else "TIMESTAMP"
        with warehouse.engine.begin() as connection:
            for statement in SEGMENT_TABLES.format(ts=zoned).split(";"):
                if statement.strip():
                    connection.execute(sa.text(statement))
    return project


def events_by_id(warehouse) -> dict[str, dict]:
    events = warehouse.events()
    with warehouse.engine.connect() as connection:
        return {row.message_id: row._asdict() for row in connection.execute(sa.select(events))}


def test_segment_tables_map_to_events(segment_project):
    with open_warehouse(segment_project) as warehouse:
        events = events_by_id(warehouse)

    assert sorted(events) == ["g1", "i1", "pg1", "t1", "t2"]
    assert {key: events["t1"][key] for key in ("type", "event", "properties")} == {
        "type": "track", "event": "Order Completed", "properties": {"revenue": 10.5, "currency": "USD"},
    }
    assert (events["t2"]["event"], events["t2"]["properties"]) == ("Signed Up", None)
    assert events["t2"]["context"] == {"traits": {"email": " jane@example.com "}}
    assert (events["pg1"]["event"], events["pg1"]["properties"]) == ("Page Viewed", {"name": "Pricing", "url": "/pricing"})
    assert events["i1"]["traits"] == {"email": "Jane@Example.com", "plan": "pro"}
    assert events["i1"]["context"] == {"library": {"name": "analytics.js"}}
    assert (events["g1"]["group_id"], events["g1"]["traits"]) == ("acme", {"name": "Acme", "plan": "enterprise"})
    assert str(events["i1"]["timestamp"]) == "2024-01-01 10:00:00"


def test_resolution_reads_sources_by_load_time(segment_project):
    with open_warehouse(segment_project) as warehouse:
        summary = resolve(warehouse, segment_project.settings.identity)
        again = resolve(warehouse, segment_project.settings.identity)
        events = events_by_id(warehouse)
        with warehouse.engine.connect() as connection:
            accounts = connection.execute(sa.select(warehouse.account_users())).all()

    assert (summary.messages, summary.profiles_created, summary.merges, summary.unlinked) == (5, 1, 0, 0)
    assert again.messages == 0
    assert len({event["profile_id"] for event in events.values()}) == 1
    assert accounts == [("acme", events["i1"]["profile_id"])]


def test_ingest_rejects_sources_project(segment_project, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"type": "identify", "messageId": "m", "userId": "u", "timestamp": "2024-01-01"}])

    with pytest.raises(UsageError, match="reads events from `sources:` tables"):
        ingest(segment_project, path)


def test_sources_without_event_tables_fail(make_project):
    project = make_project(sources={"format": "rudderstack", "schema": "nothing_here"})

    with open_warehouse(project) as warehouse, pytest.raises(WarehouseError) as raised:
        warehouse.events()

    assert raised.value.message == "no rudderstack event tables found in nothing_here"


RUDDERSTACK_TABLES = """
CREATE SCHEMA rudder;
CREATE TABLE rudder.identifies (id TEXT, user_id TEXT, anonymous_id TEXT, timestamp TIMESTAMP, received_at TIMESTAMP,
    loaded_at TIMESTAMP, email TEXT);
CREATE TABLE rudder.tracks (id TEXT, user_id TEXT, anonymous_id TEXT, event TEXT, event_text TEXT, timestamp TIMESTAMP,
    received_at TIMESTAMP, loaded_at TIMESTAMP, context_traits_email TEXT);
INSERT INTO rudder.identifies VALUES
    ('r1', 'u_9', NULL, '2024-05-01 09:00:00', '2024-05-01 09:00:01', '2024-05-01 10:00:00', 'Sam@Example.com');
INSERT INTO rudder.tracks VALUES
    ('r2', NULL, 'anon-7', 'trial_started', 'Trial Started', '2024-05-01 08:00:00', '2024-05-01 08:00:01',
     '2024-05-01 11:00:00', 'sam@example.com');
"""


def test_rudderstack_tables_resolve_by_loaded_at(make_project):
    project = make_project(sources={"format": "rudderstack", "schema": "rudder"})
    with open_warehouse(project) as warehouse:
        with warehouse.engine.begin() as connection:
            for statement in RUDDERSTACK_TABLES.split(";"):
                if statement.strip():
                    connection.execute(sa.text(statement))
        summary = resolve(warehouse, project.settings.identity)
        events = events_by_id(warehouse)

    assert (summary.messages, summary.profiles_created, summary.merges) == (2, 1, 0)
    assert events["r2"]["event"] == "Trial Started"
    assert events["r2"]["profile_id"] == events["r1"]["profile_id"]
    # r2 happened first but was loaded later, so r1 created the profile.
    assert events["r1"]["profile_id"] == profile_id_for("r1")
