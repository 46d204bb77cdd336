"""`personas preview` computes from the specs on disk and stores nothing; estimates use the same path."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from reconciler.engine.estimate import estimate_sizes
from reconciler.project import load_project
from tests.engine_compute.project_helpers import SPECS, apply, ingest, order, personas, write_project

MESSAGES = [
    order("m1", "u1", "2024-03-01T00:00:00Z", 30),
    order("m2", "u1", "2024-03-02T00:00:00Z", "25.5"),
    order("m3", "u2", "2024-03-03T00:00:00Z", "abc"),
]


@pytest.fixture(params=["duckdb", "postgresql"])
def project_dir(request, tmp_path):
    url = "duckdb:///.personas/warehouse.duckdb" if request.param == "duckdb" else request.getfixturevalue("postgres_url")
    root = write_project(tmp_path / "project", url)
    ingest(root, MESSAGES)
    return root


def table_rows(root) -> dict[str, int]:
    """Row counts of every table in the warehouse."""
    from reconciler.engine.warehouse import open_warehouse, table_names

    with open_warehouse(load_project(root)) as warehouse:
        with warehouse.engine.connect() as connection:
            names = sorted(table_names(connection))
            return {name: connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one() for name in names}


def profile_of(root, user_id: str) -> str:
    from reconciler.engine.warehouse import open_warehouse

    with open_warehouse(load_project(root)) as warehouse:
        ids = warehouse.identifiers()
        with warehouse.engine.connect() as connection:
            return connection.execute(sa.select(ids.c.profile_id).where(ids.c.identifier_value == user_id)).scalar_one()


def test_audience_preview_stores_nothing(project_dir):
    before = table_rows(project_dir)
    result = personas(project_dir, "preview", "audience.big_buyers", "--as-of", "2024-04-01", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "address": "audience.big_buyers", "as_of": "2024-04-01T00:00:00Z", "size": 1, "holdout_size": 0,
        "sample": [profile_of(project_dir, "u1")],
    }
    assert table_rows(project_dir) == before


def test_trait_preview_reports_coverage(project_dir):
    before = table_rows(project_dir)
    result = personas(project_dir, "preview", "trait.ltv", "--as-of", "2024-04-01", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "address": "trait.ltv", "as_of": "2024-04-01T00:00:00Z", "coverage": 1, "candidates": 2, "invalid": 1,
        "sample": [{"subject_id": profile_of(project_dir, "u1"), "value": "55.5"}],
    }
    text = personas(project_dir, "preview", "trait.ltv", "--as-of", "2024-04-01")
    assert text.stdout.splitlines() == [
        "trait.ltv at as_of 2024-04-01T00:00:00Z",
        "  coverage: 1 of 2 candidates",
        "  invalid values skipped: 1",
        f"    {profile_of(project_dir, 'u1')}: 55.5",
    ]
    assert table_rows(project_dir) == before


def test_preview_unknown_address_fails(project_dir):
    result = personas(project_dir, "preview", "audience.nope")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == "Error: audience.nope is not a trait or audience of this project"


def test_estimate_sizes_before_and_after(tmp_path):
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb")
    ingest(root, MESSAGES)
    apply(root)
    assert personas(root, "run", "--as-of", "2024-04-01", "--no-sync").exit_code == 0
    # Lower the threshold of big_buyers from 50 to 0 and add a new audience.
    (root / "specs.yaml").write_text(SPECS.replace("gte: 50", "gte: 0") + """---
apiVersion: personas/v1
kind: Audience
metadata: {name: everyone}
spec:
  include: {event: Order Completed}
""")
    from reconciler.plan.service import make_plan, open_state, read_state

    project = load_project(root)
    store = open_state(project)
    plan, _ = make_plan(project, store, read_state(store))
    store.close()
    from datetime import datetime, timezone

    sizes = estimate_sizes(project, plan, as_of=datetime(2024, 4, 1, tzinfo=timezone.utc))
    assert sizes == {"audience.big_buyers": (1, 1), "audience.everyone": (None, 2)}


BROKEN_SQL_TRAIT = """
---
apiVersion: personas/v1
kind: Trait
metadata: {name: churn_score}
spec:
  type: sql
  query: "SELECT user_id, score FROM no_such_scores WHERE ts < :as_of"
  identifier: user_id
  value_type: number
"""


def test_preview_ignores_unrelated_broken_sql_trait(tmp_path):
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb", SPECS + BROKEN_SQL_TRAIT)
    ingest(root, MESSAGES)

    result = personas(root, "preview", "trait.ltv", "--as-of", "2024-04-01", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["coverage"] == 1


def test_preview_of_broken_sql_trait_names_the_table(tmp_path):
    root = write_project(tmp_path / "project", "duckdb:///.personas/warehouse.duckdb", SPECS + BROKEN_SQL_TRAIT)
    ingest(root, MESSAGES)

    result = personas(root, "preview", "trait.churn_score", "--as-of", "2024-04-01")

    assert result.exit_code == 1
    assert "no_such_scores" in result.stderr
    assert "Traceback" not in result.stderr
