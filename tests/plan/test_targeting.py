"""--target and --exclude keep the references of what they select intact."""

from __future__ import annotations

import json

import pytest

from reconciler.errors import PermanentError
from reconciler.plan.diff import build_plan
from reconciler.plan.render_text import render_text

from .factories import applied, audience, desired, fake_digest, trait, webhook

SCOPE = (
    "Warning: This plan covers only the addresses matching --target/--exclude and the changes they need; "
    "other changes wait for a later apply."
)


def plan_for(state, snapshot, **options):
    return build_plan(state, snapshot, env={}, digest=fake_digest, personas_version="test", **options)


def uses(name: str) -> dict:
    return {"trait": name, "gt": 0}


def test_targeted_audience_pulls_in_new_trait():
    before = desired(trait("other"))
    after = desired(trait("other", window="7d"), trait("t_new"), audience("aud_x", uses("t_new")))
    plan = plan_for(after, applied(before), targets=["audience.aud_x"])
    assert [(c.action, c.address, c.included_by) for c in plan.resource_changes] == [
        ("create", "audience.aud_x", ()),
        ("create", "trait.t_new", ("audience.aud_x",)),
    ]
    assert plan.unplanned == 1
    assert "      included because audience.aud_x depends on it\n" in render_text(plan)


def test_target_pulls_in_dependencies_transitively():
    before = desired(trait("kept"))
    after = desired(
        trait("kept"),
        trait("t_new"),
        audience("aud_y", {"all": [uses("t_new"), uses("kept")]}),
        audience("aud_x", {"audience": "aud_y"}, destinations=[{"destination": "crm", "identifier": "email"}]),
        webhook("crm"),
        webhook("unused"),
    )
    plan = plan_for(after, applied(before), targets=["audience.aud_x"])
    assert [(c.address, c.included_by) for c in plan.resource_changes] == [
        ("audience.aud_x", ()),
        ("audience.aud_y", ("audience.aud_x",)),
        ("destination.crm", ("audience.aud_x",)),
        ("trait.t_new", ("audience.aud_x",)),
    ]
    assert plan.unplanned == 1


def test_shared_dependency_names_both_targets():
    after = desired(trait("t_new"), audience("a", uses("t_new")), audience("b", uses("t_new")))
    plan = plan_for(after, applied(desired()), targets=["audience.*"])
    assert plan.resource_changes[-1].included_by == ("audience.a", "audience.b")
    assert "      included because audience.a, audience.b depend on it\n" in render_text(plan)


def test_targeted_delete_of_used_trait_refused():
    before = desired(trait("t"), audience("a", uses("t")))
    after = desired(audience("a", {"event": "A"}))
    with pytest.raises(PermanentError) as caught:
        plan_for(after, applied(before), targets=["trait.t"])
    assert str(caught.value) == "trait.t cannot be deleted on its own: audience.a outside the targets still references it"
    assert caught.value.hint == (
        "Target them too (--target audience.a), or change them to stop using it and apply that first."
    )
    plan = plan_for(after, applied(before), targets=["trait.t", "audience.a"])
    assert [(c.action, c.address) for c in plan.resource_changes] == [("update", "audience.a"), ("delete", "trait.t")]


def test_targeted_rename_of_used_trait_refused():
    before = desired(trait("t_a"), audience("a", uses("t_a")))
    after = desired(trait("t_b", {"previous_names": ["t_a"]}), audience("a", uses("t_b")))
    with pytest.raises(PermanentError, match=r"^trait\.t_a cannot move to trait\.t_b on its own: audience\.a outside"):
        plan_for(after, applied(before), targets=["trait.t_b"])
    plan = plan_for(after, applied(before), targets=["audience.a"])
    assert [(c.action, c.address, c.included_by) for c in plan.resource_changes] == [
        ("update", "audience.a", ()),
        ("move", "trait.t_b", ("audience.a",)),
    ]


@pytest.mark.parametrize("targets", [["audience.aud_x"], []])
def test_excluded_dependency_refused(targets):
    after = desired(trait("t_new"), audience("aud_x", uses("t_new")))
    with pytest.raises(PermanentError) as caught:
        plan_for(after, applied(desired()), targets=targets, excludes=["trait.*"])
    assert str(caught.value) == "audience.aud_x needs the change of trait.t_new, which --exclude leaves out"


def test_untargeted_plan_includes_nothing():
    after = desired(trait("t_new"), audience("aud_x", uses("t_new")))
    plan = plan_for(after, applied(desired()))
    assert [c.included_by for c in plan.resource_changes] == [(), ()]
    assert plan.unplanned == 0


def test_empty_targeted_plan_counts_left_out():
    before = desired(trait("a"), trait("b"), audience("x", uses("a")))
    after = desired(trait("a", window="7d"), trait("b", window="9d"), audience("x", uses("a")))
    plan = plan_for(after, applied(before), targets=["audience.*", "nomatch.*"])
    assert plan.is_empty
    assert render_text(plan) == (
        "Warning: --target 'nomatch.*' matches no resource\n"
        f"{SCOPE}\n"
        "No changes for the given targets; 2 changes outside them were not planned.\n"
    )


def test_unmatched_target_warns():
    after = desired(trait("a"))
    plan = plan_for(after, applied(desired()), targets=["trait.a", "audience.nope"])
    assert render_text(plan).splitlines()[-3:] == [
        "Warning: --target 'audience.nope' matches no resource",
        SCOPE,
        "Plan: 1 to create, 0 to update, 0 to replace, 0 to delete, 0 to move.",
    ]


def test_included_by_round_trips_through_json():
    from reconciler.plan.model import Plan

    after = desired(trait("t_new"), audience("aud_x", uses("t_new")))
    plan = plan_for(after, applied(desired()), targets=["audience.aud_x"])
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["resource_changes"][1]["included_by"] == ["audience.aud_x"]
    assert Plan.from_dict(data) == plan


def test_rename_onto_applied_name_refused():
    before = desired(trait("t_a"), trait("t_b"))
    after = desired(trait("t_b", {"previous_names": ["t_a"]}, window="7d"))
    with pytest.raises(PermanentError) as caught:
        plan_for(after, applied(before))
    assert str(caught.value) == (
        "trait.t_a cannot move to trait.t_b: trait.t_b already exists in the state; "
        "delete it in one apply, then rename in the next"
    )


# End to end through the CLI, on a SQLite state store.

T_NEW = """
apiVersion: personas/v1
kind: Trait
metadata: {name: t_new}
spec: {type: event_counter, event: Order Completed}
"""

AUD_X = """
apiVersion: personas/v1
kind: Audience
metadata: {name: aud_x}
spec:
  include: {trait: t_new, gt: 0}
"""


def trait_file(name: str, extra: str = "", window: str = "30d") -> str:
    return (
        "apiVersion: personas/v1\nkind: Trait\n"
        f"metadata: {{name: {name}{extra}}}\n"
        f"spec: {{type: event_counter, event: Order Completed, window: {window}}}\n"
    )


@pytest.fixture
def state_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'state.db'}"


def applied_addresses(project) -> list[str]:
    store = project.store()
    try:
        return sorted(store.read().resources)
    finally:
        store.close()


def test_cli_targeted_apply_adds_new_trait(project):
    project.write("traits/other.yaml", trait_file("other"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.write("traits/t_new.yaml", T_NEW)
    project.write("audiences/aud_x.yaml", AUD_X)
    project.write("traits/other.yaml", trait_file("other", window="7d"))
    planfile = project.root / "plan.json"
    result = project.run("plan", "--target", "audience.aud_x", "--out", str(planfile))
    assert result.exit_code == 0, result.output
    assert "  + trait.t_new  (traits/t_new.yaml)\n      new in traits/t_new.yaml\n" in result.stdout
    assert "      included because audience.aud_x depends on it\n" in result.stdout
    assert "Plan: 2 to create, 0 to update" in result.stdout
    assert project.run("apply", str(planfile)).exit_code == 0
    assert applied_addresses(project) == ["audience.aud_x", "trait.other", "trait.t_new"]
    result = project.run("plan", "--target", "audience.aud_x")
    assert result.stdout.endswith("No changes for the given targets; 1 change outside them was not planned.\n")


def test_cli_targeted_delete_of_used_trait_fails(project):
    project.write("traits/t_new.yaml", T_NEW)
    project.write("audiences/aud_x.yaml", AUD_X)
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.remove("traits/t_new.yaml")
    project.write("audiences/aud_x.yaml", AUD_X.replace("{trait: t_new, gt: 0}", "{event: Order Completed}"))
    result = project.run("plan", "--target", "trait.t_new")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "Error: trait.t_new cannot be deleted on its own: audience.aud_x outside the targets still references it\n"
        "Target them too (--target audience.aud_x), or change them to stop using it and apply that first.\n"
    )
    assert applied_addresses(project) == ["audience.aud_x", "trait.t_new"]


def test_cli_rename_onto_applied_name_fails(project):
    project.write("traits/t_a.yaml", trait_file("t_a"))
    project.write("traits/t_b.yaml", trait_file("t_b"))
    assert project.run("apply", "--auto-approve").exit_code == 0
    project.remove("traits/t_a.yaml")
    project.write("traits/t_b.yaml", trait_file("t_b", extra=", previous_names: [t_a]", window="7d"))
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = project.run(*command)
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == (
            "Error: trait.t_a cannot move to trait.t_b: trait.t_b already exists in the state; "
            "delete it in one apply, then rename in the next\n"
            "Put trait.t_a back under its old name and apply with trait.t_b removed; "
            "then rename it with `previous_names: [t_a]`.\n"
        )
    assert applied_addresses(project) == ["trait.t_a", "trait.t_b"]


def test_cli_target_matching_nothing_warns(project):
    project.write("traits/t_new.yaml", T_NEW)
    result = project.run("plan", "--target", "nomatch.*")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Warning: --target 'nomatch.*' matches no resource\n"
        f"{SCOPE}\n"
        "No changes for the given targets; 2 changes outside them were not planned.\n"
    )
