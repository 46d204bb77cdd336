"""The CDNOW example project end to end: ingest, apply, run, preview.

Expected sizes are recomputed here in plain Python from the converted file,
independently of the SQL compiler.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.engine_compute.project_helpers import personas

EXAMPLE = Path(__file__).resolve().parents[2] / "specs" / "cdnow"
AS_OF = datetime(1998, 7, 1)

pytestmark = pytest.mark.slow


def expected_sizes() -> dict[str, int]:
    orders: dict[str, list[tuple[datetime, Decimal, int]]] = defaultdict(list)
    with gzip.open(EXAMPLE / "data" / "cdnow_orders.jsonl.gz", "rt") as lines:
        for line in lines:
            message = json.loads(line, parse_float=Decimal)
            at = datetime.fromisoformat(message["timestamp"].replace("Z", ""))
            if at < AS_OF:
                props = message["properties"]
                orders[message["userId"]].append((at, Decimal(props["revenue"]), int(props["quantity"])))

    def ordered(history, start, end):
        return any(start <= at < end for at, _, _ in history)

    day = timedelta(days=1)
    sizes = defaultdict(int)
    for history in orders.values():
        ltv = sum(revenue for _, revenue, _ in history)
        last = max(at for at, _, _ in history)
        sizes["repeat_buyers"] += len(history) >= 2
        sizes["lapsed"] += not ordered(history, AS_OF - 365 * day, AS_OF)
        winback = ordered(history, AS_OF - 120 * day, AS_OF - 45 * day) and not ordered(history, AS_OF - 45 * day, AS_OF)
        sizes["winback"] += winback
        sizes["one_and_done"] += len(history) == 1 and last < AS_OF - 90 * day
        sizes["high_value"] += ltv >= 500
        sizes["high_value_at_risk"] += ltv >= 500 and not ordered(history, AS_OF - 180 * day, AS_OF) and not winback
        sizes["bulk_buyers"] += any(quantity >= 5 and revenue >= 50 for _, revenue, quantity in history)
        sizes["new_customers"] += min(at for at, _, _ in history) >= AS_OF - 90 * day
    return dict(sizes)


def test_cdnow_example_ingests_applies_runs_and_previews(tmp_path):
    root = tmp_path / "cdnow"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".personas", "exports"))
    assert personas(root, "validate").exit_code == 0
    ingested = personas(root, "ingest", str(root / "data" / "cdnow_orders.jsonl.gz"))
    assert ingested.exit_code == 0, ingested.output
    assert personas(root, "apply", "--auto-approve").exit_code == 0

    run = personas(root, "run", "--as-of", "1998-07-01T00:00:00Z", "--no-sync")
    assert run.exit_code == 0, run.output
    sizes = {
        line.split()[0].removeprefix("audience."): int(line.split()[2])
        for line in run.stdout.splitlines()
        if line.startswith("audience.")
    }
    expected = expected_sizes()
    assert sizes == expected
    assert expected["winback"] > 0
    assert expected["repeat_buyers"] > 0

    for name, size in expected.items():
        preview = personas(root, "preview", f"audience.{name}", "--format", "json")
        assert preview.exit_code == 0, preview.output
        assert json.loads(preview.stdout)["size"] == size, name
