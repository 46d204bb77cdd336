"""JSON Schema (draft 2020-12) of the spec language, generated from the pydantic models.

The models are the single source of truth. The schemas exist so that editors
(through a `# yaml-language-server: $schema=...` line) flag the same mistakes
as `personas validate`, and show each field's description while typing.
Generation is deterministic: the same models always give the same bytes, so
checked-in copies can be compared with a fresh build.

A schema cannot express every rule the models enforce (references between
resources, `between` bounds in order, a window reaching back further than it
ends); those stay with `personas validate`. What the schema does express it
expresses exactly as the models do: unknown keys are rejected, durations,
percentages and rates follow the same patterns, and discriminated unions
(`kind`, a trait's or destination's `type`) become `if`/`then` branches so
that an editor reports the error inside the right branch.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from reconciler.spec.models import OPERATORS, Audience, Condition, Destination, Resource, Trait
from reconciler.spec.settings import ProjectSettings

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Dates alone and timestamps with or without a zone, as parse_timestamp reads them.
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"

# Models that take exactly one operator. pydantic cannot express that rule in the schema.
_ONE_OPERATOR_MODELS = ("PropertyFilter", "TraitCondition")


@dataclass(frozen=True)
class SchemaFile:
    """One generated schema: its file name and its content."""

    filename: str
    title: str
    description: str
    schema: dict[str, Any]

    def render(self) -> str:
        """Return the file's text: two-space indented JSON with a final newline."""
        return json.dumps(self.schema, indent=2, ensure_ascii=False) + "\n"


class _Generator(GenerateJsonSchema):
    """Schema generator without the titles pydantic derives from field names ("Batch Size"), which repeat the key."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _raw_schema(target: Any) -> dict[str, Any]:
    if isinstance(target, type) and issubclass(target, BaseModel):
        return target.model_json_schema(by_alias=True, mode="validation", schema_generator=_Generator)
    return TypeAdapter(target).json_schema(by_alias=True, mode="validation", schema_generator=_Generator)


def build_schemas() -> list[SchemaFile]:
    """Build every schema personas publishes, in a fixed order."""
    entries = [
        ("project.schema.json", ProjectSettings, "personas.yaml", "The project file of a personas project: where data and state live, identity rules, defaults."),
        ("trait.schema.json", Trait, "personas Trait", "A computed trait: one value per user profile or account, computed from events."),
        ("audience.schema.json", Audience, "personas Audience", "An audience: the profiles or accounts meeting a condition tree, and where they are sent."),
        ("destination.schema.json", Destination, "personas Destination", "A destination that receives the changes of the audiences sent to it."),
        ("resource.schema.json", Resource, "personas resource", "Any personas resource document (Trait, Audience or Destination), chosen by `kind`."),
    ]
    return [_schema_file(filename, target, title, description) for filename, target, title, description in entries]


def _schema_file(filename: str, target: Any, title: str, description: str) -> SchemaFile:
    body = _raw_schema(target)
    body.pop("title", None)
    body.pop("description", None)
    body = _transform(body)
    for name in _ONE_OPERATOR_MODELS:
        if name in body.get("$defs", {}):
            body["$defs"][name]["oneOf"] = [{"required": [operator]} for operator in OPERATORS]
    if "EventCondition" in body.get("$defs", {}):
        body["$defs"]["Condition"] = _condition_schema()
    if "Count" in body.get("$defs", {}):
        body["$defs"]["Count"]["oneOf"][1]["minProperties"] = 1
    header = {"$schema": DIALECT, "title": title, "description": description}
    return SchemaFile(filename, title, description, {**header, **body})


def _transform(node: Any) -> Any:
    """Rewrite a pydantic schema tree into the form personas publishes."""
    if isinstance(node, list):
        return [_transform(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _transform(value) for key, value in node.items()}
    if _is_condition_union(node):
        node = {key: value for key, value in node.items() if key != "oneOf"}
        node["$ref"] = "#/$defs/Condition"
    if "discriminator" in node and "oneOf" in node:
        node = _discriminated(node)
    if node.get("format") == "date-time":
        node.pop("format")
        node["pattern"] = TIMESTAMP_PATTERN
        node.setdefault("examples", ["2024-03-31", "2024-03-31T00:00:00Z"])
    return node


def _condition_models() -> dict[str, str]:
    """Map each condition kind key to the name of its model, read from the `Condition` union's tags."""
    union = typing.get_args(Condition)[0]
    kinds = {}
    for member in typing.get_args(union):
        model, tag = typing.get_args(member)[:2]
        kinds[tag.tag] = model.__name__
    return kinds


def _is_condition_union(node: dict[str, Any]) -> bool:
    refs = {f"#/$defs/{name}" for name in _condition_models().values()}
    return isinstance(node.get("oneOf"), list) and {item.get("$ref") for item in node["oneOf"]} == refs


def _condition_schema() -> dict[str, Any]:
    """Build the schema of a condition: exactly one kind key, which decides the rest through `if`/`then` branches.

    pydantic writes the union as a bare `oneOf`, whose only error is "not
    valid under any of the given schemas". Branching on the kind key lets a
    validator point at the misspelled key inside the condition.
    """
    kinds = _condition_models()
    return {
        "description": "A condition: a mapping with exactly one of the keys " + ", ".join(kinds) + ".",
        "type": "object",
        "oneOf": [{"required": [kind]} for kind in kinds],
        "allOf": [{"if": {"required": [kind]}, "then": {"$ref": f"#/$defs/{name}"}} for kind, name in kinds.items()],
    }


def _discriminated(node: dict[str, Any]) -> dict[str, Any]:
    """Turn `oneOf` + an OpenAPI `discriminator` into plain JSON Schema `if`/`then` branches.

    `oneOf` reports "matches none" without the reason. With one branch per
    value of the discriminating key, validators and editors report the error
    found inside the branch the document chose.
    """
    key = node["discriminator"]["propertyName"]
    mapping = node["discriminator"]["mapping"]
    rest = {name: value for name, value in node.items() if name not in ("discriminator", "oneOf")}
    branches = [
        {"if": {"properties": {key: {"const": value}}, "required": [key]}, "then": {"$ref": ref}}
        for value, ref in mapping.items()
    ]
    return {
        **rest,
        "type": "object",
        "required": [key],
        "properties": {key: {"enum": list(mapping)}},
        "allOf": branches,
    }


def write_schemas(folder: Path) -> list[tuple[Path, bool]]:
    """Write every schema into `folder` (created when missing); return (path, changed) per file.

    A file whose content is already current is not rewritten, so its
    modification time stays and build tools see no change.
    """
    folder.mkdir(parents=True, exist_ok=True)
    results = []
    for schema_file in build_schemas():
        path = folder / schema_file.filename
        text = schema_file.render()
        changed = not path.is_file() or path.read_text(encoding="utf-8") != text
        if changed:
            _write_atomically(path, text)
        results.append((path, changed))
    return results


def stale_schemas(folder: Path) -> list[Path]:
    """Return the schema files in `folder` that are missing or differ from a fresh build."""
    stale = []
    for schema_file in build_schemas():
        path = folder / schema_file.filename
        if not path.is_file() or path.read_text(encoding="utf-8") != schema_file.render():
            stale.append(path)
    return stale


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)

