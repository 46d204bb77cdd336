"""`personas run`: one pass of the reconcile loop.

    execute_run(project, store, as_of, selectors) -> RunResult

Under the run lock of the state store (one run at a time per state):

1. read the APPLIED specs from the state store, not the files on disk;
2. resolve identities of new messages (all of them when the rules changed);
3. compute the selected traits, then audiences, in dependency order, all at
   one as_of, each written in its own transaction. Traits that read the same
   events are computed by one scan into a temporary table first;
4. sync the computed audiences to their destinations, when asked.

A failing resource does not stop the run: it is recorded with its error,
and the selected resources that read it are skipped with the reason. The
run ends with exit code 3 when any resource failed or a sync needs
attention (held-back removals, rejected changes, a failed destination).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from reconciler.errors import PersonasError, StateError

log = logging.getLogger(__name__)


@dataclass
class ResourceOutcome:
    """The outcome of one resource in a run."""

    address: str
    resource_id: str
    status: str = "ok"  # ok | failed | skipped
    size: int | None = None  # audiences: every member, held-out ones included
    holdout: int | None = None  # audiences: members held out, never sent to destinations
    entered: int | None = None
    exited: int | None = None
    invalid: int | None = None  # aggregation traits: present values that did not parse
    duration_s: float = 0.0
    error: str | None = None


@dataclass
class RunResult:
    run_id: str
    as_of: datetime
    outcomes: list[ResourceOutcome] = field(default_factory=list)
    syncs: list[Any] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)  # held-back removals, rejections, failed syncs

    @property
    def failed(self) -> list[ResourceOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status != "ok"]

    @property
    def exit_code(self) -> int:
        return 3 if self.failed or self.attention else 0


def resolve_as_of(project: Any, as_of: datetime | None) -> datetime:
    """`--as-of`, else `as_of:` of personas.yaml, else now; always UTC."""
    value = as_of or project.settings.as_of or datetime.now(timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def applied_specs(store: Any) -> tuple[dict[str, Any], dict[str, str], Any]:
    """(models by address, ids by address, identity rules or None) from the applied state."""
    from pydantic import TypeAdapter

    from reconciler.spec.models import Resource
    from reconciler.spec.settings import IdentityRules

    snapshot = store.read()
    adapter = TypeAdapter(Resource)
    models: dict[str, Any] = {}
    ids: dict[str, str] = {}
    for address, record in snapshot.resources.items():
        if record.kind not in ("Trait", "Audience", "Destination"):
            continue
        models[address] = adapter.validate_python(record.spec)
        ids[address] = record.id
    identity = None
    if snapshot.identity is not None:
        identity = IdentityRules.model_validate(snapshot.identity.spec.get("spec", snapshot.identity.spec))
    return models, ids, identity


def execute_run(
    project: Any,
    store: Any,
    as_of: datetime | None = None,
    selectors: list[str] | tuple[str, ...] = (),
    sync: bool = True,
    options: Any = None,
    *,
    lock_timeout: float = 0.0,
    trigger: str = "cli",
) -> RunResult:
    """Compute the selected traits and audiences at one as_of, then sync; see the module docstring."""
    from reconciler.engine.selectors import select

    as_of = resolve_as_of(project, as_of)
    if not store.exists():
        raise StateError("nothing has been applied to this state yet", hint="Run `personas apply` first, then `personas run`.")
    store.check_schema()
    with store.lock(name="run", operation="run", timeout=lock_timeout):
        models, ids, identity = applied_specs(store)
        addresses = select(models, list(selectors))
        result = RunResult(run_id=str(uuid.uuid4()), as_of=as_of)
        store.start_run(result.run_id, as_of, list(selectors), trigger=trigger)
        status = "failed"
        try:
            _compute_and_sync(project, store, result, models, ids, identity, addresses, sync, options)
            status = "failed" if result.failed else "ok"
        finally:
            store.finish_run(result.run_id, status, [_record(outcome) for outcome in result.outcomes])
    return result


def _record(outcome: ResourceOutcome) -> Any:
    from reconciler.state.records import RunResourceRecord

    return RunResourceRecord(
        address=outcome.address,
        resource_id=outcome.resource_id,
        status=outcome.status,
        duration_s=round(outcome.duration_s, 3),
        size=outcome.size,
        error=outcome.error,
    )


def _compute_and_sync(project, store, result, models, ids, identity, addresses, sync, options) -> None:
    from reconciler.engine.identity import resolve
    from reconciler.engine.warehouse import open_warehouse

    with open_warehouse(project) as warehouse:
        warehouse.ensure_schema()
        resolve(warehouse, identity or project.settings.identity)
        computer = Computation(warehouse, models, ids, result)
        computer.run(addresses)
        computed = [models[o.address] for o in result.outcomes if o.status == "ok" and o.address.startswith("audience.")]
        if sync:
            _sync(project, store, warehouse, result, computed, options)


def _sync(project, store, warehouse, result: RunResult, audiences: list[Any], options: Any) -> None:
    try:
        from reconciler.destinations import sync as sync_module
    except ImportError:  # a build without destinations computes only
        return
    try:
        result.syncs = sync_module.sync_audiences(project, store, warehouse, result.run_id, result.as_of, audiences, options)
    except PersonasError as error:
        result.attention.append(f"sync: {error.message}")
        return
    result.attention.extend(sync_module.needs_attention(result.syncs))


class Computation:
    """Computes resources of one run over one warehouse connection (temporary tables live on it)."""

    def __init__(self, warehouse: Any, models: dict[str, Any], ids: dict[str, str], result: RunResult):
        from reconciler.engine.compiler import Context, Relations

        self.warehouse = warehouse
        self.models = models
        self.ids = ids
        self.result = result
        self.sql_errors: dict[str, str] = {}  # sql trait name -> why its query's columns could not be read
        self.context = Context(
            relations=Relations(
                events=warehouse.events(),
                profiles=warehouse.profiles(),
                identifiers=warehouse.identifiers(),
                account_users=warehouse.account_users(),
            ),
            as_of=result.as_of,
            traits={m.name: m for m in models.values() if m.kind == "Trait"},
            audiences={m.name: m for m in models.values() if m.kind == "Audience"},
            resource_ids=dict(ids),
        )

    def run(self, addresses: list[str]) -> None:
        from reconciler.engine.results import ensure_results_tables, refresh_statistics, retire_removed

        with self.warehouse.engine.connect() as connection:
            with connection.begin():
                ensure_results_tables(connection)
                retire_removed(connection, set(self.ids.values()), self.result.run_id, self.context.as_of)
            with connection.begin():
                analyzed = refresh_statistics(connection)
            if analyzed:
                log.info("refreshed planner statistics of %s", ", ".join(analyzed))
            self._describe_sql_traits(connection)
            traits = [self.models[a] for a in addresses if a.startswith("trait.")]
            self._compute_traits(connection, traits)
            # Audiences read the trait values just written: let the planner see them.
            with connection.begin():
                refresh_statistics(connection)
            for address in addresses:
                if address.startswith("audience."):
                    self._compute_audience(connection, self.models[address])
        # Scans compute traits by group; report them in dependency order all the same.
        position = {address: index for index, address in enumerate(addresses)}
        self.result.outcomes.sort(key=lambda outcome: position[outcome.address])

    def _describe_sql_traits(self, connection) -> None:
        from reconciler.engine.compiler.traits import sql_trait_columns

        for trait in self.context.traits.values():
            if trait.spec.type == "sql":
                try:
                    with connection.begin():
                        self.context.sql_columns[trait.name] = sql_trait_columns(connection, trait, self.context.as_of)
                except Exception as error:  # noqa: BLE001 - reported on the trait when it is computed
                    self.sql_errors[trait.name] = _error_text(error)

    # ----------------------------------------------------------------- traits

    def _compute_traits(self, connection, traits: list[Any]) -> None:
        from reconciler.engine.compiler import scan_key

        groups: dict[tuple, list[Any]] = {}
        for trait in traits:
            key = scan_key(trait)
            if key is None:
                self._step(trait, lambda t=trait: self._write_single_trait(connection, t))
            else:
                groups.setdefault(key, []).append(trait)
        for index, group in enumerate(groups.values()):
            self._compute_scan(connection, group, f"personas_scan_{index}")

    def _write_single_trait(self, connection, trait: Any) -> dict[str, Any]:
        from reconciler.engine.compiler import trait_values_select

        if trait.name in self.sql_errors:
            raise ValueError(self.sql_errors[trait.name])
        return self._store_trait(connection, trait, trait_values_select(self.context, trait))

    def _compute_scan(self, connection, group: list[Any], name: str) -> None:
        """Scan the group's events once into a temporary table, then store each trait's values from it."""
        import sqlalchemy as sa

        from reconciler.engine.compiler import build_scan, scan_values
        from reconciler.engine.compiler.functions import CreateTempTableAs
        from reconciler.engine.results import analyze, temp_table

        scan = build_scan(self.context, group)
        table = temp_table(name, "subject_id", *scan.labels.values(), *scan.invalid_labels.values())
        started = time.monotonic()
        try:
            with connection.begin():
                connection.execute(sa.schema.DropTable(table, if_exists=True))
                connection.execute(CreateTempTableAs(name, scan.select))
                analyze(connection, table)
        except Exception as error:  # noqa: BLE001 - every trait of the group fails with the same reason
            for trait in group:
                self._fail(trait, error, time.monotonic() - started)
            return
        share = (time.monotonic() - started) / len(group)
        for trait in group:

            def write(trait=trait):
                details = self._store_trait(connection, trait, scan_values(self.context, scan, table, trait))
                if trait.name in scan.invalid_labels:
                    column = table.c[scan.invalid_labels[trait.name]]
                    with connection.begin():
                        total = connection.execute(sa.select(sa.func.coalesce(sa.func.sum(column), 0))).scalar_one()
                    details["invalid"] = int(total)
                return details

            self._step(trait, write, extra_seconds=share)
        with connection.begin():
            connection.execute(sa.schema.DropTable(table, if_exists=True))

    def _store_trait(self, connection, trait: Any, values) -> dict[str, Any]:
        from reconciler.engine.results import write_trait_values
        from reconciler.spec.models import trait_value_type

        with connection.begin():
            size = write_trait_values(
                connection, trait, self.ids[trait.address], values, trait_value_type(trait.spec),
                self.result.run_id, self.context.as_of,
            )
        self.context.stored_traits[trait.name] = self.ids[trait.address]
        return {"size": size}

    # ----------------------------------------------------------------- audiences

    def _compute_audience(self, connection, audience: Any) -> None:
        blocked = self._failed_upstream(audience)
        if blocked:
            self._skip(audience, f"upstream {blocked} failed")
            return
        self._step(audience, lambda: self._write_audience(connection, audience))

    def _write_audience(self, connection, audience: Any) -> dict[str, Any]:
        import sqlalchemy as sa

        from reconciler.engine.compiler import audience_select
        from reconciler.engine.compiler.functions import CreateTempTableAs
        from reconciler.engine.results import analyze, temp_table, write_members

        table = temp_table("personas_members", "subject_id", "holdout")
        with connection.begin():
            connection.execute(sa.schema.DropTable(table, if_exists=True))
            connection.execute(CreateTempTableAs(table.name, audience_select(self.context, audience)))
            analyze(connection, table)
            size, entered, exited = write_members(
                connection, audience, self.ids[audience.address], table, self.result.run_id, self.context.as_of
            )
            held_out = sa.select(sa.func.count()).select_from(table).where(table.c.holdout)
            holdout = int(connection.execute(held_out).scalar_one())
            connection.execute(sa.schema.DropTable(table, if_exists=True))
        self.context.stored_audiences[audience.name] = self.ids[audience.address]
        log.info("%s: %s members, +%s -%s", audience.address, size, entered, exited)
        return {"size": size, "holdout": holdout, "entered": entered, "exited": exited}

    def _failed_upstream(self, audience: Any) -> str | None:
        from reconciler.engine.selectors import upstream

        failed = {o.address for o in self.result.outcomes if o.status != "ok"}
        for address in sorted(upstream(self.models, audience.address)):
            if address in failed:
                return address
        return None

    # ----------------------------------------------------------------- bookkeeping

    def _step(self, resource: Any, work, extra_seconds: float = 0.0) -> None:
        started = time.monotonic()
        try:
            details = work()
        except Exception as error:  # noqa: BLE001 - one failing resource must not stop the others
            self._fail(resource, error, time.monotonic() - started + extra_seconds)
            return
        outcome = ResourceOutcome(resource.address, self.ids[resource.address], **details)
        outcome.duration_s = time.monotonic() - started + extra_seconds
        self.result.outcomes.append(outcome)

    def _fail(self, resource: Any, error: BaseException, seconds: float) -> None:
        message = _error_text(error)
        log.error("%s failed: %s", resource.address, message)
        self.result.outcomes.append(
            ResourceOutcome(resource.address, self.ids[resource.address], status="failed", duration_s=seconds, error=message)
        )

    def _skip(self, resource: Any, reason: str) -> None:
        log.warning("%s skipped: %s", resource.address, reason)
        self.result.outcomes.append(
            ResourceOutcome(resource.address, self.ids[resource.address], status="skipped", error=reason)
        )


def _error_text(error: BaseException) -> str:
    """Return the first line of a database error, without the SQL statement it carries."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
