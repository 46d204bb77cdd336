"""Desired specs against applied state, on models built directly and an in-memory snapshot."""

from __future__ import annotations

import pytest

from reconciler.errors import PermanentError
from reconciler.plan.diff import build_plan
from reconciler.plan.model import Plan
from reconciler.plan.secrets import SENSITIVE_CHANGED, SENSITIVE_UNKNOWN
from reconciler.spec.settings import IdentityRules

from .factories import EMPTY, applied, audience, desired, fake_digest, resource, trait, webhook

ENV = {"CRM_TOKEN": "tok_live_FAKE123"}


def plan_for(state, snapshot, env=ENV, **options) -> Plan:
    return build_plan(state, snapshot, env=env, digest=fake_digest, personas_version="test", **options)


def test_first_plan_creates_everything_and_the_identity_rules():
    state = desired(trait("orders"), audience("buyers", {"trait": "orders", "gt": 0}))
    plan = plan_for(state, EMPTY)
    assert [(c.action, c.address) for c in plan.resource_changes] == [
        ("create", "audience.buyers"),
        ("create", "trait.orders"),
    ]
    assert plan.identity_change.action == "create"
    assert plan.summary == {"create": 2, "update": 0, "replace": 0, "delete": 0, "move": 0}


def test_plan_after_apply_is_empty():
    state = desired(trait("orders", window="30d"), audience("buyers", {"trait": "orders", "gt": 0}), webhook("crm"))
    plan = plan_for(state, applied(state))
    assert plan.is_empty
    assert plan.resource_changes == ()
    assert plan.identity_change is None


def test_update_names_the_changed_field_path():
    include = {"all": [{"event": "A"}, {"event": "B", "window": "30d"}]}
    before = desired(audience("x", include))
    include_after = {"all": [{"event": "B", "window": "45d"}, {"event": "A"}]}
    plan = plan_for(desired(audience("x", include_after)), applied(before))
    (change,) = plan.resource_changes
    assert change.action == "update"
    assert change.reason == "1 field changed"
    assert [(f.path, f.before, f.after) for f in change.changed_fields] == [
        ("spec.include.all[1].window.from", "30d", "45d")
    ]


@pytest.mark.parametrize(
    ("before", "after", "reason_start"),
    [
        (trait("t"), trait("t", entity="account"), "entity changed from user to account"),
        (trait("t"), trait("t", type="unique_count", property="sku"), "trait type changed from event_counter to unique_count"),
        (webhook("d"), resource("Destination", "d", {"type": "file", "path": "out"}), "destination type changed from webhook to file"),
    ],
)
def test_replace_when_entity_or_type_changes(before, after, reason_start):
    plan = plan_for(desired(after), applied(desired(before)))
    (change,) = plan.resource_changes
    assert change.action == "replace"
    assert change.reason.startswith(reason_start)


def test_replace_reason_says_what_it_means():
    plan = plan_for(desired(trait("t", entity="account")), applied(desired(trait("t"))))
    assert plan.resource_changes[0].reason == (
        "entity changed from user to account: membership history is closed and destinations get one guarded full resync"
    )


def test_rename_through_previous_names_is_a_move():
    before = desired(audience("old_name", {"event": "A"}))
    after = desired(audience("new_name", {"event": "A"}, {"previous_names": ["old_name"]}))
    plan = plan_for(after, applied(before))
    (change,) = plan.resource_changes
    assert (change.action, change.previous_address, change.address) == ("move", "audience.old_name", "audience.new_name")
    assert {f.path for f in change.changed_fields} == {"metadata.name", "metadata.previous_names"}


def test_rename_without_previous_names_is_delete_and_create():
    plan = plan_for(desired(audience("new_name", {"event": "A"})), applied(desired(audience("old_name", {"event": "A"}))))
    assert [(c.action, c.address) for c in plan.resource_changes] == [
        ("create", "audience.new_name"),
        ("delete", "audience.old_name"),
    ]


def test_protected_delete_rejected_without_file():
    before = desired(trait("orders", {"protected": True}))
    with pytest.raises(PermanentError) as raised:
        plan_for(desired(), applied(before))
    assert str(raised.value) == "trait.orders is protected and cannot be deleted (last applied from traits/orders.yaml)"
    assert raised.value.hint == (
        "To go ahead: restore trait.orders in traits/orders.yaml with `protected: false`, apply, then delete it."
    )


def test_protected_replace_rejected_despite_unprotect():
    before = desired(trait("orders", {"protected": True}))
    after = desired(trait("orders", {"protected": False}, entity="account"))
    with pytest.raises(PermanentError, match="cannot be replaced: entity changed from user to account"):
        plan_for(after, applied(before))


def test_unprotecting_is_an_update():
    before = desired(trait("orders", {"protected": True}))
    plan = plan_for(desired(trait("orders")), applied(before))
    assert [(f.path, f.before, f.after) for f in plan.resource_changes[0].changed_fields] == [
        ("metadata.protected", True, False)
    ]


def test_downstream_lists_audiences_transitively_and_their_destinations():
    models = [
        trait("orders"),
        audience("buyers", {"trait": "orders", "gt": 0}),
        audience("loyal", {"audience": "buyers"}, destinations=[{"destination": "crm", "identifier": "email"}]),
        audience("other", {"event": "A"}),
        webhook("crm"),
    ]
    before = desired(*models)
    models[0] = trait("orders", window="30d")
    plan = plan_for(desired(*models), applied(before))
    (change,) = plan.resource_changes
    assert change.downstream.audiences == ("audience.buyers", "audience.loyal")
    assert change.downstream.destinations == ("destination.crm",)


def test_identity_change_affects_every_audience():
    models = [audience("a", {"event": "A"}), audience("b", {"event": "B"})]
    before = desired(*models)
    rules = IdentityRules.model_validate({"identifiers": [{"type": "email"}, {"type": "user_id"}]})
    plan = plan_for(desired(*models, identity=rules), applied(before))
    assert plan.resource_changes == ()
    assert plan.identity_change.action == "update"
    assert plan.identity_change.downstream.audiences == ("audience.a", "audience.b")
    assert plan.identity_change.reason == "every audience is affected; the next run re-resolves identities from scratch"


def test_target_and_exclude_filter_changes():
    state = desired(trait("a"), trait("b"), audience("c", {"event": "A"}))
    plan = plan_for(state, EMPTY, targets=["trait.*"], excludes=["trait.b"])
    assert [c.address for c in plan.resource_changes] == ["trait.a"]
    assert plan.identity_change is None
    assert plan.targets == ("trait.*",)
    assert plan.excludes == ("trait.b",)


def test_rotated_secret_shows_as_sensitive_value_changed():
    model = webhook("crm", headers={"Authorization": "Bearer ${CRM_TOKEN}"})
    state = desired(model)
    hashes = {"destination.crm": {"spec.headers.Authorization": fake_digest("Bearer tok_live_OLD")}}
    plan = plan_for(state, applied(state, secret_hashes=hashes))
    (change,) = plan.resource_changes
    assert change.action == "update"
    assert change.reason == "a secret value changed"
    (field,) = change.changed_fields
    assert (field.path, field.before, field.after, field.note) == (
        "spec.headers.Authorization", "Bearer ${CRM_TOKEN}", "Bearer ${CRM_TOKEN}", SENSITIVE_CHANGED
    )


def test_same_secret_is_no_change():
    state = desired(webhook("crm", headers={"Authorization": "Bearer ${CRM_TOKEN}"}))
    hashes = {"destination.crm": {"spec.headers.Authorization": fake_digest("Bearer tok_live_FAKE123")}}
    assert plan_for(state, applied(state, secret_hashes=hashes)).is_empty


def test_unset_secret_shown_only_on_change():
    before = desired(webhook("crm", headers={"Authorization": "Bearer ${CRM_TOKEN}"}))
    hashes = {"destination.crm": {"spec.headers.Authorization": fake_digest("Bearer tok_live_FAKE123")}}
    assert plan_for(before, applied(before, secret_hashes=hashes), env={}).is_empty

    after = desired(webhook("crm", headers={"Authorization": "Bearer ${CRM_TOKEN}"}, batch_size=100))
    plan = plan_for(after, applied(before, secret_hashes=hashes), env={})
    notes = {f.path: f.note for f in plan.resource_changes[0].changed_fields}
    assert notes == {"spec.batch_size": None, "spec.headers.Authorization": SENSITIVE_UNKNOWN}


def test_webhook_url_shows_scheme_and_host_only():
    before = desired(webhook("crm", url="https://hooks.example.com/services/T0/B0/SECRETPATH"))
    after = desired(webhook("crm", url="https://hooks.example.com/services/T0/B0/OTHERPATH"))
    plan = plan_for(after, applied(before))
    (change,) = plan.resource_changes
    assert change.after["spec"]["url"] == "https://hooks.example.com"
    (field,) = change.changed_fields
    assert (field.path, field.before, field.after, field.note) == (
        "spec.url", "https://hooks.example.com", "https://hooks.example.com", SENSITIVE_CHANGED
    )
    assert "SECRETPATH" not in repr(plan.to_dict())
    assert "OTHERPATH" not in repr(plan.to_dict())


def test_plan_round_trips_through_its_json():
    before = desired(trait("orders"), audience("old", {"trait": "orders", "gt": 0}), webhook("crm"))
    after = desired(trait("orders", window="7d"), audience("new", {"trait": "orders", "gt": 0}, {"previous_names": ["old"]}))
    plan = plan_for(after, applied(before))
    assert Plan.from_dict(plan.to_dict()) == plan
    assert plan.summary == {"create": 0, "update": 1, "replace": 0, "delete": 1, "move": 1}
