"""`personas profile delete`: the person's values end up nowhere personas keeps or sends data."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import _run

ALICE = ("alice_1", "alice@example.com", "anon-alice")
BOB = ("bob_1", "bob@example.com", "anon-bob")

MESSAGES = [
    {"type": "identify", "messageId": "m1", "userId": "alice_1", "anonymousId": "anon-alice",
     "traits": {"email": "alice@example.com", "plan": "gold"}, "timestamp": "2024-03-01T00:00:00Z"},
    {"type": "track", "messageId": "m2", "userId": "alice_1", "event": "Order Completed",
     "properties": {"total": 10}, "timestamp": "2024-03-02T00:00:00Z"},
    {"type": "identify", "messageId": "m3", "userId": "bob_1", "anonymousId": "anon-bob",
     "traits": {"email": "bob@example.com", "plan": "silver"}, "timestamp": "2024-03-01T00:00:00Z"},
    {"type": "track", "messageId": "m4", "userId": "bob_1", "event": "Order Completed",
     "properties": {"total": 20}, "timestamp": "2024-03-03T00:00:00Z"},
]

SPECS = """
apiVersion: personas/v1
kind: Trait
metadata: {{name: plan}}
spec: {{type: identify, trait: plan, value_type: string}}
---
apiVersion: personas/v1
kind: Audience
metadata: {{name: buyers}}
spec:
  include: {{event: Order Completed}}
  destinations:
    - {{destination: hook, identifier: email, traits: [plan]}}
    - {{destination: cache, identifier: user_id}}
    - {{destination: table, identifier: email, traits: [plan]}}
    - {{destination: files, identifier: user_id, traits: [plan]}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: hook}}
spec: {{type: webhook, url: "{url}", mode: add_only}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: cache}}
spec: {{type: redis, url: "{redis_url}", key_prefix: "{prefix}"}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: table}}
spec: {{type: sql_table, url: "{table_url}", table: buyers}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: files}}
spec: {{type: file, path: out, format: jsonl}}
"""


def invoke(project: Path, *args: str) -> str:
    """Run the CLI in-process with its real exit codes; returns stdout and stderr."""
    runner = CliRunner()
    with runner.isolation() as streams:
        code = _run(["--project", str(project), *args], debug=False)
        output = streams[0].getvalue().decode() + streams[1].getvalue().decode()
    assert code == 0, output
    return output


def text_values(engine: sa.Engine) -> list[str]:
    """Every text value of every table, JSON as text."""
    found: list[str] = []
    with engine.connect() as connection:
        tables = connection.execute(sa.text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema NOT IN "
            "('information_schema', 'pg_catalog') ORDER BY 1")).all()
        for table, column in tables:
            rows = connection.execute(sa.text(f'SELECT CAST("{column}" AS TEXT) FROM "{table}"')).scalars()
            found.extend(value for value in rows if value is not None)
    return found


def sqlite_text(path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{path}")
    found = []
    with engine.connect() as connection:
        for (table,) in connection.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")):
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                found.extend(str(value) for value in row if value is not None)
    engine.dispose()
    return found


@pytest.mark.parametrize("warehouse", ["duckdb", "postgresql"])
def test_profile_delete_leaves_no_trace(tmp_path, receiver, redis_url, redis_prefix, postgres_url, warehouse):
    project = tmp_path / "project"
    project.mkdir()
    warehouse_line = f"warehouse: {postgres_url}\n" if warehouse == "postgresql" else ""
    (project / "personas.yaml").write_text(f"version: 1\nname: erase\n{warehouse_line}as_of: 2024-04-01T00:00:00Z\n")
    (project / "specs.yaml").write_text(textwrap.dedent(SPECS.format(
        url=receiver.url, redis_url=redis_url, prefix=redis_prefix, table_url=postgres_url)))
    lines = [json.dumps(message) for message in MESSAGES] + ['{"type": "track", "userId": "alice_1", "event": ', "not json: alice@example.com"]
    (project / "events.jsonl").write_text("\n".join(lines) + "\n")

    invoke(project, "apply", "--auto-approve")
    invoke(project, "ingest", str(project / "events.jsonl"))
    invoke(project, "run")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.smembers(f"{redis_prefix}audience:buyers") == {"alice_1", "bob_1"}
    assert receiver.holdings() == {"buyers": {"alice@example.com", "bob@example.com"}}

    if warehouse == "postgresql":
        engine = sa.create_engine(postgres_url)
    else:
        engine = sa.create_engine(f"duckdb:///{project / '.personas' / 'warehouse.duckdb'}")
    assert sum("alice@example.com" in text for text in text_values(engine)) > 3
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM personas_quarantine")).scalar_one() == 2
    engine.dispose()

    output = invoke(project, "profile", "delete", "alice@example.com", "--yes")
    assert "alice" not in output

    # The warehouse and the state hold no value of Alice's, but Bob is intact.
    if warehouse == "postgresql":
        engine = sa.create_engine(postgres_url)
    else:
        engine = sa.create_engine(f"duckdb:///{project / '.personas' / 'warehouse.duckdb'}")
    values = text_values(engine)
    engine.dispose()
    state = sqlite_text(project / ".personas" / "state.db")
    for value in ALICE:
        assert not [text for text in values + state if value in text], value
    assert any("bob@example.com" in text for text in values)

    # Destinations: Redis keys and members, the SQL table, the webhook receiver, the files.
    keys = list(client.scan_iter(match=f"{redis_prefix}*"))
    members = [member for key in keys for member in client.smembers(key)]
    assert not [text for text in keys + members if any(value in text for value in ALICE)]
    assert client.smembers(f"{redis_prefix}audience:buyers") == {"bob_1"}
    table = sa.create_engine(postgres_url)
    with table.connect() as connection:
        assert connection.execute(sa.text("SELECT identifier_value FROM buyers")).scalars().all() == ["bob@example.com"]
    table.dispose()
    assert receiver.holdings() == {"buyers": {"bob@example.com"}}
    for path in (project / "out").iterdir():
        assert not any(value in path.read_text() for value in ALICE), path.name

    # A new message carrying an erased identifier is dropped at ingest.
    (project / "again.jsonl").write_text(json.dumps({
        "type": "track", "messageId": "m9", "userId": "alice_1", "event": "Order Completed",
        "timestamp": "2024-03-05T00:00:00Z"}) + "\n")
    invoke(project, "ingest", str(project / "again.jsonl"))
    invoke(project, "run")
    assert client.smembers(f"{redis_prefix}audience:buyers") == {"bob_1"}
