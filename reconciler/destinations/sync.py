"""The sync engine: send each destination the changes of the audiences it receives.

For each (audience, destination) pair, one pass:

1. re-send the changes still pending in the outbox from an earlier run, with
   their original idempotency keys. A pair whose backlog does not drain
   queues nothing new, so a change is never queued twice;
2. queue new changes: the desired set (membership after holdout and consent,
   as identifier values) diffed in SQL against the last acknowledged snapshot;
   exits go through the removal guard;
3. send the pending changes in batches; each acknowledgement advances the
   snapshot and clears the outbox rows in one transaction.

Deleted audiences and destinations (tombstones), and pairs an audience no
longer lists, get exits for everything personas sent there, unguarded.
Destinations run concurrently (`runtime.sync_concurrency` threads); one
destination's failure or slowness does not hold up the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from reconciler.destinations import outbox as box
from reconciler.destinations.base import Change, DestinationAdapter, SendResult, SnapshotMember
from reconciler.destinations.membership import Selection, consented_members, desired, eligible_members, trait_payloads
from reconciler.destinations.options import SyncOptions
from reconciler.destinations.report import shorten
from reconciler.destinations.snapshots import ensure_tables, pair_filter, snapshots
from reconciler.errors import PermanentError, PersonasError, TransientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairWork:
    """The work for one (audience, destination) pair in this pass.

    `selection` None means retire the pair: exit everything personas sent
    there (deleted audience or destination, or no longer listed), unguarded.
    `only_values`, with a retirement, limits the exits to those values (erasure).
    """

    pair: box.Pair
    selection: Selection | None
    mode: str = "diff"
    send_updates: bool = False
    guard: box.Guard | None = None
    full_resync: bool = False
    approved: bool = False
    only_values: tuple[str, ...] | None = None
    batch_size: int | None = None


@dataclass
class DestinationWork:
    destination: Any
    destination_id: str
    pairs: list[PairWork] = field(default_factory=list)


@dataclass
class Tally:
    """Counters of one pair's pass, turned into a SyncRecord at the end."""

    started_at: datetime
    entered: int = 0
    exited: int = 0
    updated: int = 0
    sent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    held_back: int = 0
    members: int = 0
    eligible: int = 0
    status: str = "ok"
    error: str | None = None
    delivered: dict[str, int] = field(default_factory=dict)
    earlier: int = 0
    first_rejection: str | None = None
    hold: str | None = None


@dataclass
class SyncContext:
    """Everything a worker needs; `db` serialises warehouse access for the embedded DuckDB."""

    project: Any
    warehouse: Any
    run_id: str
    as_of: datetime
    options: SyncOptions
    db_lock: Any

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        with self.db_lock, self.warehouse.engine.begin() as connection:
            yield connection


def sync_audiences(
    project: Any,
    store: Any,
    warehouse: Any,
    run_id: str,
    as_of: datetime,
    audiences: Sequence[Any],
    options: SyncOptions | None = None,
) -> list[Any]:
    """Sync the given audiences (models, names or addresses), plus pending retirements.

    Returns one SyncReport (a SyncRecord with the details of this run) per
    pair, each also saved with `store.record_sync`. Held-back removals,
    rejections, failed or pending syncs mean the run should exit 3 (see
    `needs_attention`).
    """
    from reconciler.destinations.planning import plan_work

    options = options or SyncOptions()
    ensure_tables(warehouse.engine)
    state = store.read()
    tombstones = [stone for stone in store.tombstones() if stone.kind in ("Audience", "Destination")]
    context = SyncContext(project, warehouse, run_id, as_of, options, _db_lock(warehouse))
    with context.transaction() as connection:
        plan = plan_work(connection, project, store, state, tombstones, audiences, options)
    records = run_destinations(context, plan.destinations)
    for record in records:
        store.record_sync(record.stored())
    with context.transaction() as connection:
        present = {pair for pair in box.pairs_present(connection)}
    for stone in tombstones:
        if not any(stone.id in pair for pair in present):
            store.forget_tombstone(stone.id)
    return records


def run_destinations(context: SyncContext, works: list[DestinationWork]) -> list[Any]:
    """Sync each destination in its own worker thread; results keep the order of `works`."""
    if not works:
        return []
    threads = min(len(works), int(getattr(context.project.settings.runtime, "sync_concurrency", 4)))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="personas-sync") as pool:
        results = list(pool.map(lambda work: sync_destination(context, work), works))
    return [record for records in results for record in records]


def sync_destination(context: SyncContext, work: DestinationWork) -> list[Any]:
    """Sync all pairs of one destination, one after the other, through one adapter."""
    from reconciler.destinations.factory import open_adapter

    try:
        adapter = open_adapter(work.destination, context.project, run_id=context.run_id, retry=context.options.retry)
    except PersonasError as error:
        return [_failed_record(context, pair, f"cannot open destination {work.destination.name}: {error}") for pair in work.pairs]
    try:
        return [sync_pair(context, adapter, pair) for pair in work.pairs]
    finally:
        adapter.close()


def sync_pair(context: SyncContext, adapter: DestinationAdapter, work: PairWork) -> Any:
    """Run one pair's pass: replay pending changes, queue new ones, deliver, record."""
    tally = Tally(started_at=_now())
    pair = work.pair
    try:
        if work.selection is not None:
            _count_members(context, work.selection, tally)
            _follow_rename(context, adapter, pair)
        if _deliver(context, adapter, work, tally):
            _queue(context, adapter, work, tally)
            _deliver(context, adapter, work, tally)
        if adapter.capabilities.full_snapshot:
            adapter.finish(pair.audience, _snapshot_members(context, pair))
        if work.selection is None and _retired(context, work):
            with context.transaction() as connection:
                box.delete_pair(connection, pair)
    except PermanentError as error:
        tally.status, tally.error = "failed", error.message
        log.error("sync %s failed: %s", pair.label, error.message)
    except TransientError as error:
        tally.status, tally.error = "pending", f"{error.message}; the pending changes are sent again next run"
        log.warning("sync %s left changes pending: %s", pair.label, error.message)
    except Exception as error:  # noqa: BLE001 - one broken destination must not stop the others
        tally.status, tally.error = "failed", f"internal error: {type(error).__name__}: {error}"
        log.exception("sync %s failed with an internal error", pair.label)
    _describe_hold(work, tally)
    _describe_rejections(work, tally)
    log.info("sync %s +%d -%d ~%d sent %d acknowledged %d", pair.label, tally.entered, tally.exited, tally.updated, tally.sent, tally.acknowledged)
    return _record(context, pair, tally)


def _follow_rename(context: SyncContext, adapter: DestinationAdapter, pair: box.Pair) -> None:
    """After a rename, let the destination move the data it keeps under the old audience name."""
    with context.transaction() as connection:
        old_names = box.snapshot_names(connection, pair)
    for old in old_names:
        if old == pair.audience:
            continue
        with context.transaction() as connection:
            values = box.snapshot_values(connection, pair, audience=old)
        adapter.rename(old, pair.audience, values)
        with context.transaction() as connection:
            box.rename_snapshot(connection, pair, old)
        log.info("sync %s: moved %d values from the old audience name %s", pair.label, len(values), old)


def _count_members(context: SyncContext, selection: Selection, tally: Tally) -> None:
    with context.transaction() as connection:
        eligible = sa.select(sa.func.count()).select_from(eligible_members(selection).subquery())
        members = sa.select(sa.func.count()).select_from(consented_members(selection))
        tally.eligible = int(connection.execute(eligible).scalar_one())
        tally.members = int(connection.execute(members).scalar_one())


def _queue(context: SyncContext, adapter: DestinationAdapter, work: PairWork, tally: Tally) -> None:
    """Write this pass's changes to the outbox, then pass the exits through the removal guard."""
    pair = work.pair
    now = _now()
    stamps = {"run_id": context.run_id, "at": _naive(context.as_of), "now": now}
    removals = adapter.capabilities.supports_removals and (work.selection is None or work.mode != "add_only")
    with context.transaction() as connection:
        if work.selection is None:
            tally.exited = box.queue_exits(connection, pair, None, status="pending", only_values=work.only_values, **stamps)
            return
        wanted = desired(work.selection, context.warehouse.identifiers())
        everything = work.mode == "mirror" or work.full_resync
        if work.full_resync:
            box.forget_rejections(connection, pair)
        tally.entered = box.queue_entries(connection, pair, wanted, everything=everything, **stamps)
        if work.send_updates and not everything:
            tally.updated = box.queue_updates(connection, pair, wanted, **stamps)
        if removals:
            tally.exited = box.queue_exits(connection, pair, wanted, status="candidate", **stamps)
            size = box.snapshot_size(connection, pair)
            outcome = box.apply_guard(connection, pair, work.guard, approved=work.approved)
            tally.held_back = outcome.held
            if outcome.held and work.guard is not None:
                tally.hold = f"removal guard: {outcome.held} of {size} members, over {_share(work.guard)}%"


def _deliver(context: SyncContext, adapter: DestinationAdapter, work: PairWork, tally: Tally) -> bool:
    """Send every pending change of the pair in batches; True when none is left pending.

    Acknowledgements are written every ACK_INTERVAL_S seconds or ACK_CHANGES
    changes (for deferred_ack types: after `commit()`), and before an error
    propagates, so a crash re-sends at most that much, under the same keys.
    """
    pair = work.pair
    size = adapter.capabilities.batch_size(work.batch_size)
    deferred = adapter.capabilities.deferred_ack
    done = _Acknowledgements(context, pair, tally)
    after = 0
    while True:
        with context.transaction() as connection:
            rows = box.pending_batch(connection, pair, after, size)
            changes = _changes(connection, work, rows)
        if not rows:
            break
        tally.sent += len(changes)
        try:
            result = adapter.send(changes)
        except PersonasError:
            if not deferred:
                done.flush()
            raise
        done.add(rows, result)
        after = rows[-1].seq
        if not deferred and done.due():
            done.flush()
    if deferred and done.first is not None:
        adapter.commit()
    done.flush()
    with context.transaction() as connection:
        return box.pending_count(connection, pair) == 0


ACK_INTERVAL_S = 1.0
ACK_CHANGES = 20_000


class _Acknowledgements:
    """Delivered batches not yet written to the snapshot: a contiguous seq range plus rejections."""

    def __init__(self, context: SyncContext, pair: box.Pair, tally: Tally) -> None:
        self.context, self.pair, self.tally = context, pair, tally
        self.first: int | None = None
        self.last = 0
        self.count = 0
        self.rejected: dict[str, str] = {}
        self.delivered: dict[str, int] = {}
        self.earlier = 0
        self.since = time.monotonic()

    def add(self, rows: Sequence[Any], result: SendResult) -> None:
        """Record one batch the destination responded to. What it delivered counts once the acknowledgement is written."""
        first, last = rows[0].seq, rows[-1].seq
        self.first = first if self.first is None else self.first
        self.last = last
        self.count += last - first + 1
        self.rejected.update(result.rejected)
        for row in rows:
            if row.idempotency_key in result.rejected:
                continue
            self.delivered[row.change_type] = self.delivered.get(row.change_type, 0) + 1
            self.earlier += row.run_id != self.context.run_id

    def due(self) -> bool:
        return self.count >= ACK_CHANGES or time.monotonic() - self.since >= ACK_INTERVAL_S

    def flush(self) -> None:
        if self.first is not None:
            _acknowledge(self.context, self.pair, SendResult(rejected=self.rejected), self.first, self.last, self.tally)
            for kind, count in self.delivered.items():
                self.tally.delivered[kind] = self.tally.delivered.get(kind, 0) + count
            self.tally.earlier += self.earlier
        self.first, self.count, self.rejected, self.since = None, 0, {}, time.monotonic()
        self.delivered, self.earlier = {}, 0


def _acknowledge(context: SyncContext, pair: box.Pair, result: SendResult, first: int, last: int, tally: Tally) -> None:
    with context.transaction() as connection:
        acked = box.acknowledge(
            connection, pair, first_seq=first, last_seq=last, rejected_reasons=result.rejected, run_id=context.run_id, now=_now()
        )
    tally.acknowledged += acked
    tally.rejected += len(result.rejected)
    if result.rejected and tally.first_rejection is None:
        tally.first_rejection = next(iter(result.rejected.values()))


def _changes(connection: sa.Connection, work: PairWork, rows: Sequence[Any]) -> list[Change]:
    traits = work.selection.traits if work.selection is not None else ()
    staying = sorted({row.subject_id for row in rows if row.change_type != "exited"}) if traits else []
    payloads = trait_payloads(connection, traits, staying)
    instants: dict[datetime, datetime] = {}
    changes = []
    for row in rows:
        at = instants.get(row.change_at) or instants.setdefault(row.change_at, row.change_at.replace(tzinfo=timezone.utc))
        carried = payloads.get(row.subject_id, {}) if row.change_type != "exited" else {}
        changes.append(
            Change(row.change_type, row.audience, row.identifier_type, row.identifier_value, row.idempotency_key, at, carried)
        )
    return changes


def _snapshot_members(context: SyncContext, pair: box.Pair) -> Iterator[SnapshotMember]:
    with context.transaction() as connection:
        query = (
            sa.select(snapshots.c.identifier_type, snapshots.c.identifier_value, snapshots.c.entered_at)
            .where(pair_filter(snapshots, pair.audience_id, pair.destination_id))
            .order_by(snapshots.c.identifier_value)
        )
        rows = connection.execute(query).all()
    for kind, value, entered_at in rows:
        yield SnapshotMember(kind, value, entered_at)


def _retired(context: SyncContext, work: PairWork) -> bool:
    """Tell whether a retirement is complete: nothing is left in the snapshot or the outbox."""
    if work.only_values is not None:
        return False
    with context.transaction() as connection:
        return box.snapshot_size(connection, work.pair) == 0 and box.pending_count(connection, work.pair) == 0


def _describe_hold(work: PairWork, tally: Tally) -> None:
    if not tally.held_back:
        return
    guard = work.guard
    rule = f"at least {guard.at_least} and more than {_share(guard)}% of the last snapshot" if guard else "guarded"
    tally.hold = tally.hold or rule
    message = (
        f"{tally.held_back} removals held back by the removal guard ({rule}); "
        f"review them, then run `personas run --approve-removals {work.pair.audience}:{work.pair.destination}`"
    )
    tally.error = message if tally.error is None else f"{tally.error}; {message}"
    if tally.status == "ok":
        tally.status = "held"


def _share(guard: box.Guard) -> str:
    """Format the guard's share as a percentage without trailing zeros: 20, 2.5."""
    return f"{float(guard.share * 100):g}"


def _describe_rejections(work: PairWork, tally: Tally) -> None:
    """Put the first rejection reason into the record's error; a clean pass becomes `rejected`."""
    if not tally.rejected:
        return
    label = f"{work.pair.audience}:{work.pair.destination}"
    message = (
        f"{tally.rejected} {'change' if tally.rejected == 1 else 'changes'} rejected, first: "
        f"{shorten(tally.first_rejection or 'no reason given')}; "
        f"see them with `personas syncs show {label}`; they are sent again when their content changes"
    )
    tally.error = message if tally.error is None else f"{tally.error}; {message}"
    if tally.status == "ok":
        tally.status = "rejected"


def needs_attention(records: Sequence[Any]) -> list[str]:
    """Messages for records that make a run exit 3; see reconciler.destinations.report."""
    from reconciler.destinations.report import needs_attention as messages

    return messages(records)


def _record(context: SyncContext, pair: box.Pair, tally: Tally) -> Any:
    from reconciler.destinations.report import SyncReport

    return SyncReport(
        run_id=context.run_id,
        audience=pair.audience,
        audience_id=pair.audience_id,
        destination=pair.destination,
        destination_id=pair.destination_id,
        started_at=tally.started_at,
        finished_at=datetime.now(timezone.utc),
        status=tally.status,
        entered=tally.entered,
        exited=tally.exited,
        updated=tally.updated,
        sent=tally.sent,
        acknowledged=tally.acknowledged,
        rejected=tally.rejected,
        held_back=tally.held_back,
        members=tally.members,
        eligible=tally.eligible,
        non_consented=max(tally.eligible - tally.members, 0),
        error=tally.error,
        delivered=dict(tally.delivered),
        earlier=tally.earlier,
        first_rejection=tally.first_rejection,
        hold=tally.hold,
    )


def _failed_record(context: SyncContext, work: PairWork, message: str) -> Any:
    log.error("sync %s failed: %s", work.pair.label, message)
    tally = Tally(started_at=_now(), status="failed", error=message)
    return _record(context, work.pair, tally)


def _db_lock(warehouse: Any) -> Any:
    """DuckDB: one statement at a time across worker threads; other databases: no lock needed."""
    return threading.RLock() if warehouse.dialect == "duckdb" else _NoLock()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _naive(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value

