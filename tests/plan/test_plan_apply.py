"""plan, show and apply end to end, on real SQLite and PostgreSQL state stores."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import dump_state
from .shapes import AUDIENCES, DESTINATIONS, SECRETS, TRAITS, write_all

NO_CHANGES = "No changes. The applied state matches the specs.\n"

ORDERS = """
apiVersion: personas/v1
kind: Trait
metadata: {{name: {name}{extra}}}
spec: {{type: event_counter, event: Order Completed, window: {window}}}
"""

BUYERS = """
apiVersion: personas/v1
kind: Audience
metadata: {name: buyers}
spec:
  include: {trait: orders, gt: 0}
"""


def orders(name: str = "orders", window: str = "30d", extra: str = "") -> str:
    return ORDERS.format(name=name, window=window, extra=extra)


def apply(project, *args: str, env: dict[str, str] | None = None):
    result = project.run("apply", "--auto-approve", *args, env=env)
    assert result.exit_code == 0, result.output
    return result


def test_plan_after_apply_is_empty(project):
    write_all(project)
    apply(project, env=SECRETS)
    result = project.run("plan", "--detailed-exitcode", env=SECRETS)
    assert (result.exit_code, result.stdout, result.stderr) == (0, NO_CHANGES, "")


def test_detailed_exit_codes(project):
    project.write("traits/orders.yaml", orders())
    assert project.run("plan", "--detailed-exitcode").exit_code == 2
    assert project.run("plan").exit_code == 0
    apply(project)
    assert project.run("plan", "--detailed-exitcode").exit_code == 0
    project.write("traits/orders.yaml", "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: orders}\nspec: {type: nope}\n")
    assert project.run("plan", "--detailed-exitcode").exit_code == 1
    assert project.run("plan", "--no-such-option").exit_code == 1


def test_plan_text_shows_fields_and_summary(project):
    project.write("traits/orders.yaml", orders())
    project.write("audiences/buyers.yaml", BUYERS)
    apply(project)
    project.write("traits/orders.yaml", orders(window="45d"))
    result = project.run("plan")
    assert result.stdout == (
        "To update (1):\n"
        "  ~ trait.orders  (traits/orders.yaml)\n"
        "      1 field changed\n"
        '      ~ spec.window.from: "30d" -> "45d"\n'
        "      downstream: audience.buyers\n"
        "\n"
        "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 to move.\n"
    )


def test_set_order_ignored_identity_order_kept(project):
    write_all(project)
    apply(project, env=SECRETS)
    swapped = AUDIENCES.replace(
        "    - destination: crm_webhook\n      identifier: email\n      traits: [ltv, orders_90d]\n      send_updates: true\n"
        "    - {destination: exports, identifier: user_id, identifier_values: all}\n",
        "    - {destination: exports, identifier: user_id, identifier_values: all}\n"
        "    - destination: crm_webhook\n      identifier: email\n      traits: [orders_90d, ltv]\n      send_updates: true\n",
    )
    assert swapped != AUDIENCES
    project.write("audiences/all.yaml", swapped)
    project.write("destinations/all.yaml", DESTINATIONS.replace("consent: [email_opt_in]", "consent: [email_opt_in, email_opt_in]"))
    assert project.run("plan", "--detailed-exitcode", env=SECRETS).exit_code == 0

    identity = project.root.joinpath("personas.yaml").read_text()
    project.write(
        "personas.yaml",
        identity.replace("    - {type: user_id, limit: 1}\n", "").replace(
            "    - {type: anonymous_id, limit: 50}\n", "    - {type: anonymous_id, limit: 50}\n    - {type: user_id, limit: 1}\n"
        ),
    )
    result = project.run("plan", "--detailed-exitcode", env=SECRETS)
    assert result.exit_code == 2
    assert result.stdout.endswith(
        "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to move.\n"
        "Identity rules change: every audience is affected; the next run re-resolves identities from scratch.\n"
    )
    apply(project, env=SECRETS)
    assert project.run("plan", "--detailed-exitcode", env=SECRETS).exit_code == 0


@pytest.mark.parametrize("applied_form", ['description: ""', "description:", ""])
def test_empty_null_and_missing_description_plan_empty(project, applied_form):
    forms = ['description: ""', "description:", ""]
    template = "apiVersion: personas/v1\nkind: Trait\nmetadata:\n  name: orders\n  {form}\nspec: {{type: event_counter, event: A}}\n"
    project.write("traits/orders.yaml", template.format(form=applied_form))
    apply(project)
    for form in forms:
        project.write("traits/orders.yaml", template.format(form=form))
        result = project.run("plan", "--detailed-exitcode")
        assert (form, result.exit_code, result.stdout) == (form, 0, NO_CHANGES)


def test_plan_writes_nothing(project):
    project.write("traits/orders.yaml", orders())
    result = project.run("plan")
    assert result.exit_code == 0
    store = project.store()
    try:
        assert not store.exists()
    finally:
        store.close()
    if project.state_url.startswith("sqlite"):
        assert not project.root.parent.joinpath("state").exists()

    apply(project)
    project.write("traits/orders.yaml", orders(window="45d"))
    store = project.store()
    try:
        rows_before = dump_state(store)
    finally:
        store.close()
    if project.state_url.startswith("sqlite"):
        path = project.root.parent / "state" / "state.db"
        bytes_before, mtime_before = path.read_bytes(), path.stat().st_mtime_ns
    assert project.run("plan", "--out", str(project.root / "plan.json")).exit_code == 0
    store = project.store()
    try:
        assert dump_state(store) == rows_before
    finally:
        store.close()
    if project.state_url.startswith("sqlite"):
        assert path.read_bytes() == bytes_before
        assert path.stat().st_mtime_ns == mtime_before


def test_saved_plan_applies_exactly_and_records_the_audit(project):
    project.write("traits/orders.yaml", orders())
    planfile = project.root / "plan.json"
    result = project.run("plan", "--out", str(planfile), "--format", "markdown")
    assert result.stdout.startswith("### personas plan\n")
    saved = json.loads(planfile.read_text())
    assert saved["format_version"] == 1
    assert [c["address"] for c in saved["resource_changes"]] == ["trait.orders"]

    shown = project.run("show", str(planfile))
    assert shown.exit_code == 0
    assert "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 to move." in shown.stdout

    result = apply(project, str(planfile))
    assert result.stdout.endswith(
        "Apply complete: 1 created, 0 updated, 0 replaced, 0 deleted, 0 moved. Identity rules recorded. "
        "State serial is now 1.\n"
    )
    store = project.store()
    try:
        (entry,) = store.audit_log()
        snapshot = store.read()
    finally:
        store.close()
    assert (entry.serial_before, entry.serial_after) == (0, 1)
    assert entry.plan["resource_changes"][0]["address"] == "trait.orders"
    assert entry.user
    assert entry.host
    assert (entry.git_commit, entry.git_branch) == (None, None)  # the project is not in a repository
    assert list(snapshot.resources) == ["trait.orders"]


def test_stale_saved_plan_is_refused_naming_the_serial(project):
    project.write("traits/orders.yaml", orders())
    apply(project)
    project.write("traits/orders.yaml", orders(window="45d"))
    planfile = project.root / "plan.json"
    project.run("plan", "--out", str(planfile))
    apply(project)
    result = project.run("apply", "--auto-approve", str(planfile))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the saved plan is stale: it was made at state serial 1, and the state is now at serial 2 "
        "(someone applied in between)\n"
        "Make a new plan and review it: `personas plan --out FILE`.\n"
    )


def test_saved_plan_is_refused_when_specs_changed(project):
    project.write("traits/orders.yaml", orders())
    project.write("audiences/buyers.yaml", BUYERS)
    planfile = project.root / "plan.json"
    project.run("plan", "--out", str(planfile))
    project.write("traits/orders.yaml", orders(window="45d"))
    result = project.run("apply", "--auto-approve", str(planfile))
    assert result.exit_code == 1
    assert "Error: the saved plan is stale: the specs changed since it was made (trait.orders)\n" in result.stderr
    store = project.store()
    try:
        assert store.read().resources == {}
    finally:
        store.close()


def test_show_rejects_non_plan_file(project):
    project.write("notaplan.json", '{"hello": "world"}')
    result = project.run("show", str(project.root / "notaplan.json"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {project.root / 'notaplan.json'} is not a personas plan\n")


def test_targeted_saved_plan_records_and_keeps_its_targets(project):
    project.write("traits/orders.yaml", orders())
    project.write("audiences/buyers.yaml", BUYERS)
    planfile = project.root / "plan.json"
    project.run("plan", "--out", str(planfile), "--target", "trait.*")
    assert json.loads(planfile.read_text())["targets"] == ["trait.*"]
    apply(project, str(planfile))
    result = project.run("plan")
    assert "Plan: 1 to create, 0 to update" in result.stdout
    assert "audience.buyers" in result.stdout


def test_rename_through_previous_names_keeps_id_and_history(project):
    project.write("traits/orders.yaml", orders())
    apply(project)
    store = project.store()
    try:
        original = store.read().resources["trait.orders"].id
    finally:
        store.close()
    project.remove("traits/orders.yaml")
    project.write("traits/purchases.yaml", orders(name="purchases", extra=", previous_names: [orders]"))
    result = project.run("plan")
    assert "  > trait.orders -> trait.purchases  (traits/purchases.yaml)\n" in result.stdout
    assert "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 1 to move." in result.stdout
    apply(project)
    store = project.store()
    try:
        snapshot = store.read()
        history = store.history("trait.purchases")
    finally:
        store.close()
    assert list(snapshot.resources) == ["trait.purchases"]
    assert snapshot.resources["trait.purchases"].id == original
    assert [(v.action, v.id) for v in history][-1] == ("move", original)
    assert project.run("plan", "--detailed-exitcode").exit_code == 0


def test_protected_delete_rejected_without_file(project):
    project.write("traits/orders.yaml", orders(extra=", protected: true"))
    apply(project)
    project.remove("traits/orders.yaml")
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = project.run(*command)
        assert result.exit_code == 1
        assert result.stderr == (
            "Error: trait.orders is protected and cannot be deleted (last applied from traits/orders.yaml)\n"
            "To go ahead: restore trait.orders in traits/orders.yaml with `protected: false`, apply, then delete it.\n"
        )
    project.write("traits/orders.yaml", orders())
    apply(project)
    project.remove("traits/orders.yaml")
    assert "Plan: 0 to create, 0 to update, 0 to replace, 1 to delete" in apply(project).stdout


def test_interrupted_apply_leaves_the_state_intact(project, monkeypatch):
    from reconciler.plan import apply as apply_module
    from reconciler.state.records import AppliedChange

    project.write("traits/orders.yaml", orders())
    apply(project)
    store = project.store()
    try:
        before = dump_state(store)
    finally:
        store.close()

    real = apply_module.applied_changes

    def with_a_failing_last_change(*args, **kwargs):
        # The extra change updates an address the state lacks, so the writer fails after writing the others.
        ghost = AppliedChange(action="update", address="trait.ghost", kind="Trait", name="ghost", spec={}, spec_hash="0")
        return real(*args, **kwargs) + [ghost]

    monkeypatch.setattr(apply_module, "applied_changes", with_a_failing_last_change)
    project.write("traits/orders.yaml", orders(window="45d"))
    project.write("audiences/buyers.yaml", BUYERS)
    result = project.run("apply", "--auto-approve")
    assert result.exit_code == 1
    assert "Error: cannot update trait.ghost" in result.stderr
    store = project.store()
    try:
        after = dump_state(store)
    finally:
        store.close()
    assert {name: rows for name, rows in after.items() if name != "locks"} == {
        name: rows for name, rows in before.items() if name != "locks"
    }


def test_apply_without_a_terminal_needs_auto_approve(project):
    project.write("traits/orders.yaml", orders())
    result = project.run("apply")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: apply asks for confirmation, and there is no terminal to ask on\n"
        "Pass --auto-approve to apply without asking (review the plan first with `personas plan`).\n"
    )


def test_saved_plan_applies_without_prompt(project):
    project.write("traits/orders.yaml", orders())
    planfile = project.root / "plan.json"
    assert project.run("plan", "--out", str(planfile)).exit_code == 0
    result = project.run("apply", str(planfile))
    assert result.exit_code == 0, result.output
    assert "Do you want to apply" not in result.stdout
    assert result.stdout.endswith(
        "Apply complete: 1 created, 0 updated, 0 replaced, 0 deleted, 0 moved. Identity rules recorded. "
        "State serial is now 1.\n"
    )
    store = project.store()
    try:
        assert list(store.read().resources) == ["trait.orders"]
    finally:
        store.close()


def test_stale_saved_plan_rejected_without_prompt(project):
    project.write("traits/orders.yaml", orders())
    planfile = project.root / "plan.json"
    project.run("plan", "--out", str(planfile))
    apply(project)
    result = project.run("apply", str(planfile))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the saved plan is stale: it was made at state serial 0")


def test_apply_with_nothing_to_do_exits_zero(project):
    project.write("traits/orders.yaml", orders())
    apply(project)
    result = apply(project)
    assert result.stdout == "No changes. The applied state matches the specs; nothing to apply.\n"


def test_apply_stops_before_writing_on_an_unset_variable(project):
    write_all(project)
    result = project.run("apply", "--auto-approve", env={"CRM_TOKEN": "tok_live_FAKE123"})
    assert result.exit_code == 1
    assert "Error: apply needs these environment variables, which are not set: CRM_SIGNING_SECRET (in destination.crm_webhook spec.signing_secret); TABLE_PASSWORD (in destination.member_table spec.url)\n" in result.stderr
    store = project.store()
    try:
        assert store.read().serial == 0
    finally:
        store.close()


def test_lock_held_fails_at_once_naming_the_holder(project):
    project.write("traits/orders.yaml", orders())
    apply(project)
    project.write("traits/orders.yaml", orders(window="45d"))
    store = project.store()
    try:
        with store.lock(operation="apply"):
            result = project.run("apply", "--auto-approve")
    finally:
        store.close()
    assert result.exit_code == 1
    assert re.fullmatch(
        r"Error: the state is locked by \S+ \(pid \d+, apply\) since \S+Z; lock id (\S+)\n"
        r"Wait and retry, pass --lock-timeout to wait for it, or run `personas force-unlock \1` if that process is gone\.\n",
        result.stderr,
    ), result.stderr


def test_deleting_an_audience_lists_the_members_destinations_hold(project):
    from datetime import datetime, timezone

    from reconciler.state.records import SyncRecord

    project.write("audiences/buyers.yaml", BUYERS.replace(
        "  include: {trait: orders, gt: 0}\n",
        "  include: {trait: orders, gt: 0}\n  destinations: [{destination: exports, identifier: email}]\n",
    ))
    project.write("traits/orders.yaml", orders())
    project.write("destinations/exports.yaml", "apiVersion: personas/v1\nkind: Destination\nmetadata: {name: exports}\nspec: {type: file, path: out}\n")
    apply(project)
    store = project.store()
    try:
        ids = {address: record.id for address, record in store.read().resources.items()}
        at = datetime(2026, 3, 1, tzinfo=timezone.utc)
        for run_id, members in (("run-1", 90), ("run-2", 1234)):
            store.start_run(run_id, at, [])
            store.record_sync(SyncRecord(
                run_id=run_id, audience="buyers", audience_id=ids["audience.buyers"], destination="exports",
                destination_id=ids["destination.exports"], started_at=at, finished_at=at, status="ok", members=members,
            ))
            store.finish_run(run_id, "ok", [])
    finally:
        store.close()
    project.remove("audiences/buyers.yaml")
    result = project.run("plan")
    assert result.stdout == (
        "To delete (1):\n"
        "  - audience.buyers  (audiences/buyers.yaml)\n"
        "      no longer in the specs (last applied from audiences/buyers.yaml)\n"
        "      downstream: feeding destination.exports\n"
        "      audience.buyers -> destination.exports holds 1,234 members; the next run sends their exits\n"
        "\n"
        "Plan: 0 to create, 0 to update, 0 to replace, 1 to delete, 0 to move.\n"
    )


def test_rename_with_an_entity_change_is_a_replace(project):
    project.write("traits/orders.yaml", orders())
    apply(project)
    project.remove("traits/orders.yaml")
    project.write(
        "traits/purchases.yaml",
        "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: purchases, previous_names: [orders]}\n"
        "spec: {entity: account, type: event_counter, event: Order Completed, window: 30d}\n",
    )
    result = project.run("plan")
    assert "  -/+ trait.orders -> trait.purchases  (traits/purchases.yaml)\n" in result.stdout
    assert "Plan: 0 to create, 0 to update, 1 to replace, 0 to delete, 0 to move." in result.stdout
    apply(project)
    store = project.store()
    try:
        snapshot = store.read()
        history = store.history("trait.purchases")
    finally:
        store.close()
    assert list(snapshot.resources) == ["trait.purchases"]
    assert [version.action for version in history][-2:] == ["move", "replace"]
    assert project.run("plan", "--detailed-exitcode").exit_code == 0


def test_plan_out_to_a_missing_folder_is_an_error(project):
    project.write("traits/orders.yaml", orders())
    result = project.run("plan", "--out", str(project.root / "missing" / "plan.json"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write the plan to {project.root / 'missing' / 'plan.json'}: ")


def test_audit_records_git_commit_and_branch(project):
    import subprocess

    def git(*args: str) -> str:
        env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "a",
               "GIT_COMMITTER_EMAIL": "a@example.com", "PATH": "/usr/bin:/bin"}
        return subprocess.run(["git", "-C", str(project.root), *args], env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    project.write("traits/orders.yaml", orders())
    git("init", "-q", "-b", "audiences")
    git("add", ".")
    git("commit", "-q", "-m", "Add orders")
    apply(project)
    store = project.store()
    try:
        (entry,) = store.audit_log()
    finally:
        store.close()
    assert entry.git_commit == git("rev-parse", "HEAD")
    assert entry.git_branch == "audiences"


@pytest.mark.parametrize("example", ["cdnow", "shop"])
def test_plan_after_apply_is_empty_for_examples(project, example):
    import shutil
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "specs" / example
    shutil.copytree(source, project.root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".personas", "data"))
    apply(project)
    result = project.run("plan", "--detailed-exitcode")
    assert (result.exit_code, result.stdout) == (0, NO_CHANGES)
