"""The Project object: loading a valid project, resolving URLs and paths, the specs hash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.project import Project, check_project, iter_resource_files, load_project
from reconciler.spec.diagnostics import SourceLocation

from .conftest import AUDIENCE, SECRETS, TRAITS


def test_valid_project_loads_every_resource_sorted_by_address(write_project):
    project = load_project(write_project(), env=SECRETS)

    assert isinstance(project, Project)
    assert [r.address for r in project.resources] == [
        "audience.winback", "destination.crm", "trait.country", "trait.email_opt_in", "trait.orders_90d",
    ]
    assert sorted(project.traits) == ["country", "email_opt_in", "orders_90d"]
    assert list(project.audiences) == ["winback"]
    assert list(project.destinations) == ["crm"]
    assert project.resource("trait.country").spec.value_type == "string"
    assert project.resource("trait.nothing") is None
    assert project.warnings == []
    assert project.settings.name == "shop"


def test_source_of_gives_file_and_document_line(write_project):
    project = load_project(write_project(), env=SECRETS)

    assert project.source_of("trait.orders_90d") == SourceLocation("traits/traits.yaml", 1)
    assert project.source_of("trait.email_opt_in") == SourceLocation("traits/traits.yaml", 11)
    assert project.source_of("trait.country") == SourceLocation("traits/traits.yaml", 20)
    assert project.source_of("audience.missing") is None


def test_unset_variables_are_warnings(write_project):
    project = load_project(write_project(), env={"CRM_TOKEN": "x"})

    [warning] = project.warnings
    assert (warning.severity, warning.code, warning.file, warning.line, warning.path) == (
        "warning", "unset-variable", "destinations/crm.yaml", 9, "spec.signing_secret",
    )
    assert warning.message == "environment variable CRM_SIGNING_SECRET is not set"


def test_invalid_project_raises_spec_error_listing_every_problem(write_project):
    root = write_project({
        "traits/bad.yaml": "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: bad}\nspec: {type: event_counter, evnt: X}\n",
        "audiences/bad.yaml": "apiVersion: personas/v1\nkind: Audience\nmetadata: {name: Bad}\nspec: {include: {event: X}}\n",
    })

    with pytest.raises(SpecError) as raised:
        load_project(root, env=SECRETS)

    error = raised.value
    assert [(d.file, d.code) for d in error.diagnostics] == [("audiences/bad.yaml", "invalid-name"), ("traits/bad.yaml", "unknown-key")]
    assert error.message.splitlines()[0] == "the project has 2 errors:"
    assert "traits/bad.yaml:4:29: error[unknown-key] spec.evnt: unknown key `evnt`" in error.message
    assert error.hint == "Fix them, then run `personas validate` to check."


def test_missing_project_file_is_one_clear_error(tmp_path):
    with pytest.raises(SpecError) as raised:
        load_project(tmp_path)

    assert raised.value.message == f"no personas.yaml in {tmp_path.resolve()}"
    assert raised.value.hint == "Run `personas init DIR` to create a project, or pass `--project DIR` to point at one."


def test_dot_folders_are_not_resources(write_project):
    junk = "not: [valid\n"
    root = write_project({".github/workflows/ci.yml": junk, ".personas/x.yaml": junk, "traits/.hidden.yaml": junk, "README.md": junk})

    files = [relative for _, relative in iter_resource_files(root)]

    assert files == ["audiences/winback.yaml", "destinations/crm.yaml", "traits/traits.yaml"]
    assert check_project(root, env=SECRETS).valid


def test_yml_files_are_read_too(write_project):
    root = write_project({"traits/traits.yaml": None, "traits/traits.yml": TRAITS})

    assert sorted(load_project(root, env=SECRETS).traits) == ["country", "email_opt_in", "orders_90d"]


# --------------------------------------------------------------------------- URLs and paths


@pytest.fixture
def project(write_project) -> Project:
    return load_project(write_project(), env=SECRETS)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///.personas/state.db", "sqlite:///{root}/.personas/state.db"),
        ("duckdb:///data/w.duckdb", "duckdb:///{root}/data/w.duckdb"),
        ("sqlite+pysqlite:///state.db?timeout=5", "sqlite+pysqlite:///{root}/state.db?timeout=5"),
        ("sqlite:////var/lib/state.db", "sqlite:////var/lib/state.db"),
        ("duckdb:///:memory:", "duckdb:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql+psycopg://app@127.0.0.1/db", "postgresql+psycopg://app@127.0.0.1/db"),
    ],
)
def test_resolve_url_anchors_relative_files(project, url, expected):
    assert project.resolve_url(url, env={}) == expected.format(root=project.root.as_posix())


def test_resolve_url_substitutes_variables_and_defaults(project):
    env = {"PW": "s3cret"}

    assert project.resolve_url("postgresql://app:${PW}@db/x", env=env) == "postgresql://app:s3cret@db/x"
    assert project.resolve_url("${STATE_URL:-sqlite:///s.db}", env={}) == f"sqlite:///{project.root.as_posix()}/s.db"


def test_resolve_url_unset_variable_fails(project):
    with pytest.raises(SpecError, match="environment variable PW is not set"):
        project.resolve_url("postgresql://app:${PW}@db/x", env={})


def test_resolve_path_is_relative_to_the_project_folder(project):
    assert project.resolve_path("out/audiences") == project.root / "out/audiences"
    assert project.resolve_path("/tmp/abs") == Path("/tmp/abs")
    assert project.resolve_path("~/exports") == Path.home() / "exports"
    assert project.resolve_path("${OUT}") == project.root / "${OUT}"


# --------------------------------------------------------------------------- specs hash


def test_specs_hash_ignores_formatting(write_project):
    reordered = AUDIENCE.replace("traits: [orders_90d, country]", "traits: [country, orders_90d]").replace(
        "  holdout: 10%\n", ""
    ).replace("spec:\n", "spec:\n  holdout: '10%'\n", 1)
    first = load_project(write_project(), env=SECRETS)
    second = load_project(write_project({"audiences/winback.yaml": "# a comment\n" + reordered}), env=SECRETS)

    assert len(first.specs_hash) == 64
    assert first.specs_hash == second.specs_hash


def test_specs_hash_changes_when_a_spec_changes(write_project):
    first = load_project(write_project(), env=SECRETS)
    second = load_project(write_project({"traits/traits.yaml": TRAITS.replace("window: 90d", "window: 60d")}), env=SECRETS)

    assert first.specs_hash != second.specs_hash


def test_validate_does_not_import_heavy_modules(write_project):
    root = write_project()
    code = (
        "import sys\n"
        "from reconciler.cli import main\n"
        "try:\n"
        f"    main(['validate', '--project', {str(root)!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('sqlalchemy', 'duckdb', 'httpx', 'redis', 'jsonschema') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )

    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert output.splitlines()[-1] == "heavy: []"
