"""Redis, sql_table and file destinations, and the engine over a PostgreSQL warehouse."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone

import redis
import sqlalchemy as sa

from reconciler.destinations.options import SyncOptions

from .harness import Workspace, record_of

AUDIENCE = """
apiVersion: personas/v1
kind: Audience
metadata: {{name: vip}}
spec:
  include: {{event: Order Completed}}
  destinations:
    - {{destination: out, identifier: user_id, traits: [plan]}}
---
apiVersion: personas/v1
kind: Trait
metadata: {{name: plan}}
spec: {{type: identify, trait: plan, value_type: string}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: out}}
spec:
{destination}
"""


def make(workspace, destination):
    workspace.write_specs(AUDIENCE.format(destination=destination))
    workspace.apply()
    workspace.prepare()


def test_redis_exits_touch_only_what_personas_added(workspace, redis_url, redis_prefix):
    """A member added by hand stays; one exit is sent, then nothing."""
    make(workspace, f"  type: redis\n  url: {redis_url}\n  key_prefix: '{redis_prefix}'")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.sadd(f"{redis_prefix}audience:vip", "u_manual")
    subjects = workspace.users(2)
    workspace.set_members("vip", subjects)
    workspace.sync()
    assert client.smembers(f"{redis_prefix}audience:vip") == {"u_manual", "u_1", "u_2"}
    assert client.smembers(f"{redis_prefix}member:u_1") == {"vip"}

    workspace.set_members("vip", subjects[:1])
    record = record_of(workspace.sync(), "vip", "out")
    assert (record.entered, record.exited, record.acknowledged) == (0, 1, 1)
    assert client.smembers(f"{redis_prefix}audience:vip") == {"u_manual", "u_1"}
    assert not client.exists(f"{redis_prefix}member:u_2")

    record = record_of(workspace.sync(), "vip", "out")
    assert (record.entered, record.exited, record.sent) == (0, 0, 0)
    assert client.smembers(f"{redis_prefix}audience:vip") == {"u_manual", "u_1"}


def test_redis_mirror_keeps_hand_added_members(workspace, redis_url, redis_prefix):
    make(workspace, f"  type: redis\n  url: {redis_url}\n  key_prefix: '{redis_prefix}'\n  mode: mirror")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.sadd(f"{redis_prefix}audience:vip", "u_manual")
    subjects = workspace.users(2)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", [])
    workspace.sync()
    assert client.smembers(f"{redis_prefix}audience:vip") == {"u_manual"}


def test_redis_unreachable_leaves_changes_pending(workspace):
    make(workspace, "  type: redis\n  url: redis://127.0.0.1:1/0")
    workspace.set_members("vip", workspace.users(1))
    record = record_of(workspace.sync(), "vip", "out")
    assert record.status == "pending"
    assert record.acknowledged == 0
    assert workspace.query("SELECT count(*) FROM personas_sync_outbox WHERE status = 'pending'") == [(1,)]


def test_sql_table_holds_exactly_the_membership(workspace, postgres_url):
    make(workspace, f"  type: sql_table\n  url: {postgres_url}\n  table: vip_members")
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.set_trait("plan", "p_1", "gold")
    workspace.sync()
    engine = sa.create_engine(postgres_url)
    query = "SELECT audience, identifier_type, identifier_value, traits FROM vip_members ORDER BY identifier_value"
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(sa.text(query))] == [
            ("vip", "user_id", "u_1", {"plan": "gold"}),
            ("vip", "user_id", "u_2", {"plan": None}),
            ("vip", "user_id", "u_3", {"plan": None}),
        ]
        nullable = connection.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'vip_members' AND is_nullable = 'YES'")).all()
        assert nullable == []

    workspace.set_members("vip", subjects[1:])
    record = record_of(workspace.sync(), "vip", "out")
    assert record.exited == 1
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT identifier_value FROM vip_members ORDER BY 1")).scalars().all() == ["u_2", "u_3"]

    # Rows deleted by hand come back with a full resync.
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM vip_members"))
    workspace.sync(SyncOptions(full_resync=("vip",)))
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT identifier_value FROM vip_members ORDER BY 1")).scalars().all() == ["u_2", "u_3"]
    engine.dispose()


def test_file_outputs_a_snapshot_and_a_changes_file_per_run(workspace, tmp_path):
    folder = tmp_path / "out"
    make(workspace, f"  type: file\n  path: {folder}")
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.sync(run_id="r1")
    workspace.set_members("vip", subjects[:2])
    workspace.sync(run_id="r2")
    workspace.sync(run_id="r3")

    assert sorted(os.listdir(folder)) == ["vip.changes.r1.csv", "vip.changes.r2.csv", "vip.csv"]
    with (folder / "vip.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["identifier_type"], r["identifier_value"]) for r in rows] == [("user_id", "u_1"), ("user_id", "u_2")]
    with (folder / "vip.changes.r2.csv").open() as stream:
        changes = list(csv.DictReader(stream))
    assert [(c["type"], c["identifier_value"], c["traits"]) for c in changes] == [("exited", "u_3", "{}")]
    assert len(changes[0]["idempotency_key"]) == 32


def test_file_times_are_run_as_of(workspace, tmp_path):
    """A change's `at` and a member's `entered_at` are the evaluation time of the run, not the time of writing."""
    folder = tmp_path / "out"
    make(workspace, f"  type: file\n  path: {folder}")
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects[:2])
    workspace.sync(run_id="r1", as_of=datetime(1998, 7, 1, tzinfo=timezone.utc))
    workspace.set_members("vip", subjects)
    workspace.sync(run_id="r2", as_of=datetime(1998, 8, 1, 12, tzinfo=timezone.utc))

    with (folder / "vip.csv").open() as stream:
        members = [(r["identifier_value"], r["entered_at"]) for r in csv.DictReader(stream)]
    assert members == [("u_1", "1998-07-01T00:00:00.000Z"), ("u_2", "1998-07-01T00:00:00.000Z"),
                       ("u_3", "1998-08-01T12:00:00.000Z")]
    with (folder / "vip.changes.r1.csv").open() as stream:
        assert {c["at"] for c in csv.DictReader(stream)} == {"1998-07-01T00:00:00.000Z"}
    with (folder / "vip.changes.r2.csv").open() as stream:
        assert [(c["identifier_value"], c["at"]) for c in csv.DictReader(stream)] == [("u_3", "1998-08-01T12:00:00.000Z")]


def test_file_jsonl_lines_carry_the_webhook_change_shape(workspace, tmp_path):
    folder = tmp_path / "out"
    make(workspace, f"  type: file\n  path: {folder}\n  format: jsonl")
    workspace.set_members("vip", workspace.users(1))
    workspace.set_trait("plan", "p_1", "gold")
    workspace.sync(run_id="r1")
    line = json.loads((folder / "vip.changes.r1.jsonl").read_text())
    assert line["identifier"] == {"type": "user_id", "value": "u_1"}
    assert line["traits"] == {"plan": "gold"}
    assert json.loads((folder / "vip.jsonl").read_text())["identifier"]["value"] == "u_1"


def test_file_write_failure_leaves_no_partial_file_and_keeps_changes_pending(workspace, tmp_path):
    folder = tmp_path / "out"
    make(workspace, f"  type: file\n  path: {folder}")
    workspace.set_members("vip", workspace.users(2))
    workspace.sync(run_id="r1")
    before = (folder / "vip.csv").read_bytes()
    workspace.set_members("vip", workspace.users(3))
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # running as root: permissions do not stop writes
            (folder / "vip.changes.r2.csv").mkdir()
        record = record_of(workspace.sync(run_id="r2"), "vip", "out")
    finally:
        folder.chmod(0o700)
    assert record.status in ("pending", "failed")
    assert record.acknowledged == 0
    assert (folder / "vip.csv").read_bytes() == before
    assert [name for name in os.listdir(folder) if name.endswith(".tmp")] == []
    if (folder / "vip.changes.r2.csv").is_dir():
        (folder / "vip.changes.r2.csv").rmdir()
    record = record_of(workspace.sync(run_id="r3"), "vip", "out")
    assert record.acknowledged == 1
    assert "u_3" in (folder / "vip.changes.r3.csv").read_text()


def test_sync_over_a_postgresql_warehouse(tmp_path, postgres_url, receiver):
    workspace = Workspace(tmp_path / "pg", warehouse_url=postgres_url)
    make(workspace, f"  type: webhook\n  url: '{receiver.url}'\n  max_removals: {{share: 50%, at_least: 1}}")
    subjects = workspace.users(4)
    workspace.set_members("vip", subjects)
    workspace.set_trait("plan", "p_2", "gold")
    assert record_of(workspace.sync(), "vip", "out").acknowledged == 4
    workspace.set_members("vip", subjects[:1])
    record = record_of(workspace.sync(), "vip", "out")
    assert (record.exited, record.held_back) == (3, 3)
    record = record_of(workspace.sync(SyncOptions(approve_removals=("vip:out",))), "vip", "out")
    assert (record.exited, record.acknowledged) == (3, 3)
    assert record_of(workspace.sync(), "vip", "out").sent == 0
    assert workspace.query("SELECT identifier_value FROM personas_sync_snapshots") == [("u_1",)]


def test_renamed_audience_moves_its_redis_sets(workspace, redis_url, redis_prefix):
    make(workspace, f"  type: redis\n  url: {redis_url}\n  key_prefix: '{redis_prefix}'")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.sadd(f"{redis_prefix}audience:vip", "u_manual")
    workspace.set_members("vip", workspace.users(2))
    workspace.sync()
    text = (workspace.root / "resources.yaml").read_text().replace("metadata: {name: vip}", "metadata: {name: top, previous_names: [vip]}")
    (workspace.root / "resources.yaml").write_text(text)
    workspace.apply()

    record = record_of(workspace.sync(), "top", "out")
    assert (record.entered, record.exited, record.sent) == (0, 0, 0)
    assert not client.exists(f"{redis_prefix}audience:vip")
    assert client.smembers(f"{redis_prefix}audience:top") == {"u_manual", "u_1", "u_2"}
    assert client.smembers(f"{redis_prefix}member:u_1") == {"top"}
    workspace.set_members("top", workspace.users(1))
    record = record_of(workspace.sync(), "top", "out")
    assert record.exited == 1
    assert client.smembers(f"{redis_prefix}audience:top") == {"u_manual", "u_1"}
