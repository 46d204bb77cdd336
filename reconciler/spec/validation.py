"""Validating YAML documents against the models, with errors placed in the YAML.

Pydantic reports an error at a `loc` such as
`('spec', 'include', 'event', 'windw')`, where some parts are the tags of
discriminated unions (`event` names the kind of condition, `event_counter`
the type of a trait) rather than keys. `_walk` follows the loc through the
model's types side by side with the data, drops the tags, and so finds the
YAML path (`spec.include.windw`), the model that contains the last key (to
suggest `window` for `windw`) and the type expected there.

Pydantic's messages are then rewritten for people who write YAML: "unknown
key `windw`" with "did you mean `window`?", "missing required key `event`",
"expected a number, got text 'abc'", the allowed choices of a literal. Errors
that several members of a union report about one value become one message.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, ValidationError

from reconciler.spec.diagnostics import Diagnostic, PathPart
from reconciler.spec.loader import YamlDocument
from reconciler.spec.models import CONDITION_KINDS, RESOURCE_KINDS, Count, Window
from reconciler.spec.types import Duration, Percent, Rate, Schedule

_NONE = type(None)

# YAML must spell keys as documented (`from`, `not`, `apiVersion`), never by their Python
# names (`from_`, `not_`, `api_version`), which the models accept for code that builds them.
# pydantic before 2.11 has no `by_name`: there the Python names remain accepted.
_BY_ALIAS_ONLY = {"by_name": False} if "by_name" in inspect.signature(BaseModel.model_validate).parameters else {}


def closest(word: Any, choices: Sequence[str]) -> str | None:
    """The choice closest to `word` (difflib ratio 0.6 or more, or equal but for case), else None."""
    if not isinstance(word, str):
        return None
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not matches:
        lowered = {choice.lower(): choice for choice in choices}
        matches = [lowered[word.lower()]] if word.lower() in lowered else []
    return matches[0] if matches else None


def did_you_mean(word: Any, choices: Sequence[str]) -> str | None:
    """A hint naming the closest choice, when one is close enough."""
    match = closest(word, choices)
    return f"did you mean `{match}`?" if match else None


def describe(value: Any) -> str:
    """How a YAML value reads in a message: `text 'abc'`, `the number 5`, `a mapping`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"text {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# --------------------------------------------------------------------------- documents


def validate_resource(document: YamlDocument) -> tuple[BaseModel | None, list[Diagnostic]]:
    """Validate one resource document; return the model, or None and the diagnostics."""
    data = document.data
    if not isinstance(data, dict):
        return None, [document.diagnostic(
            [], "invalid-document",
            f"a resource document must be a mapping, got {describe(data)}",
            "Start it with apiVersion: personas/v1, kind, metadata and spec.",
        )]
    kind = data.get("kind")
    model = RESOURCE_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None, [_kind_problem(document, data)]
    return validate_model(document, model)


def _kind_problem(document: YamlDocument, data: dict[Any, Any]) -> Diagnostic:
    kinds = list(RESOURCE_KINDS)
    if "kind" not in data:
        return document.diagnostic(
            ["kind"], "missing-key", "missing required key `kind`",
            f"Every resource sets its kind: {', '.join(kinds)}. "
            "Other YAML files do not belong in the project folder.",
        )
    hint = did_you_mean(data["kind"], kinds) or f"expected one of: {', '.join(kinds)}"
    return document.diagnostic(["kind"], "unknown-kind", f"unknown kind {_shown(data['kind'])}", hint)


def validate_model(
    document: YamlDocument, model: type[BaseModel], *, prefix: Sequence[PathPart] = ()
) -> tuple[BaseModel | None, list[Diagnostic]]:
    """Validate the document's data (or the part at `prefix`) against `model`."""
    data = document.data
    for part in prefix:
        data = data[part]
    try:
        return model.model_validate(data, **_BY_ALIAS_ONLY), []
    except ValidationError as error:
        return None, translate_errors(document, model, data, error, prefix)
    except RecursionError:
        return None, [document.diagnostic(list(prefix), "invalid-document", "the document nests too deeply to validate")]


def translate_errors(
    document: YamlDocument, model: type[BaseModel], data: Any, error: ValidationError, prefix: Sequence[PathPart] = ()
) -> list[Diagnostic]:
    """Turn pydantic's errors into diagnostics, one per place."""
    by_path: dict[tuple[Any, ...], list[_Problem]] = {}
    for item in error.errors(include_url=False):
        problems = [_problem(model, data, item)]
        if item["type"] == "union_tag_not_found":
            problems += _keys_no_member_allows(model, data, item["loc"])
        for problem in problems:
            if problem is not None and not _already_reported(document, [*prefix, *problem.path]):
                by_path.setdefault(tuple(problem.path), []).append(problem)
    # A misspelt required key is one mistake: "unknown key `evnt`, did you mean `event`?" says
    # it all, so the "missing required key `event`" beside it is dropped.
    for problems in list(by_path.values()):
        for problem in problems:
            if problem.suggestion is not None:
                by_path.pop((*problem.path[:-1], problem.suggestion), None)
    diagnostics = []
    for problems in by_path.values():
        problem = _merge(problems)
        path = [*prefix, *problem.path]
        diagnostics.append(document.diagnostic(path, problem.code, problem.message, problem.hint, key=problem.at_key))
    return diagnostics


def _already_reported(document: YamlDocument, path: list[PathPart]) -> bool:
    """True when reading the YAML already reported this place (a rejected tag leaves a null behind)."""
    return any(tuple(path[: len(broken)]) == broken for broken in document.broken)


# --------------------------------------------------------------------------- following a loc


@dataclass
class _Walk:
    path: list[PathPart] = field(default_factory=list)
    holder: type[BaseModel] | None = None  # model holding the last key of `path`
    annotation: Any = None  # type expected at the end of the path
    key_error: bool = False  # the error is about a mapping key, not its value


def _unwrap(annotation: Any) -> tuple[Any, Any]:
    """Strip Annotated and Optional; return the type and any union discriminator found."""
    discriminator = None
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *metadata = get_args(annotation)
            for item in metadata:
                if isinstance(item, Discriminator):
                    discriminator = item
        elif origin in (Union, types.UnionType):
            members = [member for member in get_args(annotation) if member is not _NONE]
            if len(members) != 1:
                return annotation, discriminator
            annotation = members[0]
        else:
            return annotation, discriminator


def _model_field(model: type[BaseModel], key: Any) -> Any:
    for name, info in model.model_fields.items():
        if key == (info.alias or name):
            return info
    for name, info in model.model_fields.items():
        if key == name:
            return info
    return None


def _member_for_tag(annotation: Any, tag: Any, discriminator: Any) -> Any:
    for member in get_args(annotation):
        base, tags = member, []
        if get_origin(member) is Annotated:
            base, *metadata = get_args(member)
            tags = [item.tag for item in metadata if isinstance(item, Tag)]
        if tag in tags:
            return base
        if isinstance(discriminator, str) and isinstance(base, type) and issubclass(base, BaseModel):
            info = base.model_fields.get(discriminator)
            if info is not None and tag in get_args(info.annotation):
                return base
    return None


def _walk(model: type[BaseModel], loc: Sequence[Any]) -> _Walk:
    walk = _Walk(annotation=model)
    annotation: Any = model
    discriminator: Any = None
    index = 0
    while index < len(loc):
        annotation, found = _unwrap(annotation)
        discriminator = discriminator or found
        part = loc[index]
        origin = get_origin(annotation)
        if origin in (Union, types.UnionType):
            if discriminator is None:
                break  # a plain union: the rest of the loc names the member tried
            annotation, discriminator = _member_for_tag(annotation, part, discriminator), None
            index += 1
            if annotation is None:
                break
            continue
        walk.path.append(part)
        index += 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            walk.holder = annotation
            info = _model_field(annotation, part)
            if info is None:
                annotation = None
                break
            annotation, discriminator = info.annotation, info.discriminator
            annotation = Annotated[annotation, *info.metadata] if info.metadata else annotation
        elif origin is list:
            annotation = get_args(annotation)[0]
        elif origin is dict:
            if index < len(loc) and loc[index] == "[key]":
                walk.key_error = True
                index += 1
            annotation = get_args(annotation)[1]
        else:
            walk.path.pop()
            break
    walk.annotation = annotation
    return walk


def _value_at(data: Any, path: Sequence[PathPart]) -> tuple[bool, Any]:
    for part in path:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return False, None
    return True, data


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


# --------------------------------------------------------------------------- messages


@dataclass
class _Problem:
    path: list[PathPart]
    code: str
    message: str
    hint: str | None = None
    at_key: bool = False
    expected: str | None = None  # "a number": merged when a union reports several
    value: Any = None
    suggestion: str | None = None  # the key an unknown key probably meant


_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
    "decimal_type": "a number", "decimal_parsing": "a number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "datetime_type": "a timestamp", "datetime_parsing": "a timestamp",
    "datetime_from_date_parsing": "a timestamp",
}

# Messages of model validators, and the key inside the model that they concern.
_VALIDATOR_PLACES: tuple[tuple[str, list[PathPart]], ...] = (
    ("between needs", ["between"]),
    ("the first step of a sequence", ["sequence", 0, "within"]),
    ("without `property`", ["value_type"]),
)

_SHAPES = {
    Window: "a duration such as 30d, or a mapping such as {from: 120d, to: 45d}",
    Count: "a whole number, or a mapping such as {gte: 2}",
}


def _problem(model: type[BaseModel], data: Any, item: dict[str, Any]) -> _Problem | None:
    kind = item["type"]
    walk = _walk(model, item["loc"])
    path = walk.path
    present, value = _value_at(data, path)
    ctx = item.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(walk, path)
    if kind == "missing":
        return _missing_key(walk, path)
    if kind == "condition_kind":
        return _condition_problem(path, value)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _tag_problem(walk, path, value, ctx)
    if kind == "literal_error":
        return _literal_problem(walk, path, value, ctx)
    if present and value is None and kind != "missing":
        empty = _empty_problem(walk, path)
        if empty is not None:
            return empty
    while path and not present:
        # A validator reshaped the value (`window: 30days` became {from: 30days}): point at what was written.
        path = path[:-1]
        present, value = _value_at(data, path)
    if kind in _EXPECTED:
        return _type_problem(walk, path, value, _EXPECTED[kind])
    return _value_problem(walk, path, value, kind, ctx, item["msg"])


def _literal_problem(walk: _Walk, path: list[PathPart], value: Any, ctx: dict[str, Any]) -> _Problem:
    annotation, _ = _unwrap(walk.annotation)
    allowed = list(get_args(annotation)) if get_origin(annotation) is Literal else []
    if len(allowed) == 1 and not isinstance(allowed[0], str) and str(allowed[0]) == str(value):
        # `version: "1"`: the right value, written as text
        return _Problem(
            path, "invalid-type", f"expected {describe(allowed[0])}, got {describe(value)}", "Remove the quotes.",
        )
    choices = re.findall(r"'([^']*)'", ctx.get("expected", "")) or [ctx.get("expected", "")]
    listed = ", ".join(f"`{choice}`" for choice in choices)
    return _Problem(path, "invalid-value", f"{_shown(value)} is not one of {listed}", did_you_mean(value, choices))


_EMPTY_EXPECTED = {
    Duration: "a duration such as 30s", Percent: "a percentage such as 10%", Rate: "a rate such as 20/s",
    Schedule: "a duration such as 1h or a cron expression",
}


def _empty_problem(walk: _Walk, path: list[PathPart]) -> _Problem | None:
    """Build the problem for a key written with no value (`timeout:`) where a default exists."""
    if walk.holder is None or not path or not isinstance(path[-1], str):
        return None
    info = _model_field(walk.holder, path[-1])
    if info is None or info.is_required():
        return None
    default = info.get_default(call_default_factory=False)
    shown = f"the default {default}" if isinstance(default, (str, int)) and not isinstance(default, bool) else "its default"
    annotation, _ = _unwrap(walk.annotation)
    expected = _EMPTY_EXPECTED.get(annotation, "a value")
    return _Problem(
        path, "invalid-value", f"`{path[-1]}` has no value",
        f"Leave the key out to use {shown}, or give {expected}.",
    )


def _unknown_key(walk: _Walk, path: list[PathPart]) -> _Problem:
    key = path[-1] if path else ""
    choices = allowed_keys(walk.holder) if walk.holder is not None else []
    suggestion = closest(key, choices)
    hint = f"did you mean `{suggestion}`?" if suggestion else None
    if hint is None and choices:
        hint = f"allowed keys here: {', '.join(choices)}"
    return _Problem(path, "unknown-key", f"unknown key {_shown(key)}", hint, at_key=True, suggestion=suggestion)


def _missing_key(walk: _Walk, path: list[PathPart]) -> _Problem:
    if not path:
        return _Problem(path, "missing-key", "a required key is missing")
    key = path[-1]
    info = _model_field(walk.holder, key) if walk.holder is not None else None
    description = info.description if info is not None and info.description else None
    hint = f"Add `{key}`: {description[0].lower()}{description[1:]}" if description else f"Add `{key}`."
    return _Problem(path, "missing-key", f"missing required key `{key}`", hint)


def _condition_problem(path: list[PathPart], value: Any) -> _Problem:
    kinds = ", ".join(CONDITION_KINDS)
    if not isinstance(value, dict):
        return _Problem(
            path, "invalid-condition", f"expected a condition (a mapping such as {{event: Signed Up}}), got {describe(value)}",
            f"a condition has one of: {kinds}",
        )
    found = [key for key in value if key in CONDITION_KINDS]
    if len(found) > 1:
        named = " and ".join(f"`{key}`" for key in found)
        return _Problem(
            path, "invalid-condition", f"a condition has exactly one kind, but this one has {named}",
            "Put each in its own condition under `all:` (every one holds) or `any:` (at least one holds).",
        )
    for key in value:
        hint = did_you_mean(key, CONDITION_KINDS)
        if hint:
            return _Problem([*path, key], "unknown-key", f"unknown key {_shown(key)}", hint, at_key=True)
    return _Problem(path, "invalid-condition", "a condition needs one of the keys: " + kinds, "Add the kind of condition, such as `event: Signed Up`.")


def _tag_problem(walk: _Walk, path: list[PathPart], value: Any, ctx: dict[str, Any]) -> _Problem:
    key = str(ctx.get("discriminator", "'type'")).strip("'")
    tags = _tags_of(walk.annotation)
    if "tag" not in ctx:
        hint = f"Add `{key}`, one of: {', '.join(tags)}." if tags else f"Add `{key}`."
        return _Problem([*path, key], "missing-key", f"missing required key `{key}`", hint)
    tag = ctx["tag"]
    hint = did_you_mean(tag, tags) or (f"expected one of: {', '.join(tags)}" if tags else None)
    return _Problem([*path, key], "invalid-value", f"unknown {key} {_shown(tag)}", hint)


def _keys_no_member_allows(model: type[BaseModel], data: Any, loc: Sequence[Any]) -> list[_Problem]:
    """Unknown keys beside a missing `type`: keys that no type of the union accepts.

    Without `type` pydantic checks nothing else, so a trait spec holding
    audience keys would otherwise only hear about the missing type.
    """
    walk = _walk(model, loc)
    present, value = _value_at(data, walk.path)
    annotation, _ = _unwrap(walk.annotation)
    members = [get_args(m)[0] if get_origin(m) is Annotated else m for m in get_args(annotation)]
    members = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if not present or not isinstance(value, dict) or not members:
        return []
    allowed = list(dict.fromkeys(key for member in members for key in allowed_keys(member)))
    return [
        _Problem([*walk.path, key], "unknown-key", f"unknown key {_shown(key)}", did_you_mean(key, allowed), at_key=True)
        for key in value
        if key not in allowed
    ]


def _tags_of(annotation: Any) -> list[str]:
    annotation, _ = _unwrap(annotation)
    tags: list[str] = []
    for member in get_args(annotation):
        base = get_args(member)[0] if get_origin(member) is Annotated else member
        if isinstance(base, type) and issubclass(base, BaseModel) and "type" in base.model_fields:
            tags.extend(str(tag) for tag in get_args(base.model_fields["type"].annotation))
    return tags


def _type_problem(walk: _Walk, path: list[PathPart], value: Any, expected: str) -> _Problem:
    if walk.key_error:
        key = path[-1] if path else None
        return _Problem(path, "invalid-key", f"expected text as a key, got {describe(key)}", "Put the key in quotes.", at_key=True)
    annotation, _ = _unwrap(walk.annotation)
    if expected == "a mapping" and annotation in _SHAPES:
        expected = _SHAPES[annotation]
    hint = None
    if expected == "text" and isinstance(value, (bool, int, float)):
        hint = "Put the value in quotes to use it as text."
    elif expected == "a list" and not isinstance(value, (dict, list)):
        hint = "Write a list as [a, b] or with one `- item` per line."
    problem = _Problem(path, "invalid-type", f"expected {expected}, got {describe(value)}", hint, at_key=walk.key_error)
    problem.expected, problem.value = expected, value
    return problem


def _value_problem(walk: _Walk, path: list[PathPart], value: Any, kind: str, ctx: dict[str, Any], message: str) -> _Problem:
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", message)).removeprefix("Value error, ")
        text, _, operators = text.partition("; operators: ")
        hint = f"operators: {operators}" if operators else None
        inner = next((sub for start, sub in _VALIDATOR_PLACES if text.startswith(start)), [])
        if inner and _value_at(value, inner)[0]:
            return _Problem([*path, *inner], _value_error_code(walk, path, text), text, hint, at_key=True)
        return _Problem(path, _value_error_code(walk, path, text), text, hint, at_key=walk.key_error)
    if kind == "string_pattern_mismatch" and path[-2:] == ["metadata", "name"]:
        return _Problem(
            path, "invalid-name", f"invalid name {_shown(value)}",
            "Use lower-case letters, digits and underscores, starting with a letter, at most 63 characters.",
        )
    if kind == "string_pattern_mismatch":
        return _Problem(path, "invalid-value", f"{_shown(value)} does not match the pattern {ctx.get('pattern')}")
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        items = "item" if bound == 1 else "items"
        least = "at least" if kind == "too_short" else "at most"
        return _Problem(path, "invalid-value", f"needs {least} {bound} {items}, got {ctx.get('actual_length')}")
    if kind == "string_too_short":
        return _Problem(path, "invalid-value", "must not be empty")
    bounds = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
              "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}
    if kind in bounds:
        name, words = bounds[kind]
        return _Problem(path, "invalid-value", f"must be {words} {ctx.get(name)}, got {_plain(value)}")
    if kind == "finite_number":
        return _Problem(path, "invalid-value", f"must be a finite number, got {_plain(value)}")
    return _Problem(path, "invalid-value", message[0].lower() + message[1:] if message else "invalid value")


def _value_error_code(walk: _Walk, path: list[PathPart], text: str) -> str:
    annotation, _ = _unwrap(walk.annotation)
    if text.startswith("invalid duration"):
        return "invalid-duration"
    if text.startswith("invalid URL"):
        return "invalid-url"
    if text.startswith("invalid regular expression"):
        return "invalid-regex"
    if annotation is Window:
        return "invalid-window"
    if path and path[-1] == "holdout":
        return "invalid-holdout"
    if "operator" in text:
        return "invalid-operator"
    return "invalid-value"


def _merge(problems: list[_Problem]) -> _Problem:
    """One problem per place: a union's several "expected ..." become one message."""
    typed = [problem for problem in problems if problem.expected]
    if len(typed) < 2 or len(typed) != len(problems):
        others = [problem for problem in problems if not problem.expected]
        return others[0] if others else problems[0]
    expected = list(dict.fromkeys(problem.expected for problem in typed))
    if "a whole number" in expected and "a number" in expected:
        expected.remove("a whole number")
    text = expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]
    first = typed[0]
    return _Problem(first.path, "invalid-type", f"expected {text}, got {describe(first.value)}", at_key=first.at_key)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"`{value}`"
    return _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return describe(value)
    return str(value)
