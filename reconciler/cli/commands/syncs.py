"""`personas syncs`: what each audience sent to each destination, run by run."""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli import AppContext, pass_app

_HISTORY = 20


@click.group("syncs")
def command() -> None:
    """Show syncs of audiences to destinations: changes sent, acknowledged, rejected and held back."""


@command.command("list")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def list_(app: AppContext, output_format: str) -> int:
    """Show the last sync of every audience and destination, with its match rate and last error."""
    project = app.load_project()
    records = _latest(_records(project, None, None, limit=None))
    sent = _members_sent(project)
    rows = [_summary(record, sent) for record in records]
    if output_format == "json":
        app.console.print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        app.console.print("No syncs yet: `personas run` syncs audiences that list destinations.")
        return 0
    header = ("AUDIENCE", "DESTINATION", "LAST RUN", "STATUS", "SENT", "ACKED", "REJECTED", "HELD", "MATCH", "LAST ERROR")
    table = [header] + [
        (r["audience"], r["destination"], r["finished_at"] or "-", r["status"], str(r["sent"]), str(r["acknowledged"]),
         str(r["rejected"]), str(r["held_back"]), _percent(r["match_rate"]), _short(r["last_error"]))
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
    records = _records(project, audience, destination, limit=_HISTORY)
    if not records:
        raise UsageError(f"no syncs of {selector} yet", hint="Run `personas syncs list` to see what was synced.")
    sent = _members_sent(project)
    summaries = [_summary(record, sent) for record in _latest(records)]
    if output_format == "json":
        history = [_record_dict(record) for record in records]
        app.console.print(json.dumps({"destinations": summaries, "runs": history}, indent=2, default=str))
        return 0
    for summary in summaries:
        app.console.print(f"{summary['audience']} -> {summary['destination']}")
        app.console.print(f"  members after holdout and consent  {summary['members']}")
        app.console.print(f"  not consented                      {summary['non_consented']}")
        app.console.print(f"  match rate                         {_percent(summary['match_rate'])}")
        app.console.print(f"  last error                         {summary['last_error'] or '-'}")
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


def _records(project: Any, audience: str | None, destination: str | None, limit: int | None) -> list[Any]:
    from reconciler.plan.service import open_state

    store = open_state(project)
    try:
        if not store.exists():
            return []
        store.check_schema()
        return store.syncs(audience=audience, destination=destination, limit=limit)
    finally:
        store.close()


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


def _latest(records: list[Any]) -> list[Any]:
    """Keep the newest record of each (audience, destination), in name order."""
    latest: dict[tuple[str, str], Any] = {}
    for record in records:
        latest.setdefault((record.audience, record.destination), record)
    return [latest[key] for key in sorted(latest)]


def _summary(record: Any, sent: dict[tuple[str, str], int] | None) -> dict[str, Any]:
    held = None if sent is None else sent.get((record.audience_id, record.destination_id), 0)
    return {
        "audience": record.audience,
        "destination": record.destination,
        "run_id": record.run_id,
        "finished_at": _time(record.finished_at),
        "status": record.status,
        "sent": record.sent,
        "acknowledged": record.acknowledged,
        "rejected": record.rejected,
        "held_back": record.held_back,
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
