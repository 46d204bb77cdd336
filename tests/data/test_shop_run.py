"""A run of the shop example project gives the members worked out independently from its data."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from .helpers import REPOSITORY, read_messages

SHOP = REPOSITORY / "specs" / "shop"
AS_OF = datetime(2024, 7, 1)


def _time(message: dict) -> datetime:
    return datetime.strptime(message["timestamp"], "%Y-%m-%dT%H:%M:%SZ")


def _events(messages: list[dict]) -> dict[str, list[tuple[datetime, str, str]]]:
    """Return (time, messageId, event name) per user, in (timestamp, messageId) order."""
    events = defaultdict(list)
    for message in messages:
        if message["type"] == "track":
            events[message["userId"]].append((_time(message), message["messageId"], message["event"]))
        elif message["type"] == "page":
            events[message["userId"]].append((_time(message), message["messageId"], "Page Viewed"))
    return {user: sorted(found) for user, found in events.items()}


def _did(found, name: str, since: datetime) -> bool:
    return any(event == name and moment >= since for moment, _, event in found)


def expected_cart_abandoners(events) -> set[str]:
    members = set()
    for user, found in events.items():
        views = [(moment, message_id) for moment, message_id, event in found if event == "Product Viewed" and moment >= AS_OF - timedelta(days=7)]
        adds = [(moment, message_id) for moment, message_id, event in found if event == "Product Added"]
        sequence = any(view < add and add[0] - view[0] <= timedelta(hours=1) for view in views for add in adds)
        if sequence and not _did(found, "Order Completed", AS_OF - timedelta(days=7)):
            members.add(user)
    return members


def expected_payment_failed_recent(events) -> set[str]:
    return {
        user for user, found in events.items()
        if _did(found, "Payment Failed", AS_OF - timedelta(days=30)) and not _did(found, "Order Completed", AS_OF - timedelta(days=3))
    }


def expected_mobile_users(messages: list[dict]) -> set[str]:
    latest: dict[str, tuple] = {}
    for message in messages:
        if message["type"] == "identify":
            key = (_time(message), message["messageId"])
            if message["userId"] not in latest or key > latest[message["userId"]][0]:
                latest[message["userId"]] = (key, message["traits"]["platform"])
    return {user for user, (_, platform) in latest.items() if platform == "mobile"}


def expected_power_users(messages: list[dict], events) -> set[str]:
    sessions = defaultdict(set)
    for message in messages:
        if message["type"] == "page":
            sessions[message["userId"]].add(message["properties"]["session_id"])
    orders = {
        user: sum(1 for moment, _, event in found if event == "Order Completed" and moment >= AS_OF - timedelta(days=90))
        for user, found in events.items()
    }
    return {user for user in events if len(sessions[user]) >= 8 and orders[user] >= 2}


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> dict[str, set[str]]:
    """Ingest the shop data into a copy of the project, apply and run it, and return the user ids of each audience."""
    import duckdb
    from click.testing import CliRunner

    from reconciler.cli import cli
    from reconciler.engine.ingest import ingest_files
    from reconciler.engine.warehouse import open_warehouse
    from reconciler.project import load_project

    project_dir = tmp_path_factory.mktemp("shop") / "shop"
    shutil.copytree(SHOP, project_dir, ignore=shutil.ignore_patterns(".personas", "exports"))
    # The project's defaults (files under .personas/) apply, whatever the environment sets.
    unset = {"PERSONAS_WAREHOUSE_URL": None, "PERSONAS_STATE_URL": None}
    project = load_project(project_dir, env={})
    with open_warehouse(project) as warehouse:
        ingest_files(warehouse, [project_dir / "data" / "shop_events.jsonl.gz"])

    runner = CliRunner()
    for arguments in (["apply", "--auto-approve"], ["run", "--no-sync"]):
        result = runner.invoke(cli, ["--project", str(project_dir), *arguments], env=unset)
        assert result.exit_code == 0, result.output

    connection = duckdb.connect(str(project_dir / ".personas" / "warehouse.duckdb"), read_only=True)
    rows = connection.execute("SELECT audience, subject_id FROM personas_audience_members").fetchall()
    profiles = dict(connection.execute(
        "SELECT profile_id, identifier_value FROM personas_identifiers WHERE identifier_type = 'user_id'"
    ).fetchall())
    connection.close()
    found = defaultdict(set)
    for audience, subject_id in rows:
        found[audience].add(profiles[subject_id])
    return found


@pytest.fixture(scope="module")
def messages() -> list[dict]:
    return read_messages(SHOP / "data" / "shop_events.jsonl.gz")


@pytest.mark.slow
def test_shop_cart_abandoners_members(members, messages):
    expected = expected_cart_abandoners(_events(messages))
    assert len(expected) == 33
    assert members["cart_abandoners"] == expected


@pytest.mark.slow
def test_shop_payment_failed_recent_members(members, messages):
    expected = expected_payment_failed_recent(_events(messages))
    assert len(expected) == 32
    assert members["payment_failed_recent"] == expected


@pytest.mark.slow
def test_shop_mobile_users_members(members, messages):
    expected = expected_mobile_users(messages)
    assert len(expected) == 220
    assert members["mobile_users"] == expected


@pytest.mark.slow
def test_shop_power_users_members(members, messages):
    expected = expected_power_users(messages, _events(messages))
    assert len(expected) == 20
    assert members["power_users"] == expected
