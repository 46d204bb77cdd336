"""Queueing changes in the outbox and applying acknowledgements to the snapshot, in SQL.

Changes are computed by set operations in the warehouse (desired set against
the snapshot) and written to the outbox before anything is sent. Each change
gets its idempotency key there: an md5 of (audience id, destination id,
identifier value, change type, run id that queued it). A change queued by
one run and re-sent by a later one keeps its key, and a member who exits and
enters again later gets a new key, because a new run queues it.

All functions take an open connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from reconciler.destinations.snapshots import outbox, pair_filter, rejected, snapshots


@dataclass(frozen=True)
class Pair:
    """One audience at one destination, by stable ids, with the names used in changes."""

    audience: str
    audience_id: str
    destination: str
    destination_id: str

    @property
    def label(self) -> str:
        return f"{self.audience}:{self.destination}"


@dataclass(frozen=True)
class Queued:
    """Changes a run queued for one pair."""

    entered: int = 0
    exited: int = 0
    updated: int = 0


@dataclass(frozen=True)
class Guard:
    """The removal guard of a destination: at least `at_least` removals and more than `share` of the snapshot."""

    share: Decimal
    at_least: int

    def trips(self, removals: int, snapshot_size: int) -> bool:
        return removals >= self.at_least and removals > 0 and Decimal(removals) > self.share * Decimal(snapshot_size)


@dataclass(frozen=True)
class GuardOutcome:
    released: int
    held: int
    passed: int


def snapshot_size(connection: sa.Connection, pair: Pair) -> int:
    query = sa.select(sa.func.count()).select_from(snapshots).where(pair_filter(snapshots, pair.audience_id, pair.destination_id))
    return int(connection.execute(query).scalar_one())


def pending_count(connection: sa.Connection, pair: Pair) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(outbox)
        .where(pair_filter(outbox, pair.audience_id, pair.destination_id), outbox.c.status == "pending")
    )
    return int(connection.execute(query).scalar_one())


def queue_entries(
    connection: sa.Connection, pair: Pair, desired: sa.Subquery, *, everything: bool, run_id: str, at: datetime, now: datetime
) -> int:
    """Queue `entered` for desired values missing from the snapshot (every desired value when `everything`)."""
    snap = snapshots.alias("snap")
    query = sa.select(desired).where(~_rejected_same(pair, desired, "entered"))
    if not everything:
        query = query.where(~_in_snapshot(pair, snap, desired.c.identifier_value))
    return _insert(connection, pair, query.subquery("entering"), "entered", run_id=run_id, at=at, now=now)


def queue_updates(connection: sa.Connection, pair: Pair, desired: sa.Subquery, *, run_id: str, at: datetime, now: datetime) -> int:
    """Queue `updated` for values in both sets whose sent traits changed."""
    snap = snapshots.alias("snap")
    query = (
        sa.select(desired)
        .select_from(desired.join(snap, snap.c.identifier_value == desired.c.identifier_value))
        .where(
            pair_filter(snap, pair.audience_id, pair.destination_id),
            snap.c.traits_sig != desired.c.traits_sig,
            ~_rejected_same(pair, desired, "updated"),
        )
    )
    return _insert(connection, pair, query.subquery("updating"), "updated", run_id=run_id, at=at, now=now)


def queue_exits(
    connection: sa.Connection,
    pair: Pair,
    desired: sa.Subquery | None,
    *,
    run_id: str,
    at: datetime,
    now: datetime,
    status: str,
    only_values: Sequence[str] | None = None,
) -> int:
    """Queue `exited` for snapshot values no longer desired (all of them when `desired` is None).

    `only_values` limits the exits to those values (erasure).
    """
    snap = snapshots.alias("snap")
    query = sa.select(snap.c.identifier_value, snap.c.identifier_type, snap.c.subject_id, snap.c.traits_sig).where(
        pair_filter(snap, pair.audience_id, pair.destination_id)
    )
    if desired is not None:
        still = sa.select(desired.c.identifier_value).where(desired.c.identifier_value == snap.c.identifier_value)
        refused = sa.select(rejected.c.identifier_value).where(
            pair_filter(rejected, pair.audience_id, pair.destination_id),
            rejected.c.identifier_value == snap.c.identifier_value,
            rejected.c.change_type == "exited",
        )
        query = query.where(~still.exists(), ~refused.exists())
    if only_values is not None:
        query = query.where(snap.c.identifier_value.in_(list(only_values)))
    return _insert(connection, pair, query.subquery("exiting"), "exited", run_id=run_id, at=at, now=now, status=status)


def apply_guard(connection: sa.Connection, pair: Pair, guard: Guard | None, *, approved: bool) -> GuardOutcome:
    """Decide the fate of the exits just queued (status `candidate`) and drop older held ones.

    With approval, candidates that were held before are released; the rest
    are checked again. Without a guard (deletes, erasure) all pass.
    """
    where = pair_filter(outbox, pair.audience_id, pair.destination_id)
    released = 0
    if approved:
        held_before = sa.select(outbox.c.identifier_value).where(where, outbox.c.status == "held")
        released = connection.execute(
            sa.update(outbox)
            .where(where, outbox.c.status == "candidate", outbox.c.identifier_value.in_(held_before.scalar_subquery()))
            .values(status="pending")
        ).rowcount
    connection.execute(sa.delete(outbox).where(where, outbox.c.status == "held"))
    remaining = int(
        connection.execute(sa.select(sa.func.count()).select_from(outbox).where(where, outbox.c.status == "candidate")).scalar_one()
    )
    hold = guard is not None and guard.trips(remaining, snapshot_size(connection, pair))
    connection.execute(sa.update(outbox).where(where, outbox.c.status == "candidate").values(status="held" if hold else "pending"))
    return GuardOutcome(released=released, held=remaining if hold else 0, passed=0 if hold else remaining)


def held_count(connection: sa.Connection, pair: Pair) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(outbox)
        .where(pair_filter(outbox, pair.audience_id, pair.destination_id), outbox.c.status == "held")
    )
    return int(connection.execute(query).scalar_one())


BATCH_COLUMNS = (
    "seq", "run_id", "change_type", "audience", "identifier_type", "identifier_value", "subject_id", "idempotency_key", "change_at",
)


def pending_batch(connection: sa.Connection, pair: Pair, after_seq: int, limit: int) -> list[sa.Row[Any]]:
    """Fetch the next pending changes after `after_seq`, oldest first, with the columns of BATCH_COLUMNS."""
    query = (
        sa.select(*(outbox.c[name] for name in BATCH_COLUMNS))
        .where(pair_filter(outbox, pair.audience_id, pair.destination_id), outbox.c.status == "pending", outbox.c.seq > after_seq)
        .order_by(outbox.c.seq)
        .limit(limit)
    )
    return connection.execute(query).all()


def acknowledge(
    connection: sa.Connection, pair: Pair, *, first_seq: int, last_seq: int, rejected_reasons: dict[str, str], run_id: str, now: datetime
) -> int:
    """Record a delivery: rejected keys move to the rejected table, the rest of the range reaches the snapshot.

    Returns the number of acknowledged changes.
    """
    where = sa.and_(
        pair_filter(outbox, pair.audience_id, pair.destination_id),
        outbox.c.status == "pending",
        outbox.c.seq.between(first_seq, last_seq),
    )
    if rejected_reasons:
        _move_rejected(connection, pair, rejected_reasons, run_id=run_id, now=now)
    acked = connection.execute(sa.update(outbox).where(where).values(status="acked")).rowcount
    _apply_acked(connection, pair, now)
    return acked


def _move_rejected(connection: sa.Connection, pair: Pair, reasons: dict[str, str], *, run_id: str, now: datetime) -> None:
    where = pair_filter(outbox, pair.audience_id, pair.destination_id)
    keys = list(reasons)
    rows = connection.execute(sa.select(outbox).where(where, outbox.c.idempotency_key.in_(keys))).mappings().all()
    values = _same_values_rejected(pair, [row["identifier_value"] for row in rows])
    connection.execute(sa.delete(rejected).where(values))
    connection.execute(
        sa.insert(rejected),
        [
            {
                "audience_id": pair.audience_id,
                "destination_id": pair.destination_id,
                "identifier_value": row["identifier_value"],
                "identifier_type": row["identifier_type"],
                "change_type": row["change_type"],
                "traits_sig": row["traits_sig"],
                "idempotency_key": row["idempotency_key"],
                "reason": reasons[row["idempotency_key"]],
                "run_id": run_id,
                "rejected_at": now,
            }
            for row in rows
        ],
    )
    connection.execute(sa.delete(outbox).where(where, outbox.c.idempotency_key.in_(keys)))


def _apply_acked(connection: sa.Connection, pair: Pair, now: datetime) -> None:
    """Move acknowledged outbox rows into the snapshot, then delete them."""
    acked = outbox.alias("acked")
    acked_where = sa.and_(pair_filter(acked, pair.audience_id, pair.destination_id), acked.c.status == "acked")
    snap_where = pair_filter(snapshots, pair.audience_id, pair.destination_id)
    same_value = acked.c.identifier_value == snapshots.c.identifier_value
    staying = acked.c.change_type.in_(("entered", "updated"))

    exits = sa.select(acked.c.identifier_value).where(acked_where, acked.c.change_type == "exited", same_value)
    connection.execute(sa.delete(snapshots).where(snap_where, exits.exists()))
    connection.execute(
        sa.update(snapshots)
        .where(snap_where, acked_where, staying, same_value)
        .values(
            traits_sig=acked.c.traits_sig,
            subject_id=acked.c.subject_id,
            identifier_type=acked.c.identifier_type,
            audience=acked.c.audience,
            updated_at=now,
        )
    )
    existing = sa.select(snapshots.c.identifier_value).where(snap_where, same_value)
    new_rows = sa.select(
        acked.c.audience_id,
        acked.c.destination_id,
        acked.c.identifier_value,
        acked.c.identifier_type,
        acked.c.audience,
        acked.c.subject_id,
        acked.c.traits_sig,
        acked.c.change_at.label("entered_at"),
        sa.literal(now, sa.DateTime).label("updated_at"),
    ).where(acked_where, staying, ~existing.exists())
    connection.execute(sa.insert(snapshots).from_select([c.name for c in snapshots.columns], new_rows))

    done = sa.select(acked.c.identifier_value).where(acked_where, acked.c.identifier_value == rejected.c.identifier_value)
    connection.execute(sa.delete(rejected).where(pair_filter(rejected, pair.audience_id, pair.destination_id), done.exists()))
    connection.execute(sa.delete(outbox).where(pair_filter(outbox, pair.audience_id, pair.destination_id), outbox.c.status == "acked"))


def _insert(
    connection: sa.Connection,
    pair: Pair,
    changes: sa.Subquery,
    change_type: str,
    *,
    run_id: str,
    at: datetime,
    now: datetime,
    status: str = "pending",
) -> int:
    """Insert one outbox row per row of `changes`, numbered after the pair's last seq."""
    last_seq = sa.select(sa.func.coalesce(sa.func.max(outbox.c.seq), 0)).where(
        pair_filter(outbox, pair.audience_id, pair.destination_id)
    )
    base = int(connection.execute(last_seq).scalar_one())
    number = sa.func.row_number().over(order_by=changes.c.identifier_value)
    key_source = (
        sa.literal(f"{pair.audience_id}|{pair.destination_id}|", sa.Text)
        .concat(changes.c.identifier_value)
        .concat(sa.literal(f"|{change_type}|{run_id}", sa.Text))
    )
    rows = sa.select(
        sa.literal(pair.audience_id, sa.Text),
        sa.literal(pair.destination_id, sa.Text),
        (sa.literal(base, sa.BigInteger) + number).label("seq"),
        sa.literal(run_id, sa.Text),
        sa.literal(pair.audience, sa.Text),
        sa.literal(change_type, sa.Text),
        changes.c.identifier_type,
        changes.c.identifier_value,
        changes.c.subject_id,
        changes.c.traits_sig,
        sa.func.md5(key_source),
        sa.literal(status, sa.Text),
        sa.literal(now, sa.DateTime),
        sa.literal(at, sa.DateTime),
    )
    columns = [c.name for c in outbox.columns]
    connection.execute(sa.insert(outbox).from_select(columns, rows))
    # Counted, not taken from rowcount: some drivers report -1 for INSERT ... SELECT.
    inserted = sa.select(sa.func.count()).select_from(outbox).where(
        pair_filter(outbox, pair.audience_id, pair.destination_id), outbox.c.seq > base
    )
    return int(connection.execute(inserted).scalar_one())


def _in_snapshot(pair: Pair, snap: Any, value: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    query = sa.select(snap.c.identifier_value).where(pair_filter(snap, pair.audience_id, pair.destination_id), snap.c.identifier_value == value)
    return query.exists()


def _rejected_same(pair: Pair, desired: sa.Subquery, change_type: str) -> sa.ColumnElement[bool]:
    """Match a rejection of the same change with the same content, which is not sent again until the content changes."""
    query = sa.select(rejected.c.identifier_value).where(
        pair_filter(rejected, pair.audience_id, pair.destination_id),
        rejected.c.identifier_value == desired.c.identifier_value,
        rejected.c.change_type == change_type,
        rejected.c.traits_sig == desired.c.traits_sig,
    )
    return query.exists()


def _same_values_rejected(pair: Pair, values: Sequence[str]) -> sa.ColumnElement[bool]:
    return sa.and_(pair_filter(rejected, pair.audience_id, pair.destination_id), rejected.c.identifier_value.in_(list(values)))


def snapshot_names(connection: sa.Connection, pair: Pair) -> list[str]:
    """Audience names the pair's snapshot rows were sent under (more than one after a rename)."""
    query = sa.select(snapshots.c.audience).where(pair_filter(snapshots, pair.audience_id, pair.destination_id)).distinct()
    return sorted(connection.execute(query).scalars())


def snapshot_values(connection: sa.Connection, pair: Pair, *, audience: str) -> list[str]:
    query = sa.select(snapshots.c.identifier_value).where(
        pair_filter(snapshots, pair.audience_id, pair.destination_id), snapshots.c.audience == audience
    )
    return list(connection.execute(query).scalars())


def rename_snapshot(connection: sa.Connection, pair: Pair, old: str) -> None:
    where = sa.and_(pair_filter(snapshots, pair.audience_id, pair.destination_id), snapshots.c.audience == old)
    connection.execute(sa.update(snapshots).where(where).values(audience=pair.audience))


def forget_rejections(connection: sa.Connection, pair: Pair) -> None:
    """Clear the pair's rejected changes so they are sent again (full resync)."""
    connection.execute(sa.delete(rejected).where(pair_filter(rejected, pair.audience_id, pair.destination_id)))


def delete_pair(connection: sa.Connection, pair: Pair) -> None:
    """Forget everything about a pair (after its retirement completed)."""
    for table in (snapshots, outbox, rejected):
        connection.execute(sa.delete(table).where(pair_filter(table, pair.audience_id, pair.destination_id)))


def rekey(connection: sa.Connection, column: str, old_id: str, new_id: str) -> None:
    """Move a replaced resource's sync rows to its new id (`column`: audience_id or destination_id)."""
    for table in (snapshots, outbox, rejected):
        connection.execute(sa.update(table).where(table.c[column] == old_id).values({column: new_id}))


def pairs_present(connection: sa.Connection) -> Iterable[tuple[str, str]]:
    """List every (audience id, destination id) with snapshot or outbox rows."""
    query = sa.union(
        sa.select(snapshots.c.audience_id, snapshots.c.destination_id).distinct(),
        sa.select(outbox.c.audience_id, outbox.c.destination_id).distinct(),
    )
    return [(row[0], row[1]) for row in connection.execute(query)]
