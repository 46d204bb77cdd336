"""The user docs keep up with the models and the command line."""

from __future__ import annotations

import importlib.util
import re

import pytest

from reconciler.spec.key_order import _models_in
from reconciler.spec.models import (
    CONDITION_KINDS,
    DESTINATION_TYPES,
    OPERATORS,
    TRAIT_TYPES,
    Audience,
    Destination,
    Trait,
)
from reconciler.spec.settings import ProjectSettings

from .helpers import REPO

SPECS = REPO / "docs" / "specs.md"
CLI = REPO / "docs" / "cli.md"


def reachable_models() -> list[type]:
    found: list[type] = []
    pending = [ProjectSettings, Trait, Audience, Destination]
    while pending:
        model = pending.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            pending.extend(_models_in(field.annotation))
    return found


def field_names() -> list[tuple[str, str]]:
    names = {}
    for model in reachable_models():
        for name, field in model.model_fields.items():
            names.setdefault(field.alias or name, model.__name__)
    return sorted(names.items())


def in_code(text: str, word: str) -> bool:
    """True when `word` appears inside a `code span` of the text (as in `duckdb.threads`)."""
    return re.search(r"`[^`\n]*(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])[^`\n]*`", text) is not None


@pytest.mark.parametrize(("name", "model"), field_names(), ids=[name for name, _ in field_names()])
def test_spec_reference_lists_field(name: str, model: str):
    assert in_code(SPECS.read_text(), name), f"docs/specs.md never mentions `{name}` (a field of {model})"


@pytest.mark.parametrize(
    "word",
    sorted(set(TRAIT_TYPES + DESTINATION_TYPES + OPERATORS + CONDITION_KINDS)),
)
def test_every_type_operator_and_condition_kind_is_documented(word: str):
    assert in_code(SPECS.read_text(), word), f"docs/specs.md never mentions `{word}`"


def test_field_list_covers_nested_models():
    names = dict(field_names())
    assert {"misfire_grace", "at_least", "identifier_values", "within", "from", "not", "signing_secret"} <= set(names)


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", REPO / "scripts" / "gen_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current_with_the_command_help():
    expected = load_generator().render()
    assert CLI.read_text() == expected, (
        "docs/cli.md is out of date with the commands' help; regenerate it with `python scripts/gen_cli_docs.py`"
    )


def test_cli_reference_has_a_section_for_every_command():
    from reconciler.cli import cli

    text = CLI.read_text()
    for name in cli.list_commands(None):
        assert f"### `personas {name}`" in text
