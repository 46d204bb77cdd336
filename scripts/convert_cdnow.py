#!/usr/bin/env python3
"""Convert the CDNOW transaction log into Segment `track` messages.

Input: the CDNOW master file (plain or gzip), whitespace-separated columns
`customer_id date number_of_cds dollar_value` under one header line, with
CRLF line ends. Output: gzip JSON Lines, one `Order Completed` track per data
line, in input order::

    {"type":"track","messageId":"cdnow-000001","userId":"00001",
     "event":"Order Completed","timestamp":"1997-01-01T00:00:00Z",
     "properties":{"revenue":11.77,"quantity":1}}

The customer id keeps its zero padding and stays a string. The date becomes
midnight UTC. The dollar value is copied as written, so `11.77` is the JSON
number 11.77 and no float rounding creeps in. The messageId comes from the
data line number, so rows that repeat another row exactly stay distinct
orders, and converting again yields the same ids. The gzip header carries no
file name and mtime 0, so the same input and zlib give the same bytes.

Usage: python scripts/convert_cdnow.py cdnow_master.txt.gz [--out FILE]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from conversion_io import ConversionError, run_conversion

HEADER = ["customer_id", "date", "number_of_cds", "dollar_value"]
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "specs" / "cdnow" / "data" / "cdnow_orders.jsonl.gz"

# The JSON number grammar without exponents: no leading zeros, optional fraction.
_JSON_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?$")
_CUSTOMER_ID = re.compile(r"^[0-9]+$")


def convert_line(number: int, fields: list[str]) -> str:
    """Return the JSON text of the track for data line `number` (1-based)."""
    if len(fields) != len(HEADER):
        raise ConversionError(f"data line {number}: expected {len(HEADER)} columns, found {len(fields)}")
    customer_id, date_text, quantity_text, revenue_text = fields

    if not _CUSTOMER_ID.match(customer_id):
        raise ConversionError(f"data line {number}: invalid customer id {customer_id!r}: expected digits")
    try:
        day = datetime.strptime(date_text, "%Y%m%d")
    except ValueError:
        raise ConversionError(f"data line {number}: invalid date {date_text!r}: expected YYYYMMDD") from None
    if not quantity_text.isdigit():
        raise ConversionError(f"data line {number}: invalid number of CDs {quantity_text!r}: expected a whole number")
    if not _JSON_DECIMAL.match(revenue_text):
        raise ConversionError(f"data line {number}: invalid dollar value {revenue_text!r}: expected a number such as 11.77")

    # The revenue text goes into the JSON verbatim because the check above proved it a valid JSON number.
    return (
        '{"type":"track",'
        f'"messageId":{json.dumps(f"cdnow-{number:06d}")},'
        f'"userId":{json.dumps(customer_id)},'
        '"event":"Order Completed",'
        f'"timestamp":"{day:%Y-%m-%d}T00:00:00Z",'
        f'"properties":{{"revenue":{revenue_text},"quantity":{int(quantity_text)}}}}}'
    )


def convert(lines: Iterable[str]) -> Iterator[str]:
    """Yield one JSON text per data line, after checking the header line."""
    iterator = iter(lines)
    header = next(iterator, "").split()
    if header != HEADER:
        raise ConversionError(f"unexpected header {header!r}: expected the columns {' '.join(HEADER)}")
    number = 0
    for line in iterator:
        fields = line.split()
        if not fields:
            continue
        number += 1
        yield convert_line(number, fields)


def main(argv: list[str] | None = None) -> int:
    return run_conversion(
        argv,
        "Convert the CDNOW transaction log into Segment track messages (gzip JSON Lines).",
        "the CDNOW master file, plain or gzip",
        DEFAULT_OUTPUT,
        convert,
    )


if __name__ == "__main__":
    sys.exit(main())
