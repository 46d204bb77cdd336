"""`personas init`: a new project that validates, is formatted, and wires editors to the schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from reconciler.cli.commands.init import project_name

from .helpers import documents, run_cli

EXPECTED_FILES = [
    ".gitignore",
    "audiences/repeat_buyers.yaml",
    "destinations/exports.yaml",
    "personas.yaml",
    "schemas/audience.schema.json",
    "schemas/destination.schema.json",
    "schemas/project.schema.json",
    "schemas/resource.schema.json",
    "schemas/trait.schema.json",
    "traits/orders_90d.yaml",
]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    result = run_cli("init", "demo")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Created project demo in demo/:\n" + "".join(f"  {name}\n" for name in EXPECTED_FILES) + (
        "Next: cd demo && personas validate && personas plan\n"
    )
    return tmp_path / "demo"


def test_init_creates_exactly_the_listed_files(demo: Path):
    created = sorted(path.relative_to(demo).as_posix() for path in demo.rglob("*") if path.is_file())
    assert created == EXPECTED_FILES


def test_init_project_validates(demo: Path):
    for args in (["validate", "--project", "demo"], ["--project", "demo", "validate"]):
        result = run_cli(*args)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "Valid: 1 trait, 1 audience, 1 destination.\n"


def test_init_project_validates_without_warnings(demo: Path):
    result = run_cli("validate", "--json", "--project", "demo")
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["diagnostics"] == []


def test_init_project_is_already_formatted(demo: Path):
    result = run_cli("fmt", "--check", "--project", "demo")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_init_names_the_project_after_its_folder(demo: Path):
    assert re.search(r"^name: demo$", (demo / "personas.yaml").read_text(), re.MULTILINE)


def test_init_project_file_shows_the_default_urls(demo: Path):
    text = (demo / "personas.yaml").read_text()
    assert "warehouse: ${PERSONAS_WAREHOUSE_URL:-duckdb:///.personas/warehouse.duckdb}\n" in text
    assert "state: ${PERSONAS_STATE_URL:-sqlite:///.personas/state.db}\n" in text


def test_init_gitignore_entries(demo: Path):
    entries = [line for line in (demo / ".gitignore").read_text().splitlines() if line and not line.startswith("#")]
    assert entries == [".personas/", "exports/"]
    assert documents(demo / "destinations" / "exports.yaml")[0]["spec"]["path"] == "exports"


def test_init_schema_lines_resolve(demo: Path):
    for path in sorted(demo.rglob("*.yaml")):
        first_line = path.read_text().splitlines()[0]
        match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first_line)
        assert match, f"{path.name}: first line is {first_line!r}"
        schema_path = (path.parent / match.group(1)).resolve()
        assert schema_path.is_file(), f"{path.name} points at {match.group(1)}, which does not exist"
        kind = "project" if path.name == "personas.yaml" else documents(path)[0]["kind"].lower()
        assert schema_path.name == f"{kind}.schema.json"
        validator = Draft202012Validator(json.loads(schema_path.read_text()))
        for data in documents(path):
            assert [error.message for error in validator.iter_errors(data)] == [], path


def test_init_writes_current_schemas(demo: Path):
    assert run_cli("schema", "--check", "--out", str(demo / "schemas")).exit_code == 0


def test_init_rejects_nonempty_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine\n")
    result = run_cli("init", "taken")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: taken already exists and is not empty; init never overwrites files\n"
        "Choose a new or empty folder, such as `personas init my-project`.\n"
    )
    assert [path.name for path in (tmp_path / "taken").iterdir()] == ["notes.txt"]


def test_init_refuses_a_path_that_is_a_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    result = run_cli("init", "file")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Invalid value for 'DIRECTORY': Directory 'file' is a file.\n")


def test_init_accepts_an_empty_existing_folder(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert run_cli("init", "empty").exit_code == 0
    assert (tmp_path / "empty" / "personas.yaml").is_file()


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("demo", "demo"),
        ("My Project", "my-project"),
        ("acme_growth-2024", "acme_growth-2024"),
        ("2024 audiences", "personas-2024-audiences"),
        ("Ünïcode!!", "n-code"),
        ("___", "personas"),
        ("x" * 80, "x" * 63),
    ],
)
def test_project_name_follows_the_name_pattern(folder: str, expected: str):
    assert project_name(folder) == expected
    assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", project_name(folder))


def test_init_project_plans_three_creates(demo: Path):
    result = run_cli("plan", "--detailed-exitcode", "--project", "demo")
    assert result.exit_code == 2, result.stderr
    assert "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete, 0 to move." in result.stdout
