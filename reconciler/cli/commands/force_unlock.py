"""`personas force-unlock LOCK_ID`: remove a lock whose holder is gone."""

from __future__ import annotations

import click

from reconciler.cli import AppContext, pass_app
from reconciler.cli.commands.state import open_project_store
from reconciler.errors import UsageError


@click.command("force-unlock")
@click.argument("lock_id")
@pass_app
def command(app: AppContext, lock_id: str) -> None:
    """Remove the lock LOCK_ID, as named in the message of the command that found the state locked.

    Asks no question. On PostgreSQL it also ends the database session holding
    the lock. An apply still running there cannot write a stale plan, because
    every apply checks the serial.
    """
    if not lock_id.strip():
        raise UsageError("the lock id is empty", hint="Copy the lock id from the message that named the lock.")
    with open_project_store(app) as store:
        removed, ended = store.force_unlock(lock_id)
    app.console.print(f"Removed the {removed.name} lock {removed.id} held by {removed.describe()}.")
    if ended:
        app.console.print("Ended the PostgreSQL session that held it.")
