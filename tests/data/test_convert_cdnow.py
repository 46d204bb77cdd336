"""The converted CDNOW file: its counts, shape and reproducibility."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal

import pytest

from .helpers import REPOSITORY, raw_input, read_messages, run_script

SCRIPT = REPOSITORY / "scripts" / "convert_cdnow.py"
CONVERTED = REPOSITORY / "specs" / "cdnow" / "data" / "cdnow_orders.jsonl.gz"


@pytest.fixture(scope="module")
def messages() -> list[dict]:
    return read_messages(CONVERTED)


def test_cdnow_message_count(messages):
    assert len(messages) == 69_659


def test_cdnow_distinct_customers(messages):
    assert len({message["userId"] for message in messages}) == 23_570


def test_cdnow_distinct_customer_days(messages):
    assert len({(message["userId"], message["timestamp"]) for message in messages}) == 67_591


def test_cdnow_zero_dollar_orders_kept(messages):
    assert sum(1 for message in messages if message["properties"]["revenue"] == 0) == 80


def test_cdnow_repeated_rows_stay_distinct(messages):
    contents = [json.dumps({k: v for k, v in m.items() if k != "messageId"}, sort_keys=True) for m in messages]
    assert len(contents) - len(set(contents)) == 255
    assert len({message["messageId"] for message in messages}) == 69_659


def test_cdnow_ids_are_zero_padded_strings(messages):
    assert messages[0]["userId"] == "00001"
    assert messages[-1]["userId"] == "23570"
    assert all(isinstance(m["userId"], str) and len(m["userId"]) == 5 for m in messages)


def test_cdnow_first_and_last_dates(messages):
    timestamps = sorted(message["timestamp"] for message in messages)
    assert timestamps[0] == "1997-01-01T00:00:00Z"
    assert timestamps[-1] == "1998-06-30T00:00:00Z"


def test_cdnow_first_message_whole(messages):
    assert messages[0] == {
        "type": "track",
        "messageId": "cdnow-000001",
        "userId": "00001",
        "event": "Order Completed",
        "timestamp": "1997-01-01T00:00:00Z",
        "properties": {"revenue": 11.77, "quantity": 1},
    }


def test_cdnow_revenue_text_written_as_in_source():
    # Line 2 of the source reads "00002 19970112  1   12.00": the two decimals stay.
    with gzip.open(CONVERTED, "rt", encoding="utf-8") as lines:
        first, second = next(lines), next(lines)
    assert '"revenue":11.77,' in first
    assert '"revenue":12.00,' in second
    assert json.loads(second, parse_float=Decimal)["properties"]["revenue"] == Decimal("12.00")


def test_cdnow_reconversion_matches_checked_in_file(tmp_path):
    source = raw_input("cdnow_master.txt.gz")
    first, second = tmp_path / "first.jsonl.gz", tmp_path / "second.jsonl.gz"

    assert run_script(SCRIPT, source, "--out", first).returncode == 0
    assert run_script(SCRIPT, source, "--out", second).returncode == 0

    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()) == gzip.decompress(CONVERTED.read_bytes())


def test_cdnow_plain_text_input_converts(tmp_path):
    source = tmp_path / "cdnow.txt"
    source.write_bytes(b" customer_id  date number_of_cds  dollar_value\r\n 00007 19980630  3   0.00\r\n")
    output = tmp_path / "out.jsonl.gz"

    result = run_script(SCRIPT, source, "--out", output)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote 1 messages to {output}\n"
    assert gzip.decompress(output.read_bytes()).decode() == (
        '{"type":"track","messageId":"cdnow-000001","userId":"00007","event":"Order Completed",'
        '"timestamp":"1998-06-30T00:00:00Z","properties":{"revenue":0.00,"quantity":3}}\n'
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id date cds dollars\r\n", "unexpected header"),
        (b"customer_id date number_of_cds dollar_value\r\n00001 19970101 1\r\n", "data line 1: expected 4 columns, found 3"),
        (b"customer_id date number_of_cds dollar_value\r\n00001 19970231 1 1.00\r\n", "data line 1: invalid date '19970231'"),
        (b"customer_id date number_of_cds dollar_value\r\n00001 19970101 1 1e3\r\n", "data line 1: invalid dollar value '1e3'"),
        (b"customer_id date number_of_cds dollar_value\r\nabc 19970101 1 1.00\r\n", "data line 1: invalid customer id 'abc'"),
    ],
)
def test_cdnow_bad_input_rejected_without_output(tmp_path, content, message):
    source = tmp_path / "bad.txt"
    source.write_bytes(content)
    output = tmp_path / "out.jsonl.gz"

    result = run_script(SCRIPT, source, "--out", output)

    assert result.returncode == 1
    assert message in result.stderr
    assert "The output file was not written." in result.stderr
    assert list(tmp_path.iterdir()) == [source]


def test_cdnow_total_revenue_exact():
    # The sum of the source's dollar_value column, added up as decimals.
    with gzip.open(CONVERTED, "rt", encoding="utf-8") as lines:
        total = sum(json.loads(line, parse_float=Decimal)["properties"]["revenue"] for line in lines)
    assert total == Decimal("2500315.63")
