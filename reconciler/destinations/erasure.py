"""Erasing a person: suppress, remove from every destination, purge every row that names them.

The steps run in this order. The suppression list is written first, so an
ingest running afterwards already drops their messages. Then exits go to
every destination that received one of their identifier values, whatever its
mode and without the removal guard. Then every personas_* table of the
warehouse loses the rows that contain one of their identifier values or
profile ids. Last, the files of file destinations are rewritten without them.

A row "holds" a value when a text or JSON column equals it or contains it as
a JSON string (with its quotes, as in raw message lines); matching is exact,
so erasing `u_1` never touches `u_10`. Tables read through
`sources:` are not personas' to change; the report names them for an
upstream purge. The audit entry keeps counts and keyed digests only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from reconciler.destinations import outbox as box
from reconciler.destinations.snapshots import ensure_tables, snapshots

log = logging.getLogger(__name__)

_SKIPPED_TABLES = {"personas_suppressions", "personas_erasures"}
_RAW_TEXT_COLUMNS = {("personas_quarantine", "raw_line")}
_TEXT_TYPES = ("char", "text", "string", "varchar")
_DOCUMENT_TYPES = ("json",)

erasures = sa.Table(
    "personas_erasures",
    sa.MetaData(),
    sa.Column("erased_at", sa.DateTime, nullable=False),
    sa.Column("erased_by", sa.Text, nullable=False),
    sa.Column("digests", sa.Text, nullable=False),
    sa.Column("counts", sa.Text, nullable=False),
)


@dataclass
class DestinationOutcome:
    label: str
    status: str
    message: str | None = None


@dataclass
class ErasureReport:
    """Outcome of an erasure, free of the erased values."""

    profiles: int = 0
    identifiers: int = 0
    digests: list[str] = field(default_factory=list)
    rows_deleted: dict[str, int] = field(default_factory=dict)
    destinations: list[DestinationOutcome] = field(default_factory=list)
    files_rewritten: int = 0
    upstream: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(outcome.status == "ok" for outcome in self.destinations)


@dataclass(frozen=True)
class Person:
    profile_ids: tuple[str, ...]
    identifiers: tuple[tuple[str, str], ...]  # (type, value)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(sorted({value for _, value in self.identifiers}))


def erase_profile(project: Any, store: Any, warehouse: Any, identifier: str, identifier_type: str | None = None) -> ErasureReport:
    """Erase the person holding `identifier`; see the module docstring for the order of steps."""
    from reconciler.engine.profiles import find_profile

    profile_id = find_profile(warehouse, identifier, identifier_type)
    ensure_tables(warehouse.engine)
    with warehouse.engine.begin() as connection:
        person = find_person(connection, profile_id)
    report = ErasureReport(profiles=len(person.profile_ids), identifiers=len(person.identifiers))

    report.digests = suppress(warehouse, store, person)
    report.destinations = send_exits(project, store, warehouse, person)
    with warehouse.engine.begin() as connection:
        report.rows_deleted = purge(connection, person)
    report.files_rewritten = rewrite_files(project, person)
    report.upstream = upstream_tables(project)
    record_erasure(warehouse, report)
    log.info("erased %s profiles and %s identifier values", report.profiles, report.identifiers)
    return report


def find_person(connection: sa.Connection, profile_id: str) -> Person:
    """Collect the profile, every profile merged into it, and all their identifier values."""
    from reconciler.engine import layout

    profiles = {profile_id}
    frontier = {profile_id}
    while frontier:
        merged = set(connection.execute(sa.select(layout.profiles.c.profile_id).where(layout.profiles.c.merged_into.in_(frontier))).scalars())
        frontier = merged - profiles
        profiles |= merged
    rows = connection.execute(
        sa.select(layout.identifiers.c.identifier_type, layout.identifiers.c.identifier_value).where(
            layout.identifiers.c.profile_id.in_(profiles)
        )
    ).all()
    return Person(tuple(sorted(profiles)), tuple(sorted((row[0], row[1]) for row in rows)))


def suppress(warehouse: Any, store: Any, person: Person) -> list[str]:
    """Add the keyed digests of the person's identifiers to personas_suppressions."""
    from reconciler.engine import layout
    from reconciler.engine.identity import suppression_text

    digests = sorted({store.secret_digest(suppression_text(kind, value)) for kind, value in person.identifiers})
    table = layout.suppressions
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with warehouse.engine.begin() as connection:
        known = set(connection.execute(sa.select(table.c.identifier_hmac).where(table.c.identifier_hmac.in_(digests))).scalars())
        fresh = [{"identifier_hmac": digest, "suppressed_at": now} for digest in digests if digest not in known]
        if fresh:
            connection.execute(sa.insert(table), fresh)
    return digests


def send_exits(project: Any, store: Any, warehouse: Any, person: Person) -> list[DestinationOutcome]:
    """Exits, unguarded, for every pair holding one of the values; file destinations are rewritten instead."""
    from reconciler.destinations.options import SyncOptions
    from reconciler.destinations.planning import destination_model
    from reconciler.destinations.sync import DestinationWork, PairWork, SyncContext, _db_lock, run_destinations

    state = store.read()
    stones = {stone.id: stone for stone in store.tombstones()}
    names = {record.id: record.name for record in state.resources.values()}
    names.update({stone.id: stone.name for stone in stones.values() if stone.id not in names})
    works: dict[str, DestinationWork] = {}
    outcomes = []
    with warehouse.engine.connect() as connection:
        pairs = connection.execute(
            sa.select(snapshots.c.audience_id, snapshots.c.destination_id).where(snapshots.c.identifier_value.in_(person.values)).distinct()
        ).all()
    for audience_id, destination_id in sorted(pairs):
        destination = destination_model(project, state, stones, destination_id)
        if destination is None:
            outcomes.append(DestinationOutcome(destination_id, "failed", "no spec for this destination; remove the person there by hand"))
            continue
        if destination.spec.type == "file":
            continue
        pair = box.Pair(names.get(audience_id, audience_id), audience_id, destination.name, destination_id)
        work = PairWork(pair=pair, selection=None, only_values=person.values, batch_size=destination.spec.batch_size)
        works.setdefault(destination_id, DestinationWork(destination, destination_id)).pairs.append(work)
    context = SyncContext(project, warehouse, f"erasure-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}",
                          datetime.now(timezone.utc), SyncOptions(), _db_lock(warehouse))
    for record in run_destinations(context, list(works.values())):
        status = "ok" if record.status == "ok" else "failed"
        outcomes.append(DestinationOutcome(f"{record.audience}:{record.destination}", status, record.error))
    return outcomes


def purge(connection: sa.Connection, person: Person) -> dict[str, int]:
    """Delete, in every personas_* table, the rows holding one of the person's values or profile ids."""
    from reconciler.engine import layout

    deleted: dict[str, int] = {}
    tokens = sorted(set(person.values) | set(person.profile_ids))
    # Events are also found through the profile mapping: a message may name them only by a merged id.
    mapping = layout.message_profiles
    messages = sa.select(mapping.c.message_id).where(mapping.c.profile_id.in_(person.profile_ids))
    if _table_exists(connection, layout.events.name):
        count = _count_and_delete(connection, layout.events, layout.events.c.message_id.in_(messages.scalar_subquery()))
        deleted[layout.events.name] = count
    for table_name, columns in _personas_columns(connection).items():
        table = sa.table(table_name, *(sa.column(name) for name, _ in columns))
        conditions = []
        for name, kind in columns:
            column = table.c[name]
            text = sa.cast(column, sa.Text) if _is_document(kind) else column
            conditions.append(text.in_(tokens))
            conditions += [text.contains(json.dumps(token), autoescape=True) for token in tokens]
            if (table_name, name) in _RAW_TEXT_COLUMNS:
                # A malformed line may hold the value unquoted; dropping a stranger's junk line is the lesser harm.
                conditions += [text.contains(token, autoescape=True) for token in tokens]
        if conditions:
            count = _count_and_delete(connection, table, sa.or_(*conditions))
            if count:
                deleted[table_name] = deleted.get(table_name, 0) + count
    return deleted


def _personas_columns(connection: sa.Connection) -> dict[str, list[tuple[str, str]]]:
    """Text and JSON columns of personas' own tables, from information_schema (DuckDB cannot reflect)."""
    query = sa.text(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_name LIKE 'personas\\_%' ESCAPE '\\' ORDER BY table_name, ordinal_position"
    )
    if connection.dialect.name == "postgresql":
        query = sa.text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name LIKE 'personas\\_%' ESCAPE '\\' ORDER BY table_name, ordinal_position"
        )
    tables: dict[str, list[tuple[str, str]]] = {}
    for table_name, column_name, data_type in connection.execute(query):
        if table_name in _SKIPPED_TABLES:
            continue
        kind = str(data_type).lower()
        if any(word in kind for word in _TEXT_TYPES + _DOCUMENT_TYPES):
            tables.setdefault(table_name, []).append((column_name, kind))
    return tables


def _is_document(kind: str) -> bool:
    return any(word in kind for word in _DOCUMENT_TYPES)


def _count_and_delete(connection: sa.Connection, table: Any, condition: Any) -> int:
    count = int(connection.execute(sa.select(sa.func.count()).select_from(table).where(condition)).scalar_one())
    if count:
        connection.execute(sa.delete(table).where(condition))
    return count


def _table_exists(connection: sa.Connection, name: str) -> bool:
    query = sa.text("SELECT count(*) FROM information_schema.tables WHERE table_name = :name")
    return bool(connection.execute(query, {"name": name}).scalar_one())


def rewrite_files(project: Any, person: Person) -> int:
    """Rewrite every file a file destination keeps without the person's values; returns files changed."""
    from reconciler.destinations.file import rewrite_without
    from reconciler.spec.interpolation import interpolate

    drop = set(person.values) | set(person.profile_ids)
    changed = 0
    for destination in project.destinations.values():
        if destination.spec.type != "file":
            continue
        folder = project.resolve_path(interpolate(destination.spec.path, os.environ))
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in (".csv", ".jsonl") and not path.name.startswith("."):
                changed += bool(rewrite_without(path, drop))
    return changed


def upstream_tables(project: Any) -> list[str]:
    """The `sources:` tables that still hold the person and must be purged where they are loaded."""
    sources = getattr(project.settings, "sources", None)
    if sources is None:
        return []
    defaults = ("tracks", "identifies", "pages", "screens", "groups", "aliases")
    schema = f"{sources.schema_}." if sources.schema_ else ""
    return [f"{schema}{sources.tables.get(kind, kind)}" for kind in defaults] + [f"{schema}<one table per event>"]


def record_erasure(warehouse: Any, report: ErasureReport) -> None:
    from reconciler.state.records import current_user

    with warehouse.engine.begin() as connection:
        connection.execute(sa.schema.CreateTable(erasures, if_not_exists=True))
        counts = {"profiles": report.profiles, "identifiers": report.identifiers, "rows_deleted": report.rows_deleted,
                  "files_rewritten": report.files_rewritten,
                  "destinations": {outcome.status: sum(1 for o in report.destinations if o.status == outcome.status)
                                   for outcome in report.destinations}}
        connection.execute(sa.insert(erasures).values(
            erased_at=datetime.now(timezone.utc).replace(tzinfo=None), erased_by=current_user(),
            digests=json.dumps(report.digests), counts=json.dumps(counts, sort_keys=True)))

