"""Condition kinds, exclude and holdout, with memberships worked out by hand."""

from __future__ import annotations

from tests.engine_compute.conftest import audience, trait

AS_OF = "2024-03-31T00:00:00Z"
ORDER = "Order Completed"
VIEW = "Product Viewed"
CART = "Product Added"


def event(id_, at, profile, name=ORDER, **properties):
    return {"id": id_, "at": at, "profile": profile, "event": name, "properties": properties}


def test_event_counts_including_did_not_perform(warehouse):
    warehouse.load([
        event("m1", "2024-03-01", "p1"),
        event("m2", "2024-03-02", "p1"),
        event("m3", "2024-03-03", "p2"),
        event("m4", "2024-03-03", "p3", name=VIEW),
    ])
    cases = [
        ({"event": ORDER}, {"p1", "p2"}),
        ({"event": ORDER, "count": 0}, {"p3"}),
        ({"event": ORDER, "count": 1}, {"p2"}),
        ({"event": ORDER, "count": {"gte": 2}}, {"p1"}),
        ({"event": ORDER, "count": {"lt": 2}}, {"p2", "p3"}),
        ({"event": ORDER, "count": {"gt": 0, "lte": 1}}, {"p2"}),
        ({"not": {"event": ORDER}}, {"p3"}),
    ]
    wrong = [(c, e, got) for c, e in cases if (got := warehouse.members(audience("a", include=c), AS_OF)) != e]
    assert wrong == []


def test_winback_old_window_nothing_since(warehouse):
    warehouse.load([
        event("m1", "2024-01-10", "p1"),  # 81 days before as_of: in [120d, 45d)
        event("m2", "2024-01-10", "p2"),
        event("m3", "2024-03-20", "p2"),  # recent order: not winback
        event("m4", "2024-03-20", "p3"),  # recent only
    ])
    winback = audience("winback", include={"all": [
        {"event": ORDER, "window": {"from": "120d", "to": "45d"}},
        {"not": {"event": ORDER, "window": "45d"}},
    ]})
    assert warehouse.members(winback, AS_OF) == {"p1"}


def test_any_all_not_combine_conditions(warehouse):
    warehouse.load([
        event("m1", "2024-03-01", "p1"),
        event("m2", "2024-03-01", "p2", name=VIEW),
        event("m3", "2024-03-01", "p3", name=CART),
        event("m4", "2024-03-02", "p3"),
    ])
    cases = [
        ({"any": [{"event": VIEW}, {"event": CART}]}, {"p2", "p3"}),
        ({"all": [{"event": ORDER}, {"event": CART}]}, {"p3"}),
        ({"all": [{"event": ORDER}, {"not": {"event": CART}}]}, {"p1"}),
        ({"not": {"any": [{"event": VIEW}, {"event": CART}]}}, {"p1"}),
    ]
    wrong = [(c, e, got) for c, e in cases if (got := warehouse.members(audience("a", include=c), AS_OF)) != e]
    assert wrong == []


def test_not_includes_missing_trait_values(warehouse):
    warehouse.load([
        event("m1", "2024-03-01", "p1", revenue=100),
        event("m2", "2024-03-01", "p2", revenue=5),
        event("m3", "2024-03-01", "p3", name=VIEW),
    ])
    ltv = trait("ltv", type="aggregation", function="sum", property="revenue", event=ORDER)
    high = audience("a", include={"trait": "ltv", "gte": 50})
    low = audience("b", include={"trait": "ltv", "lt": 50})
    not_high = audience("c", include={"not": {"trait": "ltv", "gte": 50}})
    not_ten = audience("d", include={"trait": "ltv", "not_equals": 5})
    assert warehouse.members(high, AS_OF, [ltv]) == {"p1"}
    assert warehouse.members(low, AS_OF, [ltv]) == {"p2"}
    assert warehouse.members(not_high, AS_OF, [ltv]) == {"p2", "p3"}
    assert warehouse.members(not_ten, AS_OF, [ltv]) == {"p1"}


def test_zero_counter_is_a_value(warehouse):
    warehouse.load([event("m1", "2024-03-01", "p1"), event("m2", "2024-03-01", "p2", name=VIEW)])
    orders = trait("orders", type="event_counter", event=ORDER)
    assert warehouse.members(audience("a", include={"trait": "orders", "equals": 0}), AS_OF, [orders]) == {"p2"}


def test_audience_condition_includes_the_other_audience_holdout(warehouse):
    events = [event(f"m{i}", "2024-03-01", f"p{i:02d}") for i in range(40)]
    events.append(event("v1", "2024-03-01", "p99", name=VIEW))
    warehouse.load(events)
    buyers = audience("buyers", include={"event": ORDER}, holdout="50%")
    flags = warehouse.members(buyers, AS_OF, holdout=True)
    assert len(flags) == 40
    assert 0 < sum(flags.values()) < 40
    both = audience("buyers_again", include={"audience": "buyers"})
    assert warehouse.members(both, AS_OF, [buyers]) == set(flags)
    outside = audience("outside", include={"not": {"audience": "buyers"}})
    assert warehouse.members(outside, AS_OF, [buyers]) == {"p99"}


def test_exclude_removes_members_of_its_tree(warehouse):
    warehouse.load([
        event("m1", "2024-03-01", "p1"),
        event("m2", "2024-03-01", "p2"),
        event("c1", "2024-03-02", "p2", name="Complaint Filed"),
    ])
    subject = audience("a", include={"event": ORDER}, exclude={"any": [{"event": "Complaint Filed"}]})
    assert warehouse.members(subject, AS_OF) == {"p1"}


def test_sequence_steps_follow_timestamp_and_message_id_order(warehouse):
    warehouse.load([
        # p1: view then cart one day later: within 1d (edge included).
        event("a1", "2024-03-01T00:00:00Z", "p1", name=VIEW),
        event("a2", "2024-03-02T00:00:00Z", "p1", name=CART),
        # p2: cart one second too late after the only view.
        event("b1", "2024-03-01T00:00:00Z", "p2", name=VIEW),
        event("b2", "2024-03-02T00:00:01Z", "p2", name=CART),
        # p3: cart before view only.
        event("c1", "2024-03-01T00:00:00Z", "p3", name=CART),
        event("c2", "2024-03-01T01:00:00Z", "p3", name=VIEW),
        # p4: same timestamp; message ids put the view first.
        event("d1", "2024-03-01T00:00:00Z", "p4", name=VIEW),
        event("d2", "2024-03-01T00:00:00Z", "p4", name=CART),
        # p5: same timestamp, but the cart's id sorts first: cart is before view.
        event("e2", "2024-03-01T00:00:00Z", "p5", name=VIEW),
        event("e1", "2024-03-01T00:00:00Z", "p5", name=CART),
        # p6: an early view too far back, a later view close enough: the later one counts.
        event("f1", "2024-02-01T00:00:00Z", "p6", name=VIEW),
        event("f2", "2024-03-10T00:00:00Z", "p6", name=VIEW),
        event("f3", "2024-03-10T12:00:00Z", "p6", name=CART),
    ])
    funnel = audience("funnel", include={"sequence": [{"event": VIEW}, {"event": CART, "within": "1d"}]})
    assert warehouse.members(funnel, AS_OF) == {"p1", "p4", "p6"}
    unbounded = audience("any_time", include={"sequence": [{"event": VIEW}, {"event": CART}]})
    assert warehouse.members(unbounded, AS_OF) == {"p1", "p2", "p4", "p6"}


def test_sequence_window_and_single_event(warehouse):
    warehouse.load([
        event("a1", "2024-02-20T00:00:00Z", "p1", name=VIEW),  # before the 30d window
        event("a2", "2024-03-05T00:00:00Z", "p1", name=CART),
        event("b1", "2024-03-05T00:00:00Z", "p2", name=VIEW),
        event("b2", "2024-03-06T00:00:00Z", "p2", name=CART),
        event("c1", "2024-03-05T00:00:00Z", "p3", name=VIEW),  # a single view cannot be both steps
        event("d1", "2024-03-05T00:00:00Z", "p4", name=VIEW),
        event("d2", "2024-03-07T00:00:00Z", "p4", name=VIEW),
    ])
    windowed = audience("w", include={"sequence": [{"event": VIEW}, {"event": CART}], "window": "30d"})
    assert warehouse.members(windowed, AS_OF) == {"p2"}
    twice = audience("twice", include={"sequence": [{"event": VIEW}, {"event": VIEW}]})
    assert warehouse.members(twice, AS_OF) == {"p4"}


def test_three_step_sequence_needs_every_step_in_order(warehouse):
    warehouse.load([
        event("a1", "2024-03-01", "p1", name=VIEW),
        event("a2", "2024-03-02", "p1", name=CART),
        event("a3", "2024-03-03", "p1"),
        event("b1", "2024-03-01", "p2", name=VIEW),
        event("b2", "2024-03-03", "p2"),
        event("b3", "2024-03-04", "p2", name=CART),
    ])
    funnel = audience("f", include={"sequence": [{"event": VIEW}, {"event": CART}, {"event": ORDER}]})
    assert warehouse.members(funnel, AS_OF) == {"p1"}


def group(id_, profile, account, at="2024-01-01"):
    return {"id": id_, "type": "group", "at": at, "profile": profile, "group": account}


def test_account_audiences_over_their_users(warehouse):
    warehouse.load([
        group("g1", "p1", "acme"), group("g2", "p2", "acme"),
        group("g3", "p3", "initech"), group("g4", "p4", "initech"),
        group("g5", "p5", "hooli"),
        group("g6", "p6", "late", at="2024-04-01"),  # after as_of: not an account yet
        event("m1", "2024-03-01", "p1"), event("m2", "2024-03-01", "p2"),
        event("m3", "2024-03-01", "p3"),
    ])
    cases = [
        ({"any_user": {"event": ORDER}}, {"acme", "initech"}),
        ({"all_users": {"event": ORDER}}, {"acme"}),
        ({"no_user": {"event": ORDER}}, {"hooli"}),
        ({"not": {"any_user": {"event": ORDER}}}, {"hooli"}),
    ]
    wrong = []
    for condition, expected in cases:
        got = warehouse.members(audience("a", entity="account", include=condition), AS_OF)
        if got != expected:
            wrong.append((condition, expected, got))
    assert wrong == []


def test_holdout_is_stable_and_close_to_its_share(warehouse):
    warehouse.load([event(f"m{i}", "2024-03-01", f"profile-{i}") for i in range(1000)])
    subject = audience("buyers", include={"event": ORDER}, holdout="10%")
    flags = warehouse.members(subject, AS_OF, holdout=True)
    held = {member for member, flag in flags.items() if flag}
    assert 70 <= len(held) <= 130
    # The same hash on every run, and with other members gone.
    warehouse.load([event(f"m{i}", "2024-03-01", f"profile-{i}") for i in range(500)])
    again = warehouse.members(subject, AS_OF, holdout=True)
    assert {member for member, flag in again.items() if flag} == {m for m in held if int(m.split("-")[1]) < 500}


def test_holdout_hash_matches_the_python_md5(warehouse):
    import hashlib

    from reconciler.engine.compiler.audiences import holdout_threshold

    warehouse.load([event(f"m{i}", "2024-03-01", f"p{i}") for i in range(50)])
    ctx_ids = {"audience.buyers": "3f1c0f7e-0000-4000-8000-000000000001"}
    subject = audience("buyers", include={"event": ORDER}, holdout="25%")
    from reconciler.engine.compiler import audience_select

    ctx = warehouse.context(AS_OF, [subject], resource_ids=ctx_ids)
    with warehouse.engine.connect() as connection:
        got = {row.subject_id: bool(row.holdout) for row in connection.execute(audience_select(ctx, subject))}
    threshold = holdout_threshold(subject.spec.holdout.fraction)
    expected = {
        f"p{i}": hashlib.md5(f"{ctx_ids['audience.buyers']}:p{i}".encode()).hexdigest()[:8] < threshold
        for i in range(50)
    }
    assert threshold == "40000000"
    assert got == expected


def test_audience_cycle_is_an_error_not_endless_recursion(warehouse):
    import pytest

    warehouse.load([event("m1", "2024-03-01", "p1")])
    first = audience("first", include={"audience": "second"})
    second = audience("second", include={"audience": "first"})
    with pytest.raises(ValueError, match="dependency cycle: audience.second -> audience.first -> audience.second"):
        warehouse.members(first, AS_OF, [second])
