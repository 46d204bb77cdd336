#!/usr/bin/env python3
"""Convert the synthetic shop clickstream CSV into Segment messages.

Input: a CSV (plain or gzip) with the columns user_id, session_id, event,
timestamp, platform, acquisition_channel, user_cohort and user_lifecycle.
Timestamps carry no zone and are taken as UTC. Output: gzip JSON Lines in
input order.

Each row becomes one message. Rows that show a page become `page` calls
named after the page (`home` -> a page named "Home"), and personas counts
them as `Page Viewed` events. Every other row becomes a `track` whose event
name follows the Segment e-commerce naming (`add_to_cart` -> "Product
Added"); see EVENTS and PAGES. Both carry the properties session_id and
platform, and page calls also carry their name as `properties.name`, as
Segment's analytics.js does.

The first row of each session also yields an `identify` call with the same
userId and timestamp, carrying the traits platform and user_lifecycle (per
session in the data) and acquisition_channel and cohort (per user).

messageIds derive from the data line number: `shop-000001` for the message of
data line 1 and `shop-000001-identify` for the identify it opens. At equal
timestamps `shop-000001` sorts before `shop-000001-identify`, so in
(timestamp, messageId) order the identify directly follows the event of
the row it was made from. The gzip header carries no file name and mtime 0,
so the same input and zlib give the same bytes.

Usage: python scripts/convert_shop.py shop_clickstream.csv.gz [--out FILE]
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from conversion_io import ConversionError, run_conversion

HEADER = [
    "user_id", "session_id", "event", "timestamp", "platform", "acquisition_channel", "user_cohort", "user_lifecycle",
]
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "specs" / "shop" / "data" / "shop_events.jsonl.gz"

# Raw event name -> track event name.
EVENTS = {
    "product_view": "Product Viewed",
    "search": "Products Searched",
    "filter_results": "Product List Filtered",
    "compare": "Products Compared",
    "wishlist_add": "Product Added to Wishlist",
    "add_to_cart": "Product Added",
    "cart": "Cart Viewed",
    "shipping_details": "Checkout Started",
    "payment_details": "Payment Info Entered",
    "purchase": "Order Completed",
    "payment_error": "Payment Failed",
    "checkout_bug": "Checkout Error",
    "support_chat": "Support Chat Started",
}

# Raw event name -> page name, for rows that show a page.
PAGES = {
    "home": "Home",
    "catalog": "Catalog",
    "promo_page": "Promo",
    "account_page": "Account",
    "review_page": "Reviews",
    "error_page": "Error",
}


def to_json(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def iso_utc(number: int, text: str) -> str:
    """Return `2024-03-13T10:21:14Z` for `2024-03-13 10:21:14`, a time without zone taken as UTC."""
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ConversionError(f"data line {number}: invalid timestamp {text!r}: expected YYYY-MM-DD HH:MM:SS") from None
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def event_message(number: int, row: dict[str, str], timestamp: str) -> dict:
    """Return the track or page message of one row."""
    raw = row["event"]
    base = {"messageId": f"shop-{number:06d}", "userId": row["user_id"]}
    properties = {"session_id": row["session_id"], "platform": row["platform"]}
    if raw in PAGES:
        name = PAGES[raw]
        return {"type": "page", **base, "name": name, "timestamp": timestamp, "properties": {"name": name, **properties}}
    if raw in EVENTS:
        return {"type": "track", **base, "event": EVENTS[raw], "timestamp": timestamp, "properties": properties}
    known = ", ".join(sorted([*EVENTS, *PAGES]))
    raise ConversionError(f"data line {number}: unknown event {raw!r}: add it to EVENTS or PAGES (known: {known})")


def identify_message(number: int, row: dict[str, str], timestamp: str) -> dict:
    """Return the identify call made at the first row of a session."""
    return {
        "type": "identify",
        "messageId": f"shop-{number:06d}-identify",
        "userId": row["user_id"],
        "timestamp": timestamp,
        "traits": {
            "platform": row["platform"],
            "user_lifecycle": row["user_lifecycle"],
            "acquisition_channel": row["acquisition_channel"],
            "cohort": row["user_cohort"],
        },
    }


def convert(source: Iterable[str]) -> Iterator[str]:
    """Yield the JSON text of each message, in input order."""
    reader = csv.reader(source)
    header = next(reader, [])
    if header != HEADER:
        raise ConversionError(f"unexpected header {header!r}: expected the columns {','.join(HEADER)}")
    sessions_seen: set[str] = set()
    for number, fields in enumerate(reader, start=1):
        if len(fields) != len(HEADER):
            raise ConversionError(f"data line {number}: expected {len(HEADER)} columns, found {len(fields)}")
        row = dict(zip(HEADER, fields))
        if not row["user_id"] or not row["session_id"]:
            raise ConversionError(f"data line {number}: user_id and session_id must not be empty")
        timestamp = iso_utc(number, row["timestamp"])

        yield to_json(event_message(number, row, timestamp))
        if row["session_id"] not in sessions_seen:
            sessions_seen.add(row["session_id"])
            yield to_json(identify_message(number, row, timestamp))


def main(argv: list[str] | None = None) -> int:
    return run_conversion(
        argv,
        "Convert the shop clickstream CSV into Segment messages (gzip JSON Lines).",
        "the clickstream CSV, plain or gzip",
        DEFAULT_OUTPUT,
        convert,
    )


if __name__ == "__main__":
    sys.exit(main())
