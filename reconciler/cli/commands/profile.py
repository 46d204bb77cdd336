"""`personas profile`: look at one person's profile (`show`); erasing one is `delete`."""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.cli import AppContext, pass_app


@click.group("profile")
def command() -> None:
    """Look up a profile by any of its identifiers."""


@command.command("show")
@click.argument("identifier")
@click.option("--type", "identifier_type", metavar="TYPE", help="Identifier type of IDENTIFIER (user_id, email, ...), when it is ambiguous.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def show(app: AppContext, identifier: str, identifier_type: str | None, output_format: str) -> int:
    """Show the profile holding IDENTIFIER: identifiers, merges, accounts, traits and audiences.

    IDENTIFIER is matched after the normalisation its type uses (emails ignore
    case and surrounding spaces); a profile id (p_...) works as well.
    """
    from reconciler.engine.profiles import describe_profile, find_profile
    from reconciler.engine.warehouse import open_warehouse

    project = app.load_project()
    with open_warehouse(project) as warehouse:
        profile_id = find_profile(warehouse, identifier, identifier_type)
        details = describe_profile(warehouse, profile_id)
    if output_format == "json":
        app.console.print(json.dumps(details.to_dict(), indent=2, default=str))
    else:
        for line in profile_lines(details):
            app.console.print(line)
    return 0


def profile_lines(details: Any) -> list[str]:
    """Return the lines `profile show` prints for a profile."""
    first_seen = details.to_dict()["first_seen"] or "-"
    lines = [f"Profile {details.profile_id}", f"  first seen  {first_seen}", "", "Identifiers:"]
    for item in details.identifiers:
        lines.append(f"  {item['type']:<14} {item['value']}  (seen {item['first_seen']} .. {item['last_seen']})")
    if details.accounts:
        lines += ["", "Accounts:"] + [f"  {account}" for account in details.accounts]
    lines += ["", "Merges:"]
    if not details.merges:
        lines.append("  none")
    for merge in details.merges:
        lines.append("  " + _merge_line(details.profile_id, merge))
    lines += ["", "Traits:"]
    if details.traits is None:
        lines.append("  none computed yet (run `personas run`)")
    else:
        lines += [f"  {item['trait']} = {json.dumps(item['value'], default=str)}" for item in details.traits] or ["  none"]
    lines += ["", "Audiences:"]
    if details.audiences is None:
        lines.append("  none computed yet (run `personas run`)")
    else:
        lines += [
            f"  {item['audience']}" + ("  (holdout)" if item["holdout"] else "") for item in details.audiences
        ] or ["  member of none"]
    return lines


def _merge_line(profile_id: str, merge: dict[str, Any]) -> str:
    values = ", ".join(f"{item['type']}={item['value']}" for item in merge["identifiers"])
    when = f"at {merge['message_timestamp']}, message {merge['message_id']}"
    if merge["refused"]:
        return f"refused: {merge['reason']} ({values}; {when})"
    if merge["survivor_profile_id"] == profile_id:
        return f"merged {merge['merged_profile_id']} into this profile ({values}; {when})"
    return f"merged into {merge['survivor_profile_id']} ({values}; {when})"


def _register_delete() -> None:
    from reconciler.cli.commands._profile_delete import delete

    command.add_command(delete)


_register_delete()
