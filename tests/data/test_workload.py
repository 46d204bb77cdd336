"""The benchmark workload: valid specs covering every kind, and hand-written SQL that agrees with personas."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from pydantic import TypeAdapter
from ruamel.yaml import YAML

from reconciler.spec.models import CONDITION_KINDS, TRAIT_TYPES, Resource
from .helpers import REPOSITORY, run_script

BENCHMARKS = REPOSITORY / "benchmarks"


def _load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


workload = _load_module("workload")


def _documents(text: str) -> list:
    yaml = YAML(typ="safe")
    yaml.version = (1, 2)
    adapter = TypeAdapter(Resource)
    return [adapter.validate_python(document) for document in yaml.load_all(text)]


def _condition_kinds(condition, found: set[str]) -> None:
    data = condition.model_dump(by_alias=True, exclude_none=True) if hasattr(condition, "model_dump") else condition
    if isinstance(data, dict):
        found.update(key for key in data if key in CONDITION_KINDS)
        for value in data.values():
            _condition_kinds(value, found)
    elif isinstance(data, list):
        for value in data:
            _condition_kinds(value, found)


def test_workload_has_twenty_of_each():
    assert len(_documents(workload.TRAITS_YAML)) == 20
    assert len(_documents(workload.AUDIENCES_YAML)) == 20


def test_workload_covers_every_trait_type():
    types = {trait.spec.type for trait in _documents(workload.TRAITS_YAML)}
    assert types == set(TRAIT_TYPES)


def test_workload_covers_condition_kinds():
    found: set[str] = set()
    for audience in _documents(workload.AUDIENCES_YAML):
        _condition_kinds(audience.spec.include, found)
        if audience.spec.exclude is not None:
            _condition_kinds(audience.spec.exclude, found)
    assert {"event", "trait", "audience", "sequence", "all", "any", "not", "any_user"} <= found


def test_workload_hand_sql_names_match_specs():
    assert sorted(workload.HAND_TRAITS) == sorted(trait.name for trait in _documents(workload.TRAITS_YAML))
    assert sorted(workload.HAND_AUDIENCES) == sorted(audience.name for audience in _documents(workload.AUDIENCES_YAML))


@pytest.mark.slow
def test_hand_sql_agrees_with_personas(tmp_path):
    """personas and the hand-written SQL compute the same values and members on generated events."""
    engine = _load_module("engine")
    events = tmp_path / "events.jsonl.gz"
    project = tmp_path / "project"
    assert run_script(BENCHMARKS / "generate_events.py", "--events", 2000, "--out", events, "--seed", 3).returncode == 0
    engine.write_project(project, "1GB", 1)

    for name, command in (
        ("ingest", [str(engine.PERSONAS), "--project", str(project), "ingest", "--no-resolve", str(events)]),
        ("identity", [sys.executable, "-c", engine.IDENTITY_CHILD, str(project)]),
        ("apply", [str(engine.PERSONAS), "--project", str(project), "apply", "--auto-approve"]),
        ("run", [str(engine.PERSONAS), "--project", str(project), "run", "--no-sync"]),
    ):
        step = engine.measure(name, command, project)
        assert step.exit_code == 0, f"{name}: {step.note}"
    database = project / ".personas" / "warehouse.duckdb"
    engine.run_hand_sql(database, "1GB", 1)

    rows = engine.compare(database)

    assert len(rows) == 40
    for row in rows:
        assert "error" not in row, row
        assert row["personas"] == row["hand"], row
        assert row["differing"] == 0, row
    assert any(row["personas"] > 0 for row in rows if row["kind"] == "audience")
