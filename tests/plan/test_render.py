"""Text, JSON and markdown renderings of plans, compared whole where they are stable."""

from __future__ import annotations

import json

import pytest

from reconciler.errors import UsageError
from reconciler.plan.diff import build_plan
from reconciler.plan.model import Plan
from reconciler.plan.render_json import read_plan, render_json, write_plan
from reconciler.plan.render_markdown import MAX_CHARACTERS, render_markdown
from reconciler.plan.render_text import render_text

from .factories import EMPTY, applied, audience, desired, fake_digest, trait, webhook


def plan_for(state, snapshot, **options) -> Plan:
    return build_plan(state, snapshot, env={}, digest=fake_digest, personas_version="test", **options)


@pytest.fixture
def mixed_plan() -> Plan:
    before = desired(
        trait("orders"),
        trait("plan_kind", {"protected": False}),
        audience("old", {"trait": "orders", "gt": 0}, destinations=[{"destination": "crm", "identifier": "email"}]),
        webhook("crm"),
        webhook("legacy"),
    )
    after = desired(
        trait("orders", window="30d"),
        trait("plan_kind", entity="account"),
        trait("visits", event="Page Viewed"),
        audience(
            "new", {"trait": "orders", "gt": 0}, {"previous_names": ["old"]},
            destinations=[{"destination": "crm", "identifier": "email"}],
        ),
        webhook("crm"),
    )
    return plan_for(after, applied(before))


def test_text_plan_groups_changes_by_action(mixed_plan):
    assert render_text(mixed_plan) == """\
To create (1):
  + trait.visits  (traits/visits.yaml)
      new in traits/visits.yaml
      + spec.entity: "user"
      + spec.event: "Page Viewed"
      + spec.type: "event_counter"

To update (1):
  ~ trait.orders  (traits/orders.yaml)
      1 field changed
      ~ spec.window: (absent) -> {"from": "30d", "to": "0s"}
      downstream: audience.new; feeding destination.crm

To replace (1):
  -/+ trait.plan_kind  (traits/plan_kind.yaml)
      entity changed from user to account: membership history is closed and destinations get one guarded full resync
      ~ spec.entity: "user" -> "account"

To delete (1):
  - destination.legacy  (destinations/legacy.yaml)
      no longer in the specs (last applied from destinations/legacy.yaml)

To move (rename) (1):
  > audience.old -> audience.new  (audiences/new.yaml)
      renamed from audience.old (metadata.previous_names): keeps its id, history and destination state
      ~ metadata.name: "old" -> "new"
      ~ metadata.previous_names: (absent) -> ["old"]
      downstream: feeding destination.crm

Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 to move.
"""


def test_empty_plan_says_no_changes():
    state = desired(trait("orders"))
    assert render_text(plan_for(state, applied(state))) == "No changes. The applied state matches the specs.\n"


def test_identity_change_adds_a_line_under_the_summary():
    from reconciler.spec.settings import IdentityRules

    before = desired(trait("orders"))
    rules = IdentityRules.model_validate({"identifiers": [{"type": "user_id"}]})
    text = render_text(plan_for(desired(trait("orders"), identity=rules), applied(before)))
    assert text.endswith(
        "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 to move.\n"
        "Identity rules change: every audience is affected; the next run re-resolves identities from scratch.\n"
    )


def test_text_plan_lists_apply_steps_on_request(mixed_plan):
    text = render_text(mixed_plan, show_steps=True)
    assert "Apply steps:\n  1. check-plan: " in text
    assert "  3. write-state: in one transaction, write 5 changes, move the serial from 1 to 2" in text


def test_colour_comes_from_the_style_function(mixed_plan):
    import click

    coloured = render_text(mixed_plan, style=click.style)
    assert "\x1b[" in coloured
    assert click.unstyle(coloured) == render_text(mixed_plan)


def test_json_is_canonical_and_complete(mixed_plan):
    data = json.loads(render_json(mixed_plan))
    assert data["format_version"] == 1
    assert data["lineage"] == "lineage-1"
    assert data["serial"] == 1
    assert data["summary"] == {"create": 1, "update": 1, "replace": 1, "delete": 1, "move": 1}
    move = next(change for change in data["resource_changes"] if change["action"] == "move")
    assert move["previous_address"] == "audience.old"
    assert set(move) >= {"address", "previous_address", "action", "reason", "before", "after", "changed_fields", "downstream"}
    assert [step["name"] for step in data["steps"]] == ["check-plan", "resolve-secrets", "write-state"]
    assert render_json(mixed_plan) == render_json(Plan.from_dict(data))


def test_saved_plan_reads_back_equal(tmp_path, mixed_plan):
    path = tmp_path / "plan.json"
    write_plan(mixed_plan, path)
    assert read_plan(path) == mixed_plan
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a personas plan: it is not JSON"),
        ('{"hello": 1}', "is not a personas plan"),
        ('{"format_version": 99, "resource_changes": []}', "has plan format version 99"),
    ],
)
def test_read_plan_rejects_non_plan(tmp_path, content, message):
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        read_plan(path)


def test_markdown_warns_about_deletes_and_replaces(mixed_plan):
    text = render_markdown(mixed_plan)
    assert text.startswith("### personas plan\n\n> [!WARNING]\n> This plan deletes 1 resource and replaces 1 resource.")
    assert "**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete, 1 to move.**" in text
    assert text.count("```diff") == text.count("```") // 2
    assert '\n-       spec.entity: "user"\n+       spec.entity: "account"\n' in text
    assert "\n-   destination.legacy  (destinations/legacy.yaml)\n" in text


def test_huge_markdown_plan_fits_comment():
    models = [
        trait(f"t{i:04d}", where=[{"property": f"property_{j}", "equals": f"value_{j}"} for j in range(8)])
        for i in range(600)
    ]
    plan = plan_for(desired(*models), EMPTY)
    text = render_markdown(plan)
    assert len(render_text(plan)) > 5 * MAX_CHARACTERS
    assert len(text) < MAX_CHARACTERS
    assert "**Plan: 600 to create, 0 to update, 0 to replace, 0 to delete, 0 to move.**" in text
    assert "changes not shown to keep this comment under GitHub's size limit" in text
    assert text.count("```") % 2 == 0


def identity_plan() -> Plan:
    """A plan whose identity rules gain a third identifier, so the whole list changes."""
    from reconciler.spec.settings import IdentityRules

    two = IdentityRules.model_validate({"identifiers": [{"type": "user_id"}, {"type": "email"}]})
    three = IdentityRules.model_validate({"identifiers": [{"type": "user_id"}, {"type": "email"}, {"type": "anonymous_id"}]})
    return plan_for(desired(trait("orders"), identity=three), applied(desired(trait("orders"), identity=two)))


USER_ID = '{"type": "user_id", "normalize": "trim", "from": ["userId"]}'
EMAIL = '{"type": "email", "normalize": "email", "from": ["traits.email", "context.traits.email"]}'
ANONYMOUS_ID = '{"type": "anonymous_id", "normalize": "trim", "from": ["anonymousId"]}'


def test_identity_list_text_one_item_per_line():
    text = render_text(identity_plan())

    assert text.startswith(
        "Identity rules:\n"
        "  ~ project.identity\n"
        "      every audience is affected; the next run re-resolves identities from scratch\n"
        "      ~ identifiers:\n"
        "          before:\n"
        f"            - {USER_ID}\n"
        f"            - {EMAIL}\n"
        "          after:\n"
        f"            - {USER_ID}\n"
        f"            - {EMAIL}\n"
        f"            - {ANONYMOUS_ID}\n"
        "\n"
    )


def test_identity_list_markdown_one_item_per_line():
    markdown = render_markdown(identity_plan())

    assert (
        "```diff\n"
        "- identifiers:\n"
        f"-   - {USER_ID}\n"
        f"-   - {EMAIL}\n"
        "+ identifiers:\n"
        f"+   - {USER_ID}\n"
        f"+   - {EMAIL}\n"
        f"+   - {ANONYMOUS_ID}\n"
        "```\n"
    ) in markdown
