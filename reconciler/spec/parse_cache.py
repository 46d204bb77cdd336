"""A cache of parsed YAML files, so unchanged files are not parsed again.

The cache is one JSON file, `<project>/.personas/cache/parsed-yaml.json`,
mapping each file's relative path to the sha256 of its bytes and the plain
data of its documents. An entry is used only when the file's bytes hash to
the same value, under the same cache format and ruamel.yaml version, so it
can never serve stale data. Only files that read without any problem are
stored, and only when their data survives JSON unchanged (text keys only).

The cache is an optimisation and nothing more: a missing, corrupt or
unwritable cache (a read-only checkout) is silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FILE = Path(".personas") / "cache" / "parsed-yaml.json"
FORMAT = 1


def _stamp() -> str:
    from ruamel.yaml import __version__ as ruamel_version

    return f"{FORMAT}:{ruamel_version}"


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class ParseCache:
    """Parsed documents by file, valid while the file's bytes are unchanged."""

    def __init__(self, root: Path) -> None:
        self.path = root / CACHE_FILE
        self.entries: dict[str, Any] = {}
        self.changed = False
        self._load()

    def _load(self) -> None:
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(content, dict) and content.get("stamp") == _stamp() and isinstance(content.get("files"), dict):
            self.entries = content["files"]

    def get(self, file: str, sha: str) -> list[tuple[int, int, Any]] | None:
        """The (index, line, data) of each document of `file`, when cached for exactly these bytes."""
        entry = self.entries.get(file)
        if not isinstance(entry, dict) or entry.get("sha") != sha:
            return None
        documents = entry.get("documents")
        if not isinstance(documents, list):
            return None
        return [tuple(item) for item in documents]  # type: ignore[misc]

    def put(self, file: str, sha: str, documents: list[tuple[int, int, Any]]) -> None:
        if not all(_json_safe(data) for _, _, data in documents):
            return
        self.entries[file] = {"sha": sha, "documents": [list(item) for item in documents]}
        self.changed = True

    def keep_only(self, files: set[str]) -> None:
        """Forget files that no longer exist."""
        for file in set(self.entries) - files:
            del self.entries[file]
            self.changed = True

    def save(self) -> None:
        """Write the cache atomically when it changed; a failure to write is only logged."""
        if not self.changed:
            return
        text = json.dumps({"stamp": _stamp(), "files": self.entries}, separators=(",", ":"), ensure_ascii=False)
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".parsed-yaml-")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, self.path)
        except OSError as error:
            log.debug("cannot write the parse cache %s: %s", self.path, error)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return
        self.changed = False


def _json_safe(value: Any) -> bool:
    """True when JSON gives back exactly this value: text keys only, no float specials."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_safe(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_json_safe(item) for item in value)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, (str, int, bool))
