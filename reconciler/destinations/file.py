"""The `file` destination: CSV or JSON Lines files in a folder.

Per audience, `<audience>.csv` (or `.jsonl`) holds the full membership
personas sent, and each run that changed something writes
`<audience>.changes.<run_id>.csv` with that run's changes. Every file is
written to a temporary file in the same folder, flushed to disk and moved
into place with os.replace, so a reader never sees half a file; changes are
acknowledged only once their file is in place.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from reconciler.destinations.base import Capabilities, Change, DestinationAdapter, SendResult, SnapshotMember, format_instant
from reconciler.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

CHANGE_COLUMNS = ("type", "audience", "identifier_type", "identifier_value", "traits", "idempotency_key", "at")
SNAPSHOT_COLUMNS = ("identifier_type", "identifier_value", "entered_at")


class FileAdapter(DestinationAdapter):
    capabilities = Capabilities(
        supports_removals=True,
        default_batch_size=10_000,
        max_batch_size=None,
        idempotency_keys=True,
        carries_traits=True,
        deferred_ack=True,
        full_snapshot=True,
    )

    def __init__(self, name: str, folder: Path, file_format: str, run_id: str) -> None:
        self.name = name
        self.folder = folder
        self.format = file_format
        self.run_id = run_id
        self._staged: dict[str, tuple[IO[str], Path]] = {}

    def describe(self) -> str:
        return f"file destination {self.name} ({self.folder})"

    def send(self, changes: Sequence[Change]) -> SendResult:
        by_audience: dict[str, list[Change]] = {}
        for change in changes:
            by_audience.setdefault(change.audience, []).append(change)
        for audience, group in by_audience.items():
            self._write_changes(self._stream(audience), group)
        return SendResult(acknowledged=[change.idempotency_key for change in changes])

    def commit(self) -> None:
        staged, self._staged = self._staged, {}
        try:
            for audience, (stream, temp) in staged.items():
                _close_durably(stream)
                os.replace(temp, self.changes_path(audience))
            _sync_folder(self.folder)
        except OSError as error:
            raise TransientError(f"{self.describe()}: cannot write the changes file: {error.strerror or error}") from error
        finally:
            for stream, temp in staged.values():
                stream.close()
                if temp.exists():
                    temp.unlink()

    def finish(self, audience: str, members: Iterable[SnapshotMember]) -> None:
        def write(stream: IO[str]) -> None:
            if self.format == "csv":
                writer = csv.writer(stream, lineterminator="\n")
                writer.writerow(SNAPSHOT_COLUMNS)
                writer.writerows((m.identifier_type, m.identifier_value, _instant(m.entered_at)) for m in members)
            else:
                for member in members:
                    line = {
                        "identifier": {"type": member.identifier_type, "value": member.identifier_value},
                        "entered_at": _instant(member.entered_at),
                    }
                    stream.write(json.dumps(line, separators=(",", ":")) + "\n")

        try:
            write_atomically(self.snapshot_path(audience), write)
        except OSError as error:
            raise TransientError(f"{self.describe()}: cannot write the snapshot file: {error.strerror or error}") from error

    def rename(self, old: str, new: str, values: Sequence[str]) -> None:
        """Move the snapshot file to the new name; changes files keep the name they were written under."""
        old_path = self.snapshot_path(old)
        if old_path.exists() and not self.snapshot_path(new).exists():
            os.replace(old_path, self.snapshot_path(new))

    def close(self) -> None:
        for stream, temp in self._staged.values():
            stream.close()
            if temp.exists():
                temp.unlink()
        self._staged = {}

    def snapshot_path(self, audience: str) -> Path:
        return self.folder / f"{audience}.{self.format}"

    def changes_path(self, audience: str) -> Path:
        return self.folder / f"{audience}.changes.{_safe(self.run_id)}.{self.format}"

    def _stream(self, audience: str) -> IO[str]:
        if audience in self._staged:
            return self._staged[audience][0]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{audience}.", suffix=".tmp", dir=self.folder)
        except OSError as error:
            raise PermanentError(
                f"{self.describe()}: cannot write in the folder: {error.strerror or error}",
                hint="Check that the folder exists and is writable, or change `path:` in the destination spec.",
            ) from error
        stream = os.fdopen(handle, "w", encoding="utf-8", newline="")
        self._staged[audience] = (stream, Path(name))
        final = self.changes_path(audience)
        try:
            # A run that sends twice (pending changes first, then new ones) keeps one changes file.
            if final.exists():
                with final.open(encoding="utf-8", newline="") as previous:
                    shutil.copyfileobj(previous, stream)
            elif self.format == "csv":
                csv.writer(stream, lineterminator="\n").writerow(CHANGE_COLUMNS)
        except OSError as error:
            self.close()
            raise TransientError(f"{self.describe()}: cannot write the changes file: {error.strerror or error}") from error
        return stream

    def _write_changes(self, stream: IO[str], changes: Sequence[Change]) -> None:
        if self.format == "csv":
            csv.writer(stream, lineterminator="\n").writerows(
                (change.type, change.audience, change.identifier_type, change.identifier_value,
                 json.dumps(change.traits, separators=(",", ":"), sort_keys=True), change.idempotency_key, format_instant(change.at))
                for change in changes
            )
        else:
            stream.writelines(json.dumps(change.to_dict(), separators=(",", ":"), sort_keys=True) + "\n" for change in changes)


def write_atomically(path: Path, write: Any) -> None:
    """Write a file through a temporary file in the same folder, fsync it, then os.replace it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(name, path)
        _sync_folder(path.parent)
    except BaseException:
        if os.path.exists(name):
            os.unlink(name)
        raise


def rewrite_without(path: Path, drop: set[str]) -> int:
    """Rewrite one destination file without the lines holding any value of `drop`; returns lines dropped."""
    kept: list[str] = []
    dropped = 0
    with path.open(encoding="utf-8", newline="") as stream:
        lines = stream.read().splitlines(keepends=True)
    for index, line in enumerate(lines):
        if index > 0 or path.suffix == ".jsonl":
            if _line_values(line, path.suffix) & drop:
                dropped += 1
                continue
        kept.append(line)
    if dropped:
        write_atomically(path, lambda out: out.write("".join(kept)))
    return dropped


def _line_values(line: str, suffix: str) -> set[str]:
    """Collect the text fields of one file line: cells for CSV, every string in the object for JSON Lines."""
    if suffix == ".csv":
        return {cell for row in csv.reader(io.StringIO(line)) for cell in row}
    values: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            values.add(node)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    try:
        walk(json.loads(line))
    except ValueError:
        return {line.strip()}
    return values


def _close_durably(stream: IO[str]) -> None:
    stream.flush()
    os.fsync(stream.fileno())
    stream.close()


def _sync_folder(folder: Path) -> None:
    """Persist the rename itself (POSIX: fsync the directory)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _instant(value: Any) -> str:
    return format_instant(value) if value is not None else ""


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)
