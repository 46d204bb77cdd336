"""`personas state list | show ADDRESS | history [ADDRESS] | upgrade`: inspect and upgrade the applied state."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from reconciler.cli import AppContext, pass_app
from reconciler.errors import UsageError
from reconciler.plan.secrets import masked
from reconciler.state.records import IDENTITY_ADDRESS, ResourceRecord, VersionRecord, format_time

FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format; json suits scripts.",
)


def open_project_store(app: AppContext):
    """Open the state store named by the project's `state:` setting."""
    from reconciler.state import open_store

    project = app.load_settings()
    return open_store(project.resolve_url(project.settings.state))


@click.group("state")
def command() -> None:
    """Inspect the applied state, or upgrade its schema."""


@command.command("list")
@FORMAT_OPTION
@pass_app
def list_(app: AppContext, output_format: str) -> None:
    """List applied resources and who applied them."""
    with open_project_store(app) as store:
        store.check_schema()
        snapshot = store.read()
    records = ([snapshot.identity] if snapshot.identity else []) + list(snapshot.resources.values())
    if output_format == "json":
        document = {"lineage": snapshot.lineage, "serial": snapshot.serial, "resources": [_summary(r) for r in records]}
        app.console.print(json.dumps(document, indent=2))
        return
    if not records:
        app.console.print("The state is empty: nothing has been applied yet.")
        return
    header = ("ADDRESS", "KIND", "VERSION", "PROTECTED", "APPLIED AT", "APPLIED BY")
    rows = [
        (r.address, r.kind, str(r.version), "yes" if r.protected else "no", format_time(r.applied_at), r.applied_by)
        for r in records
    ]
    _print_table(app, header, rows)
    app.console.print(f"\nSerial {snapshot.serial}, lineage {snapshot.lineage}.")


@command.command("show")
@click.argument("address")
@FORMAT_OPTION
@pass_app
def show(app: AppContext, address: str, output_format: str) -> None:
    """Show the applied spec of ADDRESS.

    ADDRESS is kind.name, such as audience.vip, or project.identity. Also
    shows its id, version, source file and previous names.
    """
    check_address(address)
    with open_project_store(app) as store:
        store.check_schema()
        snapshot = store.read()
        record = snapshot.identity if address == IDENTITY_ADDRESS else snapshot.resources.get(address)
        if record is None:
            raise _not_in_state(address, store.history(address), snapshot.resources)
    if output_format == "json":
        app.console.print(json.dumps({**_summary(record), "spec_hash": record.spec_hash, "spec": masked(record.spec)}, indent=2))
        return
    fields = [
        ("id", record.id),
        ("kind", record.kind),
        ("version", str(record.version)),
        ("protected", "yes" if record.protected else "no"),
        ("source file", record.source_file or "-"),
        ("previous names", ", ".join(record.previous_names) or "-"),
        ("applied at", format_time(record.applied_at)),
        ("applied by", record.applied_by),
    ]
    app.console.print(f"# {record.address}", bold=True)
    for label, value in fields:
        app.console.print(f"{label + ':':<16}{value}")
    app.console.print()
    app.console.print(_yaml(masked(record.spec)), nl=False)


@command.command("history")
@click.argument("address", required=False)
@FORMAT_OPTION
@pass_app
def history(app: AppContext, address: str | None, output_format: str) -> None:
    """List applied versions, oldest first.

    With ADDRESS, lists only that resource's versions, following it across
    renames and replaces.
    """
    if address is not None:
        check_address(address)
    with open_project_store(app) as store:
        store.check_schema()
        versions = store.history(address)
    if address is not None and not versions:
        raise UsageError(f"{address} has never been applied", hint="Run `personas state list` to see applied addresses.")
    if output_format == "json":
        app.console.print(json.dumps([_version(v) for v in versions], indent=2))
        return
    if not versions:
        app.console.print("The state is empty: nothing has been applied yet.")
        return
    header = ("SERIAL", "ADDRESS", "VERSION", "ACTION", "APPLIED AT", "APPLIED BY", "NOTE")
    rows = [
        (str(v.serial), v.address, str(v.version), v.action, format_time(v.applied_at), v.applied_by, _note(v))
        for v in versions
    ]
    _print_table(app, header, rows)


@command.command("upgrade")
@pass_app
def upgrade(app: AppContext) -> None:
    """Migrate the state store to the current schema.

    Runs in one transaction and keeps every row. Back up the store first if
    you may need to go back to an older personas.
    """
    with open_project_store(app) as store:
        before, after = store.upgrade()
        where = store.where
    if after == 0:
        app.console.print(f"There is no state store at {where} yet; `personas apply` creates it. Nothing to upgrade.")
    elif before == after:
        app.console.print(f"The state store at {where} is already at schema version {after}.")
    else:
        app.console.print(f"Upgraded the state store at {where} from schema version {before} to {after}.")


def _summary(record: ResourceRecord) -> dict[str, Any]:
    return {
        "address": record.address,
        "id": record.id,
        "kind": record.kind,
        "name": record.name,
        "version": record.version,
        "protected": record.protected,
        "previous_names": record.previous_names,
        "source_file": record.source_file,
        "applied_at": record.applied_at.isoformat(),
        "applied_by": record.applied_by,
    }


def _version(version: VersionRecord) -> dict[str, Any]:
    return {
        "serial": version.serial,
        "address": version.address,
        "id": version.id,
        "kind": version.kind,
        "version": version.version,
        "action": version.action,
        "previous_address": version.previous_address,
        "replaced_id": version.replaced_id,
        "applied_at": version.applied_at.isoformat(),
        "applied_by": version.applied_by,
        "spec_hash": version.spec_hash,
        "spec": masked(version.spec),
    }


def _note(version: VersionRecord) -> str:
    if version.previous_address:
        return f"from {version.previous_address}"
    if version.replaced_id:
        return f"new id, replaces {version.replaced_id}"
    return ""


_ADDRESS_RE = re.compile(r"^(trait|audience|destination)\.[a-z][a-z0-9_]{0,62}$")


def check_address(address: str) -> None:
    """Raise UsageError for text that cannot be an address, such as `trait.*` or `nope`."""
    if address != IDENTITY_ADDRESS and not _ADDRESS_RE.match(address):
        raise UsageError(
            f"{address!r} is not a valid address",
            hint="Write kind.name, such as audience.winback, trait.ltv or project.identity; `personas state list` lists them.",
        )


def _not_in_state(address: str, versions: list[VersionRecord], resources: dict[str, ResourceRecord]) -> UsageError:
    """Name where an address went: renamed, deleted, or never applied."""
    if versions:
        last_id = versions[-1].id
        moved_to = next((r.address for r in resources.values() if r.id == last_id), None)
        if moved_to:
            return UsageError(f"{address} is not in the state: it was renamed to {moved_to}", hint=f"Run `personas state show {moved_to}`.")
        if versions[-1].action == "delete":
            return UsageError(
                f"{address} is not in the state: it was deleted at serial {versions[-1].serial}",
                hint=f"Run `personas state history {address}` to see its versions.",
            )
    return UsageError(f"{address} is not in the state", hint="Run `personas state list` to see applied addresses.")


def _print_table(app: AppContext, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        app.console.print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def _yaml(document: dict[str, Any]) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()
