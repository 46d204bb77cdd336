"""Field-level differences between two normalised specs, with YAML-style paths."""

from __future__ import annotations

import re
from typing import Any

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

Path = tuple[Any, ...]  # keys (str) and list indexes (int)


def format_path(path: Path) -> str:
    """`("spec", "include", "all", 1, "window")` -> `spec.include.all[1].window`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def diff_values(before: Any, after: Any, path: Path = ()) -> list[tuple[Path, Any, Any]]:
    """List the leaves that differ, as (path, before, after), with None for absent.

    Mappings are compared key by key, and lists of equal length item by item.
    A list whose length changed is reported whole, because its items shifted.
    """
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[tuple[Path, Any, Any]] = []
        for key in sorted(set(before) | set(after)):
            changes.extend(diff_values(before.get(key), after.get(key), path + (key,)))
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (old, new) in enumerate(zip(before, after)):
            changes.extend(diff_values(old, new, path + (index,)))
        return changes
    return [(path, before, after)]


def lookup(document: Any, path: Path) -> Any:
    """Return the value at `path`, or None when any step is absent."""
    value = document
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return None
        elif not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def leaves(document: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """List every scalar or empty-collection leaf of a document, with its path, in key order."""
    if isinstance(document, dict) and document:
        found: list[tuple[Path, Any]] = []
        for key in sorted(document):
            found.extend(leaves(document[key], path + (key,)))
        return found
    if isinstance(document, list) and document and any(isinstance(item, (dict, list)) for item in document):
        found = []
        for index, item in enumerate(document):
            found.extend(leaves(item, path + (index,)))
        return found
    return [(path, document)]
