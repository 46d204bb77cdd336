"""`personas syncs`: what each audience sent to each destination, run by run.

History is keyed by the stable ids of the audience and the destination, so a
rename keeps one history under the current name, and an audience deleted
and created again under the same name starts a new one. Pairs whose
audience or destination is gone, or that the audience no longer lists, are
shown only with `--all`, marked as deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import click

from reconciler.cli import AppContext, pass_app

_HISTORY = 20
_REJECTED_SHOWN = 20


@click.group("syncs")
def command() -> None:
    """Show syncs of audiences to destinations: changes sent, acknowledged, rejected and held back."""


@command.command("list")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also show pairs of deleted audiences and destinations, marked as deleted.")
@pass_app
def list_(app: AppContext, output_format: str, show_all: bool) -> int:
    """Show the last sync of every audience and destination, with its match rate and last error."""
    project = app.load_project()
    history = _history(project)
    records = [r for r in history.records if show_all or history.is_current(r)]
    sent = _members_sent(project)
    rows = [_summary(record, sent, history.is_current(record)) for record in _latest([history.named(r) for r in records])]
    rows.sort(key=lambda row: (row["audience"], not row["current"], row["destination"]))
    if output_format == "json":
        app.console.print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        app.console.print("No syncs yet: `personas run` syncs audiences that list destinations.")
        return 0
    header = ("AUDIENCE", "DESTINATION", "LAST RUN", "STATUS", "SENT", "ACKED", "REJECTED", "HELD", "MATCH", "LAST ERROR")
    table = [header] + [
        (r["audience"] + ("" if r["current"] else " (deleted)"), r["destination"], r["finished_at"] or "-", r["status"],
         str(r["sent"]), str(r["acknowledged"]), str(r["rejected"]), str(r["held_back"]), _percent(r["match_rate"]), _short(r["last_error"]))
        for r in rows
    ]
    for line in _columns(table):
        app.console.print(line)
    return 0


@command.command("show")
@click.argument("selector", metavar="AUDIENCE[:DESTINATION]")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def show(app: AppContext, selector: str, output_format: str) -> int:
    """Show the recent syncs of one audience (to one destination), newest first."""
    from reconciler.destinations.options import parse_selector
    from reconciler.errors import UsageError

    audience, destination = parse_selector(selector)
    project = app.load_project()
    history = _history(project)
    records = [history.named(record) for record in history.select(audience, destination)][:_HISTORY]
    if not records:
        raise UsageError(f"no syncs of {selector} yet", hint="Run `personas syncs list` to see what was synced.")
    sent = _members_sent(project)
    summaries = [_summary(record, sent, history.is_current(record)) for record in _latest(records)]
    waiting = _rejected_changes(project, summaries)
    for summary in summaries:
        summary["rejected_changes"] = waiting.get((summary["audience_id"], summary["destination_id"]), [])
    if output_format == "json":
        history = [_record_dict(record) for record in records]
        app.console.print(json.dumps({"destinations": summaries, "runs": history}, indent=2, default=str))
        return 0
    for summary in summaries:
        deleted = "" if summary["current"] else " (deleted)"
        app.console.print(f"{summary['audience']} -> {summary['destination']}{deleted}")
        app.console.print(f"  members after holdout              {summary['eligible']}")
        app.console.print(f"  members after holdout and consent  {summary['members']}")
        app.console.print(f"  not consented                      {summary['non_consented']}")
        app.console.print(f"  match rate                         {_percent(summary['match_rate'])}")
        app.console.print(f"  last error                         {summary['last_error'] or '-'}")
        for line in _rejections(summary["rejected_changes"]):
            app.console.print(line)
    app.console.print("")
    header = ("RUN", "FINISHED", "DESTINATION", "STATUS", "+", "-", "~", "SENT", "ACKED", "REJECTED", "HELD")
    table = [header] + [
        (r.run_id, _time(r.finished_at), r.destination, r.status, str(r.entered), str(r.exited), str(r.updated),
         str(r.sent), str(r.acknowledged), str(r.rejected), str(r.held_back))
        for r in records
    ]
    for line in _columns(table):
        app.console.print(line)
    return 0


@dataclass
class _History:
    """Every sync record, newest first, with the current names of the ids that still exist."""

    records: list[Any] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # live audience and destination ids -> current name
    listed: set[tuple[str, str]] = field(default_factory=set)  # (audience id, destination id) the applied specs pair

    def is_current(self, record: Any) -> bool:
        return (record.audience_id, record.destination_id) in self.listed

    def named(self, record: Any) -> Any:
        """Return the record under the current names of its audience and destination."""
        return replace(
            record,
            audience=self.names.get(record.audience_id, record.audience),
            destination=self.names.get(record.destination_id, record.destination),
        )

    def select(self, audience: str, destination: str | None) -> list[Any]:
        """Find the records of AUDIENCE[:DESTINATION]: by the current name's id, else (deleted) by the synced name."""
        audience_id = self._id(audience)
        if audience_id is None:
            found = [r for r in self.records if r.audience == audience and not self.is_current(r)]
        else:
            found = [r for r in self.records if r.audience_id == audience_id]
        if destination is None:
            return found
        destination_id = self._id(destination)
        if destination_id is None:
            return [r for r in found if r.destination == destination and r.destination_id not in self.names]
        return [r for r in found if r.destination_id == destination_id]

    def _id(self, name: str) -> str | None:
        return next((resource_id for resource_id, current in self.names.items() if current == name), None)


def _history(project: Any) -> _History:
    from reconciler.plan.service import open_state

    store = open_state(project)
    try:
        if not store.exists():
            return _History()
        store.check_schema()
        history = _History(records=store.syncs(limit=None))
        resources = store.read().resources
    finally:
        store.close()
    audiences = {r.id: r for r in resources.values() if r.kind == "Audience"}
    destinations = {r.name: r.id for r in resources.values() if r.kind == "Destination"}
    history.names = {r.id: r.name for r in resources.values() if r.kind in ("Audience", "Destination")}
    for audience_id, record in audiences.items():
        for target in (record.spec.get("spec") or {}).get("destinations") or []:
            if target.get("destination") in destinations:
                history.listed.add((audience_id, destinations[target["destination"]]))
    return history


def _members_sent(project: Any) -> dict[tuple[str, str], int] | None:
    """Members each destination holds, from the warehouse; None when the warehouse cannot be read now."""
    from reconciler.destinations.snapshots import members_sent
    from reconciler.engine.warehouse import open_warehouse
    from reconciler.errors import PersonasError

    try:
        with open_warehouse(project) as warehouse:
            return members_sent(warehouse.engine)
    except PersonasError:
        return None


def _rejected_changes(project: Any, summaries: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Read the changes each pair's destination rejected that wait for a content change; empty when unreadable."""
    from reconciler.destinations.snapshots import rejected_changes
    from reconciler.engine.warehouse import open_warehouse
    from reconciler.errors import PersonasError

    pairs = [(summary["audience_id"], summary["destination_id"]) for summary in summaries]
    try:
        with open_warehouse(project) as warehouse:
            return {pair: rejected_changes(warehouse.engine, *pair, limit=_REJECTED_SHOWN) for pair in pairs}
    except PersonasError:
        return {}


def _rejections(changes: list[dict[str, Any]]) -> list[str]:
    if not changes:
        return []
    lines = ["  rejected changes, sent again when their content changes (or with --full-resync):"]
    width = max(len(change["identifier_value"]) for change in changes)
    for change in changes:
        lines.append(f"    {change['change_type']:<8} {change['identifier_value']:<{width}}  {_short(change['reason'], 100)}")
    return lines


def _latest(records: list[Any]) -> list[Any]:
    """Keep the newest record of each (audience id, destination id), in name order."""
    latest: dict[tuple[str, str], Any] = {}
    for record in records:
        latest.setdefault((record.audience_id, record.destination_id), record)
    return sorted(latest.values(), key=lambda record: (record.audience, record.destination, record.audience_id))


def _summary(record: Any, sent: dict[tuple[str, str], int] | None, current: bool) -> dict[str, Any]:
    held = None if sent is None else sent.get((record.audience_id, record.destination_id), 0)
    return {
        "audience": record.audience,
        "destination": record.destination,
        "current": current,
        "audience_id": record.audience_id,
        "destination_id": record.destination_id,
        "run_id": record.run_id,
        "finished_at": _time(record.finished_at),
        "status": record.status,
        "sent": record.sent,
        "acknowledged": record.acknowledged,
        "rejected": record.rejected,
        "held_back": record.held_back,
        "eligible": record.eligible,
        "members": record.members,
        "members_sent": held,
        "non_consented": record.non_consented,
        "match_rate": None if held is None or not record.members else round(held / record.members, 4),
        "last_error": record.error,
    }


def _record_dict(record: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(record)
    for key in ("started_at", "finished_at"):
        data[key] = _time(data[key])
    return data


def _time(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _short(text: str | None, width: int = 60) -> str:
    if not text:
        return "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
