"""`personas run` end to end: ingest, apply, run, then read the results tables."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from reconciler.engine.results import audience_members, membership_history, trait_values
from reconciler.engine.runner import execute_run
from reconciler.errors import LockError
from reconciler.project import load_project
from reconciler.state import open_store
from tests.engine_compute.project_helpers import SPECS, apply, ingest, order, personas, write_project

MESSAGES = [
    order("m1", "u1", "2024-03-01T00:00:00Z", 30),
    order("m2", "u1", "2024-03-02T00:00:00Z", "25.5"),
    order("m3", "u2", "2024-03-03T00:00:00Z", "abc"),
    order("m4", "u3", "2024-04-15T00:00:00Z", 100),  # after the first as_of
]


@pytest.fixture(params=["duckdb", "postgresql"])
def project_dir(request, tmp_path):
    if request.param == "duckdb":
        url = "duckdb:///.personas/warehouse.duckdb"
    else:
        url = request.getfixturevalue("postgres_url")
    root = write_project(tmp_path / "project", url)
    ingest(root, MESSAGES)
    apply(root)
    return root


def state(root):
    return open_store(f"sqlite:///{root}/.personas/state.db")


def read(root, query):
    from reconciler.engine.warehouse import open_warehouse

    with open_warehouse(load_project(root)) as warehouse:
        with warehouse.engine.connect() as connection:
            return connection.execute(query).all()


def user_ids(root) -> dict[str, str]:
    from reconciler.engine.warehouse import open_warehouse

    with open_warehouse(load_project(root)) as warehouse:
        identifiers = warehouse.identifiers()
        with warehouse.engine.connect() as connection:
            rows = connection.execute(sa.select(identifiers.c.profile_id, identifiers.c.identifier_value)).all()
    return {profile: value for profile, value in rows}


def test_run_writes_values_members_and_history(project_dir):
    result = personas(project_dir, "run", "--as-of", "2024-04-01T00:00:00Z", "--no-sync")
    assert result.exit_code == 0, result.output
    users = user_ids(project_dir)
    values = read(project_dir, sa.select(trait_values.c.trait, trait_values.c.subject_id, trait_values.c.value_number))
    assert {(t, users[s], v) for t, s, v in values} == {
        ("order_count", "u1", Decimal(2)), ("order_count", "u2", Decimal(1)),
        ("ltv", "u1", Decimal("55.5")),
    }
    members = read(project_dir, sa.select(audience_members.c.audience, audience_members.c.subject_id))
    assert {(a, users[s]) for a, s in members} == {("buyers", "u1"), ("buyers", "u2"), ("big_buyers", "u1")}
    # Durations vary: compare every line without its last cell.
    lines = [line.rsplit(None, 1)[0].split() for line in result.stdout.splitlines()[:5]]
    assert lines == [
        ["RESOURCE", "STATUS", "SIZE", "CHANGE"],
        ["trait.ltv", "ok", "1"],
        ["trait.order_count", "ok", "2"],
        ["audience.buyers", "ok", "2", "+2", "-0"],
        ["audience.big_buyers", "ok", "1", "+1", "-0"],
    ]
    assert result.stdout.splitlines()[5].startswith("Run ")
    assert result.stderr == "Warning: trait.ltv: 1 value that did not parse as a number was skipped\n"


def test_history_keeps_one_open_row(project_dir):
    assert personas(project_dir, "run", "--as-of", "2024-04-01T00:00:00Z", "--no-sync").exit_code == 0
    # u3 orders after the first as_of, so u3 enters on the second run and no member exits.
    second = personas(project_dir, "run", "--as-of", "2024-05-01T00:00:00Z", "--no-sync")
    assert second.exit_code == 0, second.output
    users = user_ids(project_dir)
    rows = read(project_dir, sa.select(membership_history).order_by(membership_history.c.entered_at))
    buyers_id = state(project_dir).read().resources["audience.buyers"].id
    buyers = [row for row in rows if row.audience_id == buyers_id]
    assert sorted((users[r.subject_id], r.entered_at, r.exited_at) for r in buyers) == [
        ("u1", datetime(2024, 4, 1), None), ("u2", datetime(2024, 4, 1), None), ("u3", datetime(2024, 5, 1), None),
    ]
    # An earlier as_of: u3 has not ordered yet and exits, keeping one closed row.
    third = personas(project_dir, "run", "--as-of", "2024-04-02T00:00:00Z", "--no-sync")
    assert third.exit_code == 0
    rows = read(project_dir, sa.select(membership_history).where(membership_history.c.audience_id == buyers_id))
    closed = [(users[r.subject_id], r.exited_at) for r in rows if r.exited_at is not None]
    assert closed == [("u3", datetime(2024, 4, 2))]
    assert len([r for r in rows if r.exited_at is None]) == 2


def test_failed_trait_skips_dependents(tmp_path):
    broken = SPECS + """---
apiVersion: personas/v1
kind: Trait
metadata: {name: score}
spec: {type: sql, identifier: user_id, value_type: number, query: "SELECT uid, score FROM missing_table"}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: scored}
spec:
  include: {trait: score, gt: 1}
"""
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb", broken)
    ingest(root, MESSAGES)
    apply(root)
    result = personas(root, "run", "--as-of", "2024-04-01T00:00:00Z", "--no-sync")
    assert result.exit_code == 3
    statuses = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:7]}
    assert statuses == {
        "trait.ltv": "ok", "trait.order_count": "ok", "trait.score": "failed",
        "audience.buyers": "ok", "audience.big_buyers": "ok", "audience.scored": "skipped",
    }
    assert "audience.scored: skipped: upstream trait.score failed" in result.stderr
    assert "trait.score: failed: Catalog Error: Table with name missing_table does not exist!" in result.stderr
    store = state(root)
    run = store.runs(limit=1)[0]
    assert run.status == "failed"
    recorded = {r.address: (r.status, r.size) for r in store.run_resources(run.run_id)}
    assert recorded["audience.buyers"] == ("ok", 2)
    assert recorded["audience.scored"] == ("skipped", None)


def test_select_computes_chosen_audience_only(tmp_path):
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb")
    ingest(root, MESSAGES)
    apply(root)
    result = personas(root, "run", "--as-of", "2024-04-01", "--select", "audience.big_buyers", "--no-sync")
    assert result.exit_code == 0, result.output
    assert [line.split()[:3] for line in result.stdout.splitlines()[1:2]] == [["audience.big_buyers", "ok", "1"]]
    assert read(root, sa.select(sa.func.count()).select_from(trait_values)) == [(0,)]
    with_upstream = personas(root, "run", "--as-of", "2024-04-01", "--select", "+audience.big_buyers", "--no-sync")
    assert [line.split()[0] for line in with_upstream.stdout.splitlines()[1:5]] == [
        "trait.ltv", "trait.order_count", "audience.buyers", "audience.big_buyers",
    ]


def test_run_lock_refuses_or_waits(tmp_path):
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb")
    ingest(root, MESSAGES)
    apply(root)
    project = load_project(root)
    holder = state(root)
    with holder.lock(name="run", operation="run"):
        refused = personas(root, "run", "--no-sync")
        assert refused.exit_code == 1
        assert "run" in refused.stderr
        assert "pid" in refused.stderr
        with pytest.raises(LockError):
            execute_run(project, state(root), None, [], sync=False)

    results = []

    def second_run():
        results.append(execute_run(project, state(root), None, [], sync=False, lock_timeout=30))

    lock = holder.lock(name="run", operation="run")
    lock.__enter__()
    waiter = threading.Thread(target=second_run)
    waiter.start()
    time.sleep(1.0)
    assert results == []  # still waiting for the lock
    lock.__exit__(None, None, None)
    waiter.join(timeout=60)
    assert len(results) == 1
    assert results[0].exit_code == 0


def test_run_syncs_computed_audiences_to_files(tmp_path):
    specs = SPECS.replace(
        "  include: {trait: order_count, gte: 1}\n",
        "  include: {trait: order_count, gte: 1}\n  destinations:\n    - {destination: exports, identifier: user_id}\n",
    ) + """---
apiVersion: personas/v1
kind: Destination
metadata: {name: exports}
spec: {type: file, path: exports, format: csv}
"""
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb", specs)
    ingest(root, MESSAGES)
    apply(root)
    result = personas(root, "run", "--as-of", "2024-04-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert "sync buyers -> exports: ok, sent 2 (entered 2, exited 0, updated 0)" in result.stdout.splitlines()
    snapshot = (root / "exports" / "buyers.csv").read_text()
    assert "u1" in snapshot
    assert "u2" in snapshot


def test_failed_audience_skips_dependents_only(tmp_path):
    broken = SPECS + """---
apiVersion: personas/v1
kind: Trait
metadata: {name: score}
spec: {type: sql, identifier: user_id, value_type: number, query: "SELECT uid, score FROM missing_table"}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: scored}
spec:
  include: {trait: score, gt: 1}
---
apiVersion: personas/v1
kind: Audience
metadata: {name: scored_buyers}
spec:
  include:
    all: [{audience: scored}, {audience: buyers}]
"""
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb", broken)
    ingest(root, MESSAGES)
    apply(root)
    # Only audiences are selected, so the broken trait is compiled inside audience.scored.
    result = personas(root, "run", "--as-of", "2024-04-01", "--select", "audience.*", "--no-sync")
    assert result.exit_code == 3
    statuses = [line.split()[:2] for line in result.stdout.splitlines()[1:5]]
    assert statuses == [
        ["audience.buyers", "ok"], ["audience.big_buyers", "ok"],
        ["audience.scored", "failed"], ["audience.scored_buyers", "skipped"],
    ]
    assert "audience.scored_buyers: skipped: upstream audience.scored failed" in result.stderr


def test_stale_postgres_statistics_are_refreshed(postgres_url):
    from reconciler.engine.results import refresh_statistics

    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE personas_demo (id INTEGER)"))
            connection.execute(sa.text("CREATE TABLE other_demo (id INTEGER)"))
            connection.execute(sa.text("INSERT INTO personas_demo SELECT generate_series(1, 5000)"))
        with engine.begin() as connection:
            assert refresh_statistics(connection) == ["personas_demo"]
        with engine.begin() as connection:
            assert refresh_statistics(connection) == []
    finally:
        engine.dispose()


def test_deleted_audience_members_exit_on_next_run(tmp_path):
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb")
    ingest(root, MESSAGES)
    apply(root)
    assert personas(root, "run", "--as-of", "2024-04-01", "--no-sync").exit_code == 0
    big_id = state(root).read().resources["audience.big_buyers"].id
    (root / "specs.yaml").write_text(SPECS.split("---\napiVersion: personas/v1\nkind: Audience\nmetadata: {name: big_buyers}")[0])
    apply(root)
    assert personas(root, "run", "--as-of", "2024-04-02", "--no-sync").exit_code == 0
    members = read(root, sa.select(audience_members.c.audience_id))
    assert big_id not in {row.audience_id for row in members}
    history = read(root, sa.select(membership_history).where(membership_history.c.audience_id == big_id))
    assert [(row.exited_at, row.exited_run is not None) for row in history] == [(datetime(2024, 4, 2), True)]


def test_two_runs_at_once_leave_one_open_row_each(tmp_path):
    import subprocess
    import sys

    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb")
    ingest(root, MESSAGES)
    apply(root)
    script = "from reconciler.cli import main; main()"
    command = [sys.executable, "-c", script, "--project", str(root), "run", "--as-of", "2024-04-01",
               "--no-sync", "--lock-timeout", "120s"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    rows = read(root, sa.select(membership_history.c.audience_id, membership_history.c.subject_id, membership_history.c.exited_at))
    open_rows = [(row.audience_id, row.subject_id) for row in rows if row.exited_at is None]
    assert len(open_rows) == 3  # buyers: u1, u2; big_buyers: u1
    assert len(set(open_rows)) == len(open_rows)
    assert len(state(root).runs()) == 2
