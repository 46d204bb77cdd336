"""The JSON Schemas agree with the models, and the checked-in copies are current."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from reconciler.spec.models import RESOURCE_KINDS
from reconciler.spec.schema import build_schemas, stale_schemas
from reconciler.spec.settings import ProjectSettings

from .helpers import REPO, documents, example_files, run_cli

REGENERATE = "Regenerate them with `personas schema --out schemas` from the repository root, and commit the result."


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft202012Validator]:
    return {item.filename: Draft202012Validator(item.schema) for item in build_schemas()}


def schema_errors(validator: Draft202012Validator, data: object) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(data)]


def model_accepts(data: object, project_file: bool) -> bool:
    try:
        if project_file:
            ProjectSettings.model_validate(data)
        else:
            RESOURCE_KINDS[data["kind"]].model_validate(data)  # type: ignore[index]
    except (ValidationError, KeyError, TypeError):
        return False
    return True


VALID_TRAIT = {
    "apiVersion": "personas/v1",
    "kind": "Trait",
    "metadata": {"name": "ltv_365d", "labels": {"tier": "core"}},
    "spec": {
        "type": "aggregation",
        "event": "Order Completed",
        "where": [{"property": "revenue", "gt": 0}],
        "window": {"from": "365d"},
        "function": "sum",
        "property": "revenue",
    },
}
VALID_AUDIENCE = {
    "apiVersion": "personas/v1",
    "kind": "Audience",
    "metadata": {"name": "winback", "description": ""},
    "spec": {
        "include": {
            "all": [
                {"event": "Order Completed", "window": {"from": "120d", "to": "45d"}, "count": {"gte": 1}},
                {"not": {"event": "Order Completed", "window": "45d"}},
                {"trait": "email_opt_in", "equals": True},
                {"sequence": [{"event": "Product Viewed"}, {"event": "Order Completed", "within": "2d"}]},
            ]
        },
        "exclude": {"any": [{"audience": "recent_complainers"}, {"event": "Refund", "count": 0}]},
        "holdout": "10%",
        "refresh": "0 6 * * *",
        "destinations": [{"destination": "crm", "identifier": "email", "traits": ["ltv_365d"]}],
    },
}
VALID_DESTINATION = {
    "apiVersion": "personas/v1",
    "kind": "Destination",
    "metadata": {"name": "crm"},
    "spec": {
        "type": "webhook",
        "url": "https://hooks.example.com/audiences",
        "headers": {"Authorization": "Bearer ${CRM_TOKEN}"},
        "max_rate": "20/s",
        "max_removals": {"share": "20%", "at_least": 10},
        "consent": ["marketing_email"],
    },
}


def test_checked_in_schemas_are_current():
    stale = stale_schemas(REPO / "schemas")
    assert not stale, f"out of date: {[path.name for path in stale]}. {REGENERATE}"


def test_every_schema_is_valid_draft_2020_12():
    for item in build_schemas():
        assert item.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(item.schema)


def test_generation_is_deterministic():
    assert [item.render() for item in build_schemas()] == [item.render() for item in build_schemas()]


def test_set_like_lists_carry_the_set_marker():
    audience = json.loads((REPO / "schemas" / "audience.schema.json").read_text())
    spec = audience["$defs"]["AudienceSpec"]["properties"]
    assert spec["destinations"]["x-personas-set"] is True
    assert audience["$defs"]["AllCondition"]["properties"]["all"]["x-personas-set"] is True
    assert "x-personas-set" not in audience["$defs"]["SequenceCondition"]["properties"]["sequence"]
    project = json.loads((REPO / "schemas" / "project.schema.json").read_text())
    assert "x-personas-set" not in project["$defs"]["IdentityRules"]["properties"]["identifiers"]
    assert project["$defs"]["IdentityRules"]["properties"]["blocked_values"]["x-personas-set"] is True


def test_every_mapping_rejects_unknown_keys():
    def check(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("type") == "object" and "allOf" not in node:
                assert node.get("additionalProperties") is False, where
            for key, value in node.items():
                check(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                check(value, f"{where}/{index}")

    for item in build_schemas():
        check(item.schema, item.filename)


@pytest.mark.parametrize("document", [VALID_TRAIT, VALID_AUDIENCE, VALID_DESTINATION], ids=["trait", "audience", "destination"])
def test_schema_accepts_valid_documents_of_each_kind(validators, document):
    assert model_accepts(document, project_file=False)
    kind_file = f"{document['kind'].lower()}.schema.json"
    assert schema_errors(validators[kind_file], document) == []
    assert schema_errors(validators["resource.schema.json"], document) == []


def test_kind_schema_rejects_another_kind(validators):
    assert schema_errors(validators["trait.schema.json"], VALID_AUDIENCE)


def mutated(document: dict, path: list, value: object = None, *, delete: bool = False) -> dict:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


INVALID = {
    "unknown key in a condition": mutated(VALID_AUDIENCE, ["spec", "include", "all", 1, "not", "windw"], "45d"),
    "unknown key in metadata": mutated(VALID_TRAIT, ["metadata", "ownr"], "growth"),
    "unknown top-level key": mutated(VALID_TRAIT, ["status"], {}),
    "duration without a unit": mutated(VALID_TRAIT, ["spec", "window"], "30"),
    "duration as a number": mutated(VALID_TRAIT, ["spec", "window"], 30),
    "calendar unit": mutated(VALID_TRAIT, ["spec", "window"], "1mo"),
    "unknown kind": mutated(VALID_TRAIT, ["kind"], "Segment"),
    "missing kind": mutated(VALID_TRAIT, ["kind"], delete=True),
    "wrong apiVersion": mutated(VALID_TRAIT, ["apiVersion"], "personas/v2"),
    "unknown trait type": mutated(VALID_TRAIT, ["spec", "type"], "average"),
    "aggregation without function": mutated(VALID_TRAIT, ["spec", "function"], delete=True),
    "name with capitals": mutated(VALID_TRAIT, ["metadata", "name"], "LTV"),
    "two operators": mutated(VALID_AUDIENCE, ["spec", "include", "all", 2, "gt"], 1),
    "no operator": mutated(VALID_AUDIENCE, ["spec", "include", "all", 2, "equals"], delete=True),
    "condition without a kind": mutated(VALID_AUDIENCE, ["spec", "exclude"], {"window": "30d"}),
    "negative count": mutated(VALID_AUDIENCE, ["spec", "include", "all", 0, "count"], -1),
    "empty count": mutated(VALID_AUDIENCE, ["spec", "include", "all", 0, "count"], {}),
    "holdout without percent sign": mutated(VALID_AUDIENCE, ["spec", "holdout"], "10"),
    "one-step sequence": mutated(VALID_AUDIENCE, ["spec", "include", "all", 3, "sequence"], [{"event": "A"}]),
    "unknown identifier_values": mutated(VALID_AUDIENCE, ["spec", "destinations", 0, "identifier_values"], "some"),
    "unknown destination type": mutated(VALID_DESTINATION, ["spec", "type"], "s3"),
    "webhook key on a file destination": mutated(mutated(VALID_DESTINATION, ["spec", "type"], "file"), ["spec", "path"], "out"),
    "rate without unit": mutated(VALID_DESTINATION, ["spec", "max_rate"], "20"),
    "batch size zero": mutated(VALID_DESTINATION, ["spec", "batch_size"], 0),
    "labels as a list": mutated(VALID_TRAIT, ["metadata", "labels"], ["core"]),
}


@pytest.mark.parametrize("document", list(INVALID.values()), ids=list(INVALID))
def test_schema_rejects_what_the_models_reject(validators, document):
    assert not model_accepts(document, project_file=False)
    assert schema_errors(validators["resource.schema.json"], document)


def test_unknown_key_error_location(validators):
    errors = schema_errors(validators["resource.schema.json"], INVALID["unknown key in a condition"])
    assert "$.spec.include.all[1].not: Additional properties are not allowed ('windw' was unexpected)" in errors


PROJECT = {
    "version": 1,
    "name": "acme",
    "warehouse": "${PERSONAS_WAREHOUSE_URL:-duckdb:///.personas/warehouse.duckdb}",
    "as_of": "1998-07-01",
    "identity": {
        "identifiers": [{"type": "user_id", "limit": 1}, {"type": "email", "normalize": "email", "from": ["traits.email"]}],
        "blocked_patterns": ["^[0-]+$"],
    },
    "defaults": {"refresh": "1h"},
    "runtime": {"duckdb": {"threads": 2}, "daemon": {"port": 0}},
}


def test_project_schema_accepts_a_full_project_file(validators):
    assert model_accepts(PROJECT, project_file=True)
    assert schema_errors(validators["project.schema.json"], PROJECT) == []
    with_time = {**PROJECT, "as_of": "2024-03-31T00:00:00Z"}
    assert model_accepts(with_time, project_file=True)
    assert schema_errors(validators["project.schema.json"], with_time) == []


@pytest.mark.parametrize(
    "change",
    [{"version": 2}, {"nmae": "acme"}, {"as_of": "yesterday"}, {"runtime": {"duckdb": {"threads": 0}}}, {"defaults": {"refresh": 3600}}],
    ids=["version 2", "misspelled key", "as_of not a time", "zero threads", "refresh as a number"],
)
def test_project_schema_rejects_what_the_model_rejects(validators, change):
    document = {**PROJECT, **change}
    assert not model_accepts(document, project_file=True)
    assert schema_errors(validators["project.schema.json"], document)


@pytest.mark.parametrize("path", example_files(), ids=lambda path: path.relative_to(REPO).as_posix())
def test_every_example_the_models_accept_the_schema_accepts(validators, path: Path):
    project_file = path.name == "personas.yaml"
    schema = "project.schema.json" if project_file else "resource.schema.json"
    for data in documents(path):
        if not model_accepts(data, project_file):
            continue  # deliberately invalid test input; the models have the last word
        assert schema_errors(validators[schema], data) == [], path


def test_example_files_include_the_init_templates():
    names = {path.relative_to(REPO).as_posix() for path in example_files()}
    assert "reconciler/templates/init/traits/orders_90d.yaml" in names


def test_schema_command_check_detects_stale_file(tmp_path: Path):
    out = str(tmp_path / "out")
    result = run_cli("schema", "--out", out)
    assert result.exit_code == 0, result.stderr
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == sorted(item.filename for item in build_schemas())
    assert run_cli("schema", "--check", "--out", out).exit_code == 0

    (tmp_path / "out" / "trait.schema.json").write_text("{}\n")
    result = run_cli("schema", "--check", "--out", out)
    assert result.exit_code == 1
    assert result.stdout == f"out of date: {out}/trait.schema.json\n"
    assert "Run `personas schema --out" in result.stderr
    assert (tmp_path / "out" / "trait.schema.json").read_text() == "{}\n"


def test_schema_command_defaults_to_the_project_schemas_folder(tmp_path: Path):
    result = run_cli("schema", "--project", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "schemas" / "resource.schema.json").is_file()
