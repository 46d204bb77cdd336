"""Computing one trait or audience from the specs on disk, storing nothing.

Upstream traits and audiences are compiled inline as CTEs of the same
query, so nothing is written to the warehouse: every query runs in a
transaction that is rolled back. Identities are not resolved here (`ingest`
and `run` do that), so messages not yet resolved are not counted.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

import sqlalchemy as sa

from reconciler.errors import UsageError, WarehouseError

SAMPLE_SIZE = 20


@dataclass
class AudiencePreview:
    address: str
    as_of: datetime
    size: int
    holdout_size: int
    sample: list[str] = field(default_factory=list)


@dataclass
class TraitPreview:
    address: str
    as_of: datetime
    coverage: int  # subjects with a value
    candidates: int
    invalid: int | None  # aggregation traits: present values that did not parse
    sample: list[tuple[str, Any]] = field(default_factory=list)


def applied_ids(project: Any) -> dict[str, str]:
    """Stable ids of applied resources by address (empty when no state exists): they key holdout hashes."""
    from reconciler.state import open_store

    store = open_store(project.resolve_url(project.settings.state))
    try:
        if not store.exists():
            return {}
        return {address: record.id for address, record in store.read().resources.items()}
    finally:
        store.close()


def disk_context(project: Any, warehouse: Any, as_of: datetime, ids: dict[str, str]) -> Any:
    """Build a compiler context over the specs on disk, with every resource compiled inline."""
    from reconciler.engine.compiler import Context, Relations

    return Context(
        relations=Relations(
            events=warehouse.events(),
            profiles=warehouse.profiles(),
            identifiers=warehouse.identifiers(),
            account_users=warehouse.account_users(),
        ),
        as_of=as_of,
        traits=dict(project.traits),
        audiences=dict(project.audiences),
        resource_ids=ids,
    )


@contextmanager
def read_only(warehouse: Any) -> Iterator[sa.Connection]:
    """Yield a connection whose transaction is always rolled back."""
    with warehouse.engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        except sa.exc.DBAPIError as error:
            raise WarehouseError(
                f"the warehouse could not compute the preview: {_first_line(error)}",
                hint="Check the spec's fields and any `sql` trait's query, and that events are loaded (`personas ingest FILE`).",
            ) from None
        finally:
            transaction.rollback()


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def preview(project: Any, address: str, as_of: datetime) -> AudiencePreview | TraitPreview:
    """Compute the trait or audience at `address` from the specs on disk."""
    from reconciler.engine.warehouse import open_warehouse

    resource = project.resource(address)
    if resource is None or resource.kind not in ("Trait", "Audience"):
        raise UsageError(
            f"{address} is not a trait or audience of this project",
            hint="Give an address such as audience.winback or trait.ltv; `personas validate` lists problems in the specs.",
        )
    ids = applied_ids(project)
    with open_warehouse(project) as warehouse:
        ctx = disk_context(project, warehouse, as_of, ids)
        describe_sql_traits(warehouse, ctx, needed_sql_traits(project, [address]))
        with read_only(warehouse) as connection:
            if resource.kind == "Audience":
                return audience_preview(connection, ctx, resource)
            return trait_preview(connection, ctx, resource)


def needed_sql_traits(project: Any, targets: list[str]) -> list[Any]:
    """The `sql` traits among the target resources and everything upstream of them."""
    from reconciler.engine.selectors import upstream

    resources = {resource.address: resource for resource in project.resources}
    addresses = set(targets)
    for address in targets:
        addresses |= upstream(resources, address)
    return [
        resources[name] for name in sorted(addresses)
        if name in resources and resources[name].kind == "Trait" and resources[name].spec.type == "sql"
    ]


def describe_sql_traits(warehouse: Any, ctx: Any, traits: list[Any]) -> None:
    """Read each `sql` trait's column names, each in its own rolled-back transaction.

    A failing query is left out here, so the preview's own query reports it.
    Separate transactions are needed because DuckDB has no savepoints and
    one failed statement aborts the whole transaction.
    """
    from reconciler.engine.compiler.traits import sql_trait_columns

    for trait in traits:
        with warehouse.engine.connect() as connection:
            transaction = connection.begin()
            try:
                ctx.sql_columns[trait.name] = sql_trait_columns(connection, trait, ctx.as_of)
            except (sa.exc.DBAPIError, ValueError):
                pass
            finally:
                transaction.rollback()


def audience_size(connection: sa.Connection, ctx: Any, audience: Any) -> tuple[int, int]:
    """(members, holdout members) of an audience computed inline."""
    from reconciler.engine.compiler import audience_select

    members = audience_select(ctx, audience).subquery("members")
    query = sa.select(sa.func.count(), sa.func.count(sa.case((members.c.holdout, 1))))
    size, holdout_size = connection.execute(query).one()
    return int(size), int(holdout_size)


def audience_preview(connection: sa.Connection, ctx: Any, audience: Any) -> AudiencePreview:
    from reconciler.engine.compiler import audience_select

    size, holdout_size = audience_size(connection, ctx, audience)
    members = audience_select(ctx, audience).subquery("members")
    sample = connection.execute(
        sa.select(members.c.subject_id).order_by(members.c.subject_id).limit(SAMPLE_SIZE)
    ).scalars().all()
    return AudiencePreview(audience.address, ctx.as_of, size, holdout_size, list(sample))


def trait_preview(connection: sa.Connection, ctx: Any, trait: Any) -> TraitPreview:
    from reconciler.engine.compiler import build_scan, trait_values_select

    values = trait_values_select(ctx, trait).subquery("trait_values")
    coverage = connection.execute(sa.select(sa.func.count()).where(values.c.value.isnot(None))).scalar_one()
    candidates = ctx.candidates(trait.spec.entity).subquery("candidates")
    total = connection.execute(sa.select(sa.func.count()).select_from(candidates)).scalar_one()
    invalid = None
    if trait.spec.type == "aggregation":
        scan = build_scan(ctx, [trait])
        rows = scan.select.subquery("scan")
        column = rows.c[scan.invalid_labels[trait.name]]
        invalid = int(connection.execute(sa.select(sa.func.coalesce(sa.func.sum(column), 0))).scalar_one())
    sample = connection.execute(
        sa.select(values.c.subject_id, values.c.value)
        .where(values.c.value.isnot(None))
        .order_by(values.c.subject_id)
        .limit(SAMPLE_SIZE)
    ).all()
    return TraitPreview(trait.address, ctx.as_of, int(coverage), int(total), invalid, [tuple(row) for row in sample])
