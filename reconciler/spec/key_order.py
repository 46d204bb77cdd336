"""The canonical order of keys in spec files, derived from the models.

`personas fmt` puts every mapping it recognises in this order:

* a resource: apiVersion, kind, metadata, spec;
* a trait or destination spec: entity, type, then the model's fields, with
  the fields every destination shares (mode, batch_size, ...) after the
  type's own (url, headers, ...);
* a condition or filter: its kind key (`event`, `trait`, `not`, ...) or the
  `property` it filters, then the model's fields;
* anything else, personas.yaml included: the model's field order.

Keys that no model defines keep their relative order after the known ones, so
formatting never drops content, even in a file that does not validate.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal, Union

from pydantic import BaseModel

from reconciler.spec.models import (
    CONDITION_KINDS,
    OPERATORS,
    Audience,
    Destination,
    OperatorFields,
    Trait,
    _DestinationBase,
    _ResourceBase,
)
from reconciler.spec.settings import ProjectSettings

Models = tuple[type[BaseModel], ...]

RESOURCE_MODELS: Models = (Trait, Audience, Destination)
PROJECT_MODELS: Models = (ProjectSettings,)
_ENVELOPE = ("apiVersion", "kind", "metadata", "spec")


def _alias(name: str, model: type[BaseModel]) -> str:
    return model.model_fields[name].alias or name


@lru_cache(maxsize=None)
def key_order(model: type[BaseModel]) -> tuple[str, ...]:
    """Return the keys of `model` in the order they should appear in a file."""
    keys = [_alias(name, model) for name in model.model_fields]
    if issubclass(model, _ResourceBase):
        return _ENVELOPE
    lead = [key for key in ("entity", "type") if key in keys]
    lead += [key for key in keys if key in CONDITION_KINDS and key not in lead]
    if issubclass(model, OperatorFields):
        lead += [key for key in keys if key not in OPERATORS and key not in lead]
    rest = [key for key in keys if key not in lead]
    if issubclass(model, _DestinationBase):
        shared = {_alias(name, _DestinationBase) for name in _DestinationBase.model_fields}
        rest = [key for key in rest if key not in shared] + [key for key in rest if key in shared]
    return tuple(lead + rest)


def canonical_keys(keys: Sequence[str], model: type[BaseModel]) -> list[str]:
    """Sort `keys` canonically: known keys by the model, then unknown ones in their original order."""
    order = {key: position for position, key in enumerate(key_order(model))}
    known = sorted((key for key in keys if key in order), key=order.__getitem__)
    return known + [key for key in keys if key not in order]


def choose_model(candidates: Models, values: Mapping[str, Any]) -> type[BaseModel] | None:
    """Pick the candidate model a mapping most likely is, judged by its discriminating values and keys.

    `values` maps each key to its scalar value (None for collections). Each
    required literal field (`kind`, `type`, `apiVersion`) the mapping agrees
    with counts far more than a shared key, and each it contradicts counts
    against, so a typo in one of them still picks the nearest model.
    """
    best: type[BaseModel] | None = None
    best_score = float("-inf")
    for model in candidates:
        score = 100 * _literal_agreement(model, values) + len(set(values) & set(key_order(model)))
        if score > best_score:
            best, best_score = model, score
    return best


def _literal_agreement(model: type[BaseModel], values: Mapping[str, Any]) -> int:
    agreement = 0
    for name, field in model.model_fields.items():
        if not field.is_required() or typing.get_origin(field.annotation) is not Literal:
            continue
        key = field.alias or name
        agreement += 1 if values.get(key) in typing.get_args(field.annotation) else -1
    return agreement


@lru_cache(maxsize=None)
def child_models(model: type[BaseModel], key: str) -> Models:
    """Return the models the value under `key` may be (for a list, its items), or () for plain values."""
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return tuple(dict.fromkeys(_models_in(field.annotation)))
    return ()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Collect the models reachable through Optional, Union, Annotated and list (not dict values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (Union, list, types.UnionType):
        found: list[type[BaseModel]] = []
        for argument in typing.get_args(annotation):
            found.extend(_models_in(argument))
        return found
    return []
