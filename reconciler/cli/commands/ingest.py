"""`personas ingest FILE...`: load Segment-spec JSON Lines (plain or gzip) into the warehouse."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from reconciler.cli import AppContext, pass_app
from reconciler.spec.diagnostics import plural


@click.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-resolve", is_flag=True, help="Store the messages but leave identity resolution to the next ingest or run.")
@pass_app
def command(app: AppContext, files: tuple[Path, ...], no_resolve: bool) -> int:
    """Load FILES of Segment-spec messages, one JSON object per line, plain or gzip.

    All FILES form one ingest batch. Messages are deduplicated by messageId
    (ingesting a file again stores nothing new); malformed lines are kept in
    the personas_quarantine table with the reason; messages carrying an
    erased identifier are dropped. Identities of the new messages are then
    resolved, unless --no-resolve.
    """
    from reconciler.engine.ingest import ingest_files
    from reconciler.engine.warehouse import open_warehouse

    project = app.load_project()
    state = _State(project)
    total = sum(path.stat().st_size for path in files)
    try:
        rules = state.applied_identity()
        with open_warehouse(project) as warehouse, _progress_bar(total) as bar:
            summary = ingest_files(
                warehouse,
                files,
                resolve_identities=not no_resolve,
                digest=state.digest,
                progress=bar.update if bar is not None else None,
                rules=rules,
            )
    finally:
        state.close()
    for line in summary_lines(summary):
        app.console.print(line)
    return 0


def summary_lines(summary: Any) -> list[str]:
    """Return the ingest report lines: counts, quarantine reasons, then identity resolution."""
    files = plural(len(summary.files), "file")
    counts = [
        ("read", summary.read),
        ("stored", summary.stored),
        ("duplicates", summary.duplicates),
        ("quarantined", summary.quarantined),
        ("suppressed", summary.suppressed),
    ]
    reasons = sorted(summary.quarantine_reasons.items(), key=lambda item: (-item[1], item[0]))
    width = max(len(f"{count:,}") for _, count in counts + reasons)
    label = max(len(name) for name, _ in counts) + 2
    lines = [f"Ingested {files} as batch {summary.batch_seq}:"]
    lines += [f"  {name:<{label}}{count:>{width},}" for name, count in counts]
    # Counts per reason sit in the same right-aligned column as the totals.
    lines += [f"  {'':<{label}}{count:>{width},}  {reason}" for reason, count in reasons]
    if summary.quarantined:
        lines.append("Quarantined lines are kept with their reason in the personas_quarantine table.")

    resolution = summary.resolution
    if resolution is None:
        lines.append("Identity resolution skipped (--no-resolve): the next ingest or run resolves these messages.")
    else:
        kind = " (full: the identity rules changed)" if resolution.full else ""
        lines.append(
            f"Identity resolution{kind}: {plural(resolution.messages, 'message')}, "
            f"{plural(resolution.profiles_created, 'profile')} created, {plural(resolution.merges, 'merge')}, "
            f"{plural(resolution.refused_merges, 'merge')} refused, "
            f"{plural(resolution.unlinked, 'message')} without a usable identifier."
        )
    return lines


def _progress_bar(total: int):
    """Return a progress bar on stderr when it is a terminal, else an empty context."""
    if not sys.stderr.isatty():
        return nullcontext(None)
    return click.progressbar(length=total, label="Ingesting", file=sys.stderr, show_eta=True)


class _State:
    """The state store, opened on first use: the applied identity rules and the keyed HMAC."""

    def __init__(self, project: Any) -> None:
        self.project = project
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from reconciler.state import open_store

            self._store = open_store(self.project.resolve_url(self.project.settings.state))
        return self._store

    def applied_identity(self) -> Any:
        """Return the applied identity rules, or None before the first apply."""
        from reconciler.spec.settings import IdentityRules

        record = self.store.read().identity
        if record is None:
            return None
        return IdentityRules.model_validate(record.spec.get("spec", record.spec))

    def digest(self, text: str) -> str:
        return self.store.secret_digest(text)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
