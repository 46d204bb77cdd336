"""`personas apply [PLANFILE]`: make the applied state match the specs, under the state lock."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli import AppContext, pass_app
from reconciler.errors import UsageError

_PAST = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted", "move": "moved"}
CONFIRM = "Do you want to apply these changes? Only 'yes' will be accepted:"


@click.command("apply")
@click.argument("planfile", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--auto-approve", is_flag=True,
    help="Apply without asking for confirmation (needed without a terminal, as in CI). Applying a PLANFILE never prompts.",
)
@click.option(
    "--lock-timeout", default="0s", show_default=True, metavar="DURATION",
    help="How long to wait for the state lock, such as 60s; 0s fails at once when another apply holds it.",
)
@pass_app
def command(app: AppContext, planfile: Path | None, auto_approve: bool, lock_timeout: str) -> int:
    """Apply the changes of a fresh plan, or exactly those of PLANFILE, in one transaction.

    Without PLANFILE, apply shows a fresh plan and prompts for confirmation.
    With PLANFILE, the saved plan is the approval, so there is no prompt; apply
    still takes the state lock and rejects a stale plan.
    """
    from reconciler.plan.render_json import read_plan
    from reconciler.plan.service import open_state

    timeout = _seconds(lock_timeout)
    saved = read_plan(planfile) if planfile is not None else None
    project = app.load_project()
    store = open_state(project)
    try:
        if not store.exists():
            store.initialize()
        with store.lock(name="state", operation="apply", timeout=timeout):
            return _plan_and_apply(app, project, store, saved, auto_approve)
    finally:
        store.close()


def _plan_and_apply(app: AppContext, project: Any, store: Any, saved: Any, auto_approve: bool) -> int:
    """Under the lock: plan (or check the saved plan), show it, confirm, run the apply steps."""
    from reconciler.cli.commands.plan import print_plan
    from reconciler.plan.apply import ApplyContext, check_saved_plan, run_steps
    from reconciler.plan.service import make_plan, read_state

    snapshot = read_state(store)
    plan, desired = make_plan(
        project, store, snapshot,
        targets=saved.targets if saved else (), excludes=saved.excludes if saved else (),
    )
    if saved is not None:
        check_saved_plan(saved, plan)
    if plan.is_empty:
        from reconciler.plan.render_text import no_changes_text

        message = "No changes. The applied state matches the specs; nothing to apply."
        app.console.print(message if not plan.unplanned else f"{no_changes_text(plan)} Nothing to apply.")
        return 0

    print_plan(app, plan, "text")
    approved = auto_approve or saved is not None  # a reviewed, saved plan is the approval
    if not approved and not _confirmed(app):
        app.console.print("Apply cancelled; nothing was written.")
        return 1

    context = ApplyContext(
        plan=plan, desired=desired, snapshot=snapshot, store=store, env=os.environ,
        project_root=Path(project.root), saved=saved,
    )
    serial = run_steps(context)
    counts = plan.summary
    done = ", ".join(f"{counts[action]} {past}" for action, past in _PAST.items())
    identity = " Identity rules recorded." if plan.identity_change else ""
    app.console.print(
        app.console.style(f"Apply complete: {done}.{identity} State serial is now {serial}.", fg="green", bold=True)
    )
    return 0


def _confirmed(app: AppContext) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(
            "apply asks for confirmation, and there is no terminal to ask on",
            hint="Pass --auto-approve to apply without asking (review the plan first with `personas plan`).",
        )
    app.console.print("")
    app.console.print(CONFIRM + " ", nl=False)
    try:
        answer = sys.stdin.readline().strip()
    except KeyboardInterrupt:
        # Ctrl-C at the prompt is a "no": nothing has been written yet.
        app.console.print("")
        return False
    return answer == "yes"


def _seconds(text: str) -> float:
    from reconciler.spec.types import parse_duration_seconds

    try:
        return float(parse_duration_seconds(text))
    except ValueError as error:
        raise UsageError(f"--lock-timeout: {error}", hint="Write it like 0s, 60s or 5m.") from None
