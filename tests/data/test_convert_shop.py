"""The converted shop clickstream: counts, message shapes and reproducibility."""

from __future__ import annotations

import gzip
from collections import Counter

import pytest

from .helpers import REPOSITORY, raw_input, read_messages, run_script

SCRIPT = REPOSITORY / "scripts" / "convert_shop.py"
CONVERTED = REPOSITORY / "specs" / "shop" / "data" / "shop_events.jsonl.gz"
HEADER = "user_id,session_id,event,timestamp,platform,acquisition_channel,user_cohort,user_lifecycle\n"


@pytest.fixture(scope="module")
def messages() -> list[dict]:
    return read_messages(CONVERTED)


def test_shop_one_event_per_row(messages):
    types = Counter(message["type"] for message in messages)
    assert types["track"] + types["page"] == 31_106
    assert types["track"] == 19_686
    assert types["page"] == 11_420


def test_shop_one_identify_per_session(messages):
    events = [m for m in messages if m["type"] != "identify"]
    identifies = [m for m in messages if m["type"] == "identify"]
    assert len(identifies) == len({m["properties"]["session_id"] for m in events}) == 3_605


def test_shop_user_count(messages):
    assert len({message["userId"] for message in messages}) == 600


def test_shop_message_ids_unique(messages):
    assert len({message["messageId"] for message in messages}) == len(messages)


def test_shop_time_range(messages):
    timestamps = sorted(message["timestamp"] for message in messages)
    assert timestamps[0] == "2024-01-04T11:45:38Z"
    assert timestamps[-1] == "2024-06-29T22:02:40Z"


def test_shop_event_names(messages):
    names = Counter(m["event"] for m in messages if m["type"] == "track")
    assert names["Product Viewed"] == 6_851
    assert names["Product Added"] == 1_346
    assert names["Cart Viewed"] == 1_204
    assert names["Order Completed"] == 470
    assert names["Payment Failed"] == 119
    assert names["Products Searched"] == 4_011
    pages = Counter(m["name"] for m in messages if m["type"] == "page")
    assert pages == {"Catalog": 6_521, "Home": 2_762, "Promo": 796, "Account": 659, "Reviews": 406, "Error": 276}


def test_shop_identify_follows_session_opening_row(messages):
    assert messages[0]["messageId"] == "shop-000001"
    assert messages[1] == {
        "type": "identify",
        "messageId": "shop-000001-identify",
        "userId": "user_0000",
        "timestamp": "2024-03-13T10:21:14Z",
        "traits": {"platform": "desktop", "user_lifecycle": "returning", "acquisition_channel": "email", "cohort": "2024-01"},
    }


def test_shop_page_call_shape(messages):
    assert messages[0] == {
        "type": "page",
        "messageId": "shop-000001",
        "userId": "user_0000",
        "name": "Home",
        "timestamp": "2024-03-13T10:21:14Z",
        "properties": {"name": "Home", "session_id": "sess_000001", "platform": "desktop"},
    }


def test_shop_reconversion_matches_checked_in_file(tmp_path):
    source = raw_input("shop_clickstream.csv.gz")
    first, second = tmp_path / "first.jsonl.gz", tmp_path / "second.jsonl.gz"

    assert run_script(SCRIPT, source, "--out", first).returncode == 0
    assert run_script(SCRIPT, source, "--out", second).returncode == 0

    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == gzip.decompress(CONVERTED.read_bytes())


def test_shop_second_session_gets_its_own_identify(tmp_path):
    source = tmp_path / "shop.csv"
    source.write_text(
        HEADER
        + "u1,s1,add_to_cart,2024-02-01 09:00:00,mobile,social,2024-01,new\n"
        + "u1,s1,purchase,2024-02-01 09:05:00,mobile,social,2024-01,new\n"
        + "u1,s2,payment_error,2024-02-03 18:30:00,desktop,social,2024-01,returning\n"
    )
    output = tmp_path / "out.jsonl.gz"

    result = run_script(SCRIPT, source, "--out", output)

    assert result.returncode == 0, result.stderr
    assert [(m["messageId"], m["type"], m.get("event")) for m in read_messages(output)] == [
        ("shop-000001", "track", "Product Added"),
        ("shop-000001-identify", "identify", None),
        ("shop-000002", "track", "Order Completed"),
        ("shop-000003", "track", "Payment Failed"),
        ("shop-000003-identify", "identify", None),
    ]
    assert read_messages(output)[4]["traits"]["user_lifecycle"] == "returning"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("u1,s1,teleport,2024-02-01 09:00:00,mobile,social,2024-01,new\n", "data line 1: unknown event 'teleport'"),
        ("u1,s1,purchase,2024-02-01T09:00:00,mobile,social,2024-01,new\n", "data line 1: invalid timestamp"),
        ("u1,s1,purchase\n", "data line 1: expected 8 columns, found 3"),
        (",s1,purchase,2024-02-01 09:00:00,mobile,social,2024-01,new\n", "data line 1: user_id and session_id must not be empty"),
    ],
)
def test_shop_bad_input_rejected_without_output(tmp_path, row, message):
    source = tmp_path / "bad.csv"
    source.write_text(HEADER + row)
    output = tmp_path / "out.jsonl.gz"

    result = run_script(SCRIPT, source, "--out", output)

    assert result.returncode == 1
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == [source]
