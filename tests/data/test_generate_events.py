"""The benchmark event generator: reproducible, valid, and shaped like real traffic."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict

import pytest

from .helpers import REPOSITORY, read_messages, run_script

SCRIPT = REPOSITORY / "benchmarks" / "generate_events.py"
EVENTS = 20_000
JUNK_ANONYMOUS_IDS = {"anonymous", "null", "undefined", "", "00000000-0000-0000-0000-000000000000"}
JUNK_USER_IDS = {"", "null", "undefined", "0"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("generated") / "events.jsonl.gz"
    result = run_script(SCRIPT, "--events", EVENTS, "--out", path, "--seed", 11)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def messages(generated) -> list[dict]:
    return read_messages(generated)


def test_generator_writes_exact_count(messages):
    assert len(messages) == EVENTS


def test_generator_same_seed_same_bytes(generated, tmp_path):
    again = tmp_path / "again.jsonl.gz"
    assert run_script(SCRIPT, "--events", EVENTS, "--out", again, "--seed", 11).returncode == 0
    assert again.read_bytes() == generated.read_bytes()


def test_generator_other_seed_other_data(generated, tmp_path):
    other = tmp_path / "other.jsonl.gz"
    assert run_script(SCRIPT, "--events", EVENTS, "--out", other, "--seed", 12).returncode == 0
    assert gzip.decompress(other.read_bytes()) != gzip.decompress(generated.read_bytes())


def test_generator_lines_are_json_objects(generated):
    with gzip.open(generated, "rt", encoding="utf-8") as lines:
        for line in lines:
            assert isinstance(json.loads(line), dict)


def test_generator_message_ids_unique(messages):
    assert len({message["messageId"] for message in messages}) == EVENTS


def test_generator_every_message_has_anonymous_id_and_time(messages):
    for message in messages:
        assert "anonymousId" in message
        assert "2024-01-01T00:00:00.000Z" <= message["timestamp"] < "2024-07-01T00:00:00.000Z"


def test_generator_call_type_shares(messages):
    shares = {kind: count / EVENTS for kind, count in Counter(m["type"] for m in messages).items()}
    assert set(shares) == {"track", "page", "identify", "group"}
    assert 0.5 < shares["track"] < 0.7
    assert 0.3 < shares["page"] < 0.45
    assert 0.005 < shares["identify"] < 0.05
    assert 0.001 < shares["group"] < 0.01


def test_generator_anonymous_traffic_present(messages):
    anonymous = sum(1 for m in messages if "userId" not in m) / EVENTS
    assert 0.2 < anonymous < 0.6


def test_generator_logins_link_devices(messages):
    identifies = [m for m in messages if m["type"] == "identify"]
    assert identifies
    for message in identifies:
        assert "userId" in message
        assert "anonymousId" in message
        assert set(message["traits"]) == {"email", "marketing_email", "marketing_sms"}
        assert isinstance(message["traits"]["marketing_email"], bool)
        assert isinstance(message["traits"]["marketing_sms"], bool)


def test_generator_people_use_several_devices(messages):
    devices = defaultdict(set)
    for message in messages:
        if message.get("userId") not in JUNK_USER_IDS | {None}:
            devices[message["userId"]].add(message["anonymousId"])
    assert sum(1 for found in devices.values() if len(found) >= 2) > 10


def test_generator_some_devices_shared(messages):
    users = defaultdict(set)
    for message in messages:
        user_id = message.get("userId")
        if user_id not in JUNK_USER_IDS | {None} and message["anonymousId"] not in JUNK_ANONYMOUS_IDS:
            users[message["anonymousId"]].add(user_id)
    assert sum(1 for found in users.values() if len(found) == 2) >= 1


def test_generator_junk_ids_about_one_percent(messages):
    junk_anonymous = sum(1 for m in messages if m["anonymousId"] in JUNK_ANONYMOUS_IDS) / EVENTS
    junk_user = sum(1 for m in messages if m.get("userId") in JUNK_USER_IDS) / EVENTS
    assert 0 < junk_anonymous < 0.05
    assert 0 < junk_user < 0.02


def test_generator_email_variants(messages):
    emails = [m["traits"]["email"] for m in messages if m["type"] == "identify"]
    assert any(email != email.strip() for email in emails)
    assert any(email != email.lower() for email in emails)
    assert all(email.strip().lower().endswith("@example.com") for email in emails)


def test_generator_revenue_kinds(messages):
    revenues = [m["properties"]["revenue"] for m in messages if m.get("event") == "Order Completed"]
    numbers = [r for r in revenues if isinstance(r, float)]
    numeric_text = [r for r in revenues if isinstance(r, str) and r.replace(".", "", 1).isdigit()]
    invalid = [r for r in revenues if isinstance(r, str) and not r.replace(".", "", 1).isdigit()]
    assert len(revenues) > 100
    assert len(numbers) + len(numeric_text) + len(invalid) == len(revenues)
    assert 0.8 < len(numbers) / len(revenues) < 0.95
    assert 0.05 < len(numeric_text) / len(revenues) < 0.2
    assert 0 < len(invalid) / len(revenues) < 0.05


def test_generator_commerce_events(messages):
    events = Counter(m["event"] for m in messages if m["type"] == "track")
    assert set(events) == {"Product Viewed", "Product Added", "Checkout Started", "Order Completed"}
    assert events["Product Viewed"] > events["Product Added"] > events["Checkout Started"] > events["Order Completed"]


def test_generator_group_calls_name_accounts(messages):
    groups = [m for m in messages if m["type"] == "group"]
    for message in groups:
        assert message["groupId"].startswith("acct_")
        assert set(message["traits"]) == {"name", "plan", "employees"}
        assert message["userId"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--events", "0"], "--events must be at least 1"), (["--events", "5", "--start", "2024-02-01", "--end", "2024-01-01"], "must come after")],
)
def test_generator_bad_arguments_rejected(tmp_path, arguments, message):
    result = run_script(SCRIPT, *arguments, "--out", tmp_path / "x.jsonl.gz")
    assert result.returncode == 2
    assert message in result.stderr
