"""A record of files `personas fmt` found already canonical, so it does not format them again.

Formatting a document costs a round trip through ruamel.yaml's pure-Python
loader and dumper: an estimated 10 ms per small file (9 s for 1000 files,
measured on one machine). Most files are already canonical, and for
them that work only proves there is nothing to do. This cache keeps the
sha256 of each file's bytes that formatted to itself, in
`<project>/.personas/cache/formatted.json`.

An entry counts only under the same stamp: the versions of ruamel.yaml and of
the modules that decide the canonical form (the formatter, the key order and
the models). Changing any of them empties the cache, so it can never keep a
file from being formatted by newer rules. A missing, corrupt or unwritable
cache is ignored: the cache only saves time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FILE = Path(".personas") / "cache" / "formatted.json"
_RULES = ("fmt.py", "key_order.py", "models.py", "settings.py", "types.py")


@cache
def _stamp() -> str:
    from ruamel.yaml import __version__ as ruamel_version

    digest = hashlib.sha256(ruamel_version.encode())
    for name in _RULES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def file_key(raw: bytes, filename: str) -> str:
    """The cache key of a file's bytes; personas.yaml and resource files follow different models."""
    kind = "project" if filename == "personas.yaml" else "resource"
    return f"{kind}:{hashlib.sha256(raw).hexdigest()}"


class FormattedCache:
    """Keys of files known to be canonical, loaded from and saved to one project's cache folder."""

    def __init__(self, root: Path) -> None:
        self.path = root / CACHE_FILE
        self.keys: set[str] = set()
        self.changed = False
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(content, dict) and content.get("stamp") == _stamp() and isinstance(content.get("files"), list):
            self.keys = {key for key in content["files"] if isinstance(key, str)}

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def add(self, key: str) -> None:
        if key not in self.keys:
            self.keys.add(key)
            self.changed = True

    def save(self) -> None:
        """Write the cache atomically when it changed; a failure is only logged."""
        if not self.changed:
            return
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".formatted-")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump({"stamp": _stamp(), "files": sorted(self.keys)}, stream)
            os.replace(temporary, self.path)
        except OSError as error:
            log.debug("cannot write the fmt cache %s: %s", self.path, error)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return
        self.changed = False
