"""The canonical form: defaults filled, sets sorted, one rule for empty values."""

from __future__ import annotations

from reconciler.plan.normalize import normalize_identity, normalize_resource, spec_hash
from reconciler.spec.settings import IdentityRules

from .factories import audience, resource, trait, webhook


def test_defaults_are_filled_in():
    written = normalize_resource(trait("orders", entity="user"))
    omitted = normalize_resource(trait("orders"))
    assert written == omitted
    assert omitted == {
        "apiVersion": "personas/v1",
        "kind": "Trait",
        "metadata": {"name": "orders", "protected": False},
        "spec": {"entity": "user", "event": "Order Completed", "type": "event_counter"},
    }


def test_durations_compare_by_length():
    assert normalize_resource(trait("orders", window="24h")) == normalize_resource(trait("orders", window="1d"))
    assert normalize_resource(trait("orders", window="1d"))["spec"]["window"] == {"from": "1d", "to": "0s"}


def test_empty_null_and_missing_description_are_one_form():
    forms = [trait("orders", {"description": ""}), trait("orders", {"description": None}), trait("orders")]
    normalized = [normalize_resource(model) for model in forms]
    assert normalized[0] == normalized[1] == normalized[2]
    assert "description" not in normalized[0]["metadata"]


def test_empty_collections_are_absent():
    explicit = resource(
        "Destination", "crm", {"type": "webhook", "url": "https://h.example.com", "headers": {}, "consent": []},
        labels={}, previous_names=[],
    )
    assert normalize_resource(explicit) == normalize_resource(webhook("crm", url="https://h.example.com"))
    assert "labels" not in normalize_resource(explicit)["metadata"]


def test_set_lists_are_sorted_and_deduplicated():
    model = webhook("crm", consent=["sms_opt_in", "email_opt_in", "sms_opt_in"])
    assert normalize_resource(model)["spec"]["consent"] == ["email_opt_in", "sms_opt_in"]


def test_destination_order_is_no_change():
    first = {"destination": "crm", "identifier": "email"}
    second = {"destination": "ads", "identifier": "user_id", "traits": ["ltv", "plan"]}
    include = {"trait": "plan", "equals": "pro"}
    one = audience("pros", include, destinations=[first, second])
    other = audience("pros", include, destinations=[second, first])
    assert spec_hash(normalize_resource(one)) == spec_hash(normalize_resource(other))


def test_all_is_set_sequence_is_ordered():
    a, b = {"event": "Signed Up"}, {"event": "Order Completed"}
    assert normalize_resource(audience("x", {"all": [a, b]})) == normalize_resource(audience("x", {"all": [b, a]}))
    steps_ab = audience("x", {"sequence": [a, b]})
    steps_ba = audience("x", {"sequence": [b, a]})
    assert normalize_resource(steps_ab) != normalize_resource(steps_ba)


def test_yaml_key_spelling_is_kept():
    model = audience("x", {"not": {"trait": "plan", "in": ["pro", "enterprise"]}})
    spec = normalize_resource(model)["spec"]
    assert spec["include"] == {"not": {"trait": "plan", "in": ["enterprise", "pro"]}}


def test_decimals_become_json_numbers():
    model = audience("x", {"trait": "ltv", "gt": "0.5"})
    assert normalize_resource(model)["spec"]["include"]["gt"] == "0.5"
    model = audience("x", {"trait": "ltv", "gt": 0.5})
    assert normalize_resource(model)["spec"]["include"]["gt"] == 0.5
    model = audience("x", {"trait": "ltv", "gt": 100})
    assert normalize_resource(model)["spec"]["include"]["gt"] == 100


def test_identity_order_is_a_change():
    rules = IdentityRules.model_validate({"identifiers": [{"type": "user_id"}, {"type": "email"}]})
    swapped = IdentityRules.model_validate({"identifiers": [{"type": "email"}, {"type": "user_id"}]})
    assert spec_hash(normalize_identity(rules)) != spec_hash(normalize_identity(swapped))


def test_identity_fills_effective_rules():
    implicit = IdentityRules.model_validate({"identifiers": [{"type": "email"}]})
    explicit = IdentityRules.model_validate(
        {"identifiers": [{"type": "email", "normalize": "email", "from": ["traits.email", "context.traits.email"]}]}
    )
    assert normalize_identity(implicit) == normalize_identity(explicit)
    blocked = IdentityRules.model_validate({"identifiers": [{"type": "email"}], "blocked_values": ["null", "", "null"]})
    assert normalize_identity(blocked)["blocked_values"] == ["", "null"]
