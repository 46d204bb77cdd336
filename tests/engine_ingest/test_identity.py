"""Identity resolution on DuckDB and PostgreSQL, as personas.yaml's identity rules describe it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from reconciler.engine import layout
from reconciler.engine.identity import profile_id_for, resolve
from reconciler.engine.warehouse import open_warehouse

from .conftest import identifier_profiles, ingest, message, profile_of_users, query, write_jsonl


def profile_count(project) -> int:
    return query(project, lambda wh: sa.select(sa.func.count()).select_from(wh.profiles()))[0][0]


def select_from(relation_name: str, *columns: str, where=None):
    """A query builder over one of the warehouse relations (events, profiles, identifiers)."""

    def build(warehouse):
        relation = getattr(warehouse, relation_name)()
        query = sa.select(*(relation.c[name] for name in columns))
        return query.where(where(relation)) if where is not None else query

    return build


def event_profiles(project) -> dict[str, str | None]:
    return dict(query(project, select_from("events", "message_id", "profile_id")))


def test_junk_identifiers_link_nobody(project, tmp_path):
    path = write_jsonl(
        tmp_path / "junk.jsonl",
        [
            message("identify", "i1", userId="u_1", anonymousId="anonymousId"),
            message("identify", "i2", userId="u_2", anonymousId="anonymousId"),
            message("track", "t1", userId="", anonymousId="anonymousId", event="Clicked"),
            message("track", "t2", userId="null", event="Clicked"),
            message("track", "t3", anonymousId="00000000-0000-0000-0000-000000000000", event="Clicked"),
        ],
    )

    summary = ingest(project, path)

    users = profile_of_users(project)
    assert sorted(users) == ["u_1", "u_2"]
    assert users["u_1"] != users["u_2"]
    assert profile_count(project) == 2
    assert identifier_profiles(project, "anonymous_id") == []
    assert summary.resolution.unlinked == 3
    assert summary.resolution.refused_merges == 0
    linked = event_profiles(project)
    assert (linked["t1"], linked["t2"], linked["t3"]) == (None, None, None)


def test_email_case_and_spaces_one_profile(project, tmp_path):
    path = write_jsonl(
        tmp_path / "emails.jsonl",
        [
            message("identify", "e1", userId="u_1001", traits={"email": "Jane.Doe@Example.com"}),
            message("identify", "e2", "2024-01-02T00:00:00Z", anonymousId="a-9", traits={"email": " jane.doe@example.com "}),
        ],
    )

    ingest(project, path)

    assert profile_count(project) == 1
    assert identifier_profiles(project, "email") == [("jane.doe@example.com", profile_of_users(project)["u_1001"])]
    assert set(event_profiles(project).values()) == {profile_of_users(project)["u_1001"]}


def test_anonymous_history_joins_identified_profile(project, tmp_path):
    anonymous = write_jsonl(
        tmp_path / "anonymous.jsonl",
        [
            message("page", "p1", "2024-01-01T10:00:00Z", anonymousId="a-1"),
            message("track", "t1", "2024-01-01T10:01:00Z", anonymousId="a-1", event="Product Viewed"),
        ],
    )
    ingest(project, anonymous)
    known = write_jsonl(tmp_path / "known.jsonl", [message("identify", "i1", "2024-01-01T10:02:00Z", userId="u_1", anonymousId="a-1")])

    summary = ingest(project, known)

    assert summary.resolution.profiles_created == 0
    profile = profile_of_users(project)["u_1"]
    assert set(event_profiles(project).values()) == {profile}
    first_seen = query(project, select_from("profiles", "first_seen"))
    assert [str(row[0]) for row in first_seen] == ["2024-01-01 10:00:00"]


def test_devices_merge_into_older_profile(project, tmp_path):
    path = write_jsonl(
        tmp_path / "devices.jsonl",
        [
            message("track", "phone", "2024-01-01T00:00:00Z", anonymousId="phone-1", event="Opened"),
            message("track", "laptop", "2024-01-02T00:00:00Z", anonymousId="laptop-1", event="Opened"),
            message("identify", "login_phone", "2024-01-03T00:00:00Z", userId="u_1", anonymousId="phone-1"),
            message("identify", "login_laptop", "2024-01-04T00:00:00Z", userId="u_1", anonymousId="laptop-1"),
        ],
    )

    summary = ingest(project, path)

    assert (summary.resolution.profiles_created, summary.resolution.merges) == (2, 1)
    profiles = event_profiles(project)
    assert len(set(profiles.values())) == 1
    # The phone's profile is older, so it survives and takes the laptop's.
    assert profiles["phone"] == profile_of_users(project)["u_1"]
    merges = query(
        project,
        lambda wh: sa.select(
            layout.merges.c.survivor_profile_id, layout.merges.c.merged_profile_id, layout.merges.c.message_id, layout.merges.c.refused
        ),
    )
    assert len(merges) == 1
    survivor, merged, message_id, refused = merges[0]
    assert (survivor, message_id, refused) == (profiles["phone"], "login_laptop", False)
    assert query(project, lambda wh: sa.select(layout.profiles.c.merged_into).where(layout.profiles.c.profile_id == merged)) == [
        (survivor,)
    ]


def test_limit_drops_lowest_priority_identifier(project, tmp_path):
    path = write_jsonl(
        tmp_path / "shared.jsonl",
        [
            message("identify", "m1", "2024-01-01T00:00:00Z", userId="u_1", anonymousId="kiosk"),
            message("identify", "m2", "2024-01-02T00:00:00Z", userId="u_2", anonymousId="kiosk"),
        ],
    )

    summary = ingest(project, path)

    users = profile_of_users(project)
    assert users["u_1"] != users["u_2"]
    assert summary.resolution.refused_merges == 1
    assert identifier_profiles(project, "anonymous_id") == [("kiosk", users["u_1"])]
    refused = query(
        project,
        lambda wh: sa.select(
            layout.merges.c.survivor_profile_id, layout.merges.c.profiles, layout.merges.c.identifiers,
            layout.merges.c.message_id, layout.merges.c.reason,
        ).where(layout.merges.c.refused),
    )
    assert refused == [
        (
            users["u_1"],
            [users["u_1"]],
            [{"type": "user_id", "value": "u_2"}, {"type": "anonymous_id", "value": "kiosk"}],
            "m2",
            "user_id limit 1 would be exceeded; dropped anonymous_id 'kiosk' from the message",
        )
    ]
    assert event_profiles(project)["m2"] == users["u_2"]


def test_blocked_values_and_patterns_link_nobody(make_project, tmp_path):
    project = make_project(identity={"blocked_values": ["shared"], "blocked_patterns": ["^test-"]})
    path = write_jsonl(
        tmp_path / "blocked.jsonl",
        [
            message("identify", "m1", userId="u_1", anonymousId="shared"),
            message("identify", "m2", userId="u_2", anonymousId="shared"),
            message("identify", "m3", userId="u_3", anonymousId="test-device"),
            message("identify", "m4", userId="u_4", anonymousId="test-device"),
        ],
    )

    summary = ingest(project, path)

    assert profile_count(project) == 4
    assert summary.resolution.refused_merges == 0
    assert identifier_profiles(project, "anonymous_id") == []


def reset(project) -> None:
    """Drop personas' tables, as if the warehouse were new."""
    with open_warehouse(project) as warehouse, warehouse.engine.begin() as connection:
        for table in reversed(layout.metadata.sorted_tables):
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))


def snapshot(project) -> tuple[list, list, dict]:
    identifiers = sorted(query(project, select_from("identifiers", "identifier_type", "identifier_value", "profile_id")))
    merges = query(
        project,
        lambda wh: sa.select(layout.merges.c.survivor_profile_id, layout.merges.c.merged_profile_id, layout.merges.c.refused)
        .order_by(layout.merges.c.survivor_profile_id, layout.merges.c.merged_profile_id),
    )
    return identifiers, merges, event_profiles(project)


HISTORY = [
    message("track", "h1", "2024-01-01T00:00:00Z", anonymousId="a-1", event="Opened"),
    message("track", "h2", "2024-01-01T01:00:00Z", anonymousId="a-2", event="Opened"),
    message("identify", "h3", "2024-01-01T02:00:00Z", userId="u_1", anonymousId="a-1", traits={"email": "one@example.com"}),
    message("identify", "h4", "2024-01-01T03:00:00Z", anonymousId="a-2", traits={"email": "ONE@example.com"}),
    message("identify", "h5", "2024-01-01T04:00:00Z", userId="u_2", anonymousId="a-2"),
    message("track", "h6", "2024-01-01T05:00:00Z", anonymousId="a-3", event="Opened"),
    message("identify", "h7", "2024-01-01T05:00:00Z", userId="u_3", anonymousId="a-3"),
]


def test_resolution_ignores_file_and_line_order(project, tmp_path):
    first = write_jsonl(tmp_path / "first.jsonl", HISTORY[:4])
    second = write_jsonl(tmp_path / "second.jsonl", HISTORY[4:])
    ingest(project, first, second)
    expected = snapshot(project)
    reset(project)
    shuffled_first = write_jsonl(tmp_path / "shuffled_first.jsonl", [HISTORY[6], HISTORY[1], HISTORY[4]])
    shuffled_second = write_jsonl(tmp_path / "shuffled_second.jsonl", [HISTORY[3], HISTORY[5], HISTORY[0], HISTORY[2]])

    ingest(project, shuffled_second, shuffled_first)

    assert snapshot(project) == expected
    identifiers, merges, _ = expected
    # a-1 and a-2 share an email, so they merge; u_2 on a-2 is refused (one user_id per profile).
    assert [refused for _, _, refused in merges].count(True) == 1
    assert len({profile for _, _, profile in identifiers}) == 3


def test_profile_ids_stable_across_rebuilds(project, tmp_path):
    path = write_jsonl(tmp_path / "history.jsonl", HISTORY)
    ingest(project, path)
    expected = snapshot(project)

    ingest(project, path)
    assert snapshot(project) == expected

    with open_warehouse(project) as warehouse:
        assert resolve(warehouse, project.settings.identity, full=True).full
    assert snapshot(project) == expected

    reset(project)
    ingest(project, path)
    assert snapshot(project) == expected


def test_changed_rules_resolve_from_scratch(make_project, tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            message("track", "t1", "2024-01-01T00:00:00Z", anonymousId="a-1", event="Opened"),
            message("identify", "i1", "2024-01-01T01:00:00Z", userId="u_1", anonymousId="a-1"),
        ],
    )
    ingest(make_project(), path)
    changed = make_project(identity={"blocked_values": ["", "a-1"]})

    with open_warehouse(changed) as warehouse:
        first = resolve(warehouse, changed.settings.identity)
        again = resolve(warehouse, changed.settings.identity)

    assert (first.full, first.messages, first.unlinked) == (True, 2, 1)
    assert (again.full, again.messages) == (False, 0)
    assert identifier_profiles(changed, "anonymous_id") == []
    assert event_profiles(changed)["t1"] is None


def test_later_batch_resolves_incrementally(project, tmp_path):
    ingest(project, write_jsonl(tmp_path / "one.jsonl", [message("identify", "m1", userId="u_1", anonymousId="a-1")]))

    summary = ingest(
        project,
        write_jsonl(tmp_path / "two.jsonl", [message("track", "m2", "2024-02-01T00:00:00Z", anonymousId="a-1", event="Opened")]),
    )

    assert (summary.resolution.full, summary.resolution.messages, summary.resolution.profiles_created) == (False, 1, 0)
    assert event_profiles(project)["m2"] == profile_of_users(project)["u_1"]
    last_seen = query(project, select_from("identifiers", "last_seen", where=lambda relation: relation.c.identifier_value == "a-1"))
    assert str(last_seen[0][0]) == "2024-02-01 00:00:00"


def test_group_calls_link_current_profile(project, tmp_path):
    earlier = write_jsonl(
        tmp_path / "groups.jsonl",
        [
            message("identify", "i1", "2024-01-01T00:00:00Z", userId="u_1"),
            message("group", "g1", "2024-01-02T00:00:00Z", anonymousId="a-1", groupId="acme", traits={"plan": "pro"}),
        ],
    )
    ingest(project, earlier)
    anonymous_profile = event_profiles(project)["g1"]

    # The anonymous visitor who joined acme turns out to be u_1: their profile merges into u_1's.
    ingest(project, write_jsonl(tmp_path / "login.jsonl", [message("identify", "i2", "2024-01-03T00:00:00Z", userId="u_1", anonymousId="a-1")]))

    assert anonymous_profile != profile_of_users(project)["u_1"]
    assert query(project, lambda wh: sa.select(wh.account_users())) == [("acme", profile_of_users(project)["u_1"])]
    traits = query(project, select_from("events", "traits", where=lambda relation: relation.c.type == "group"))
    assert traits == [({"plan": "pro"},)]


def test_refused_set_repeats_resolve_in_order(project, tmp_path):
    # u_2 arrives on the kiosk that u_1 used, twice. Between the two, u_1's profile merges
    # into an older one, so the second refusal names the profiles of that moment.
    path = write_jsonl(
        tmp_path / "kiosk.jsonl",
        [
            message("track", "m5", "2024-01-05T00:00:00Z", userId="u_2", anonymousId="kiosk", event="Opened"),
            message("page", "m0", "2024-01-01T00:00:00Z", anonymousId="laptop"),
            message("identify", "m1", "2024-01-02T00:00:00Z", userId="u_1", anonymousId="kiosk"),
            message("identify", "m2", "2024-01-03T00:00:00Z", userId="u_2", anonymousId="kiosk"),
            message("identify", "m4", "2024-01-04T00:00:00Z", userId="u_1", anonymousId="laptop"),
            message("track", "m6", "2024-01-06T00:00:00Z", userId="u_1", anonymousId="laptop", event="Opened"),
        ],
    )

    summary = ingest(project, path)

    oldest, first_u1, first_u2 = profile_id_for("m0"), profile_id_for("m1"), profile_id_for("m2")
    assert (summary.resolution.profiles_created, summary.resolution.merges, summary.resolution.refused_merges) == (3, 1, 2)
    assert profile_of_users(project) == {"u_1": oldest, "u_2": first_u2}
    assert event_profiles(project) == {"m0": oldest, "m1": oldest, "m2": first_u2, "m4": oldest, "m5": first_u2, "m6": oldest}
    refused = query(
        project,
        lambda wh: sa.select(layout.merges.c.message_id, layout.merges.c.survivor_profile_id, layout.merges.c.profiles)
        .where(layout.merges.c.refused)
        .order_by(layout.merges.c.message_timestamp),
    )
    assert refused == [("m2", first_u1, [first_u1]), ("m5", oldest, sorted([oldest, first_u2]))]


def test_repeated_set_widens_identifier_times(project, tmp_path):
    path = write_jsonl(
        tmp_path / "repeats.jsonl",
        [
            message("track", "r2", "2024-03-01T00:00:00Z", userId="u_1", event="Opened"),
            message("track", "r1", "2024-01-01T00:00:00Z", userId="u_1", event="Opened"),
            message("track", "r3", "2024-02-01T00:00:00Z", userId=" u_1 ", event="Opened"),
        ],
    )

    ingest(project, path)

    identifiers = layout.identifiers
    assert query(
        project, lambda wh: sa.select(identifiers.c.identifier_value, identifiers.c.first_seen, identifiers.c.last_seen)
    ) == [("u_1", datetime(2024, 1, 1), datetime(2024, 3, 1))]
    assert query(project, lambda wh: sa.select(layout.profiles.c.profile_id, layout.profiles.c.first_seen)) == [
        (profile_id_for("r1"), datetime(2024, 1, 1))
    ]
