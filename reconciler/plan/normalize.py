"""The canonical form of specs: what plans compare and what the state stores.

Two specs that mean the same thing normalise to the same dict, so a plan right
after an apply is empty. The rules, applied to every model generically:

* Defaults are filled in: leaving out `entity` and writing `entity: user` are
  the same.
* Lists whose field is marked `x-personas-set` in the schema are sets: they
  are sorted (by their canonical JSON) and duplicates are dropped. Every other
  list keeps its order, because order means something there (sequence steps,
  identity priority).
* The one rule for empty values: a field whose value is null, or an empty
  list or mapping, is omitted. The models already turn `description: ""` into
  null, so `""`, null and a missing key all normalise to "absent". Every field
  whose default is empty documents that absence means empty.
* Durations, percentages and schedules are already canonical text, because
  the types make them so. Decimals become JSON numbers. Keys use the YAML
  spelling (`from`, `in`, `not`, `apiVersion`), and their order carries no
  meaning because canonical JSON sorts them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

SET_MARKER = "x-personas-set"


def normalize_resource(model: BaseModel) -> dict[str, Any]:
    """Return the canonical JSON-able dict of a whole resource: apiVersion, kind, metadata and spec."""
    return _normalize_model(model)


def normalize_identity(rules: BaseModel) -> dict[str, Any]:
    """Return the canonical dict of the identity rules (`project.identity`).

    Identifier order is kept: it is priority. Each rule gets its effective
    normalisation and source fields filled in, so writing the default out
    (`{type: email, normalize: email}`) is no change.
    """
    normalized = _normalize_model(rules)
    for rule, written in zip(rules.identifiers, normalized.get("identifiers", [])):
        written["normalize"] = rule.normalization
        written["from"] = list(rule.fields)
    return normalized


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hash(normalized: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a normalised spec."""
    return hashlib.sha256(canonical_json(normalized).encode("utf-8")).hexdigest()


def _normalize_model(model: BaseModel) -> dict[str, Any]:
    result: dict[str, Any] = {}
    values = model.__dict__  # pydantic keeps field values here; faster than getattr per field
    for name, key, is_set in _fields_of(type(model)):
        value = values[name]
        if value is None:
            continue
        value = _normalize_value(value)
        if not value and isinstance(value, (list, dict)):
            continue
        if is_set and isinstance(value, list):
            value = _as_set(value)
        result[key] = value
    return result


@functools.cache
def _fields_of(model_class: type[BaseModel]) -> tuple[tuple[str, str, bool], ...]:
    """(attribute, YAML key, is a set) of each field; read once per model class."""
    fields = []
    for name, info in model_class.model_fields.items():
        extra = info.json_schema_extra
        fields.append((name, info.alias or name, isinstance(extra, dict) and bool(extra.get(SET_MARKER))))
    return tuple(fields)


def _normalize_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return value
    if isinstance(value, BaseModel):
        return _normalize_model(value)
    if isinstance(value, str):
        return str(value)  # drop str subclasses such as Duration
    if isinstance(value, Decimal):
        return _decimal_to_json(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        items = {str(key): _normalize_value(item) for key, item in value.items()}
        return {key: item for key, item in sorted(items.items()) if not _is_absent(item)}
    if isinstance(value, (list, tuple)):
        return [_normalize_value(item) for item in value]
    raise TypeError(f"cannot normalise a value of type {type(value).__name__}")


def _decimal_to_json(value: Decimal) -> int | float | str:
    """Convert a decimal to a JSON number when that loses nothing, else to its exact text."""
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else format(value.normalize(), "f")


def _is_absent(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict)) and not value)


def _as_set(values: list[Any]) -> list[Any]:
    if all(type(item) is str for item in values):
        return sorted(set(values))
    keyed = {canonical_json(item): item for item in values}
    return [keyed[key] for key in sorted(keyed)]
