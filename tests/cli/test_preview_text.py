"""How `personas preview` prints trait values as text: numbers and booleans bare, text quoted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from reconciler.cli.commands.preview import text_value


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (Decimal("2.000000000"), "2"),
        (Decimal("55.500000000"), "55.5"),
        (Decimal("100"), "100"),
        (7, "7"),
        (True, "true"),
        (False, "false"),
        ("2", '"2"'),
        ("gold", '"gold"'),
        (datetime(2024, 3, 1, 12, 30), '"2024-03-01T12:30:00Z"'),
        ('["a", "b"]', '["a", "b"]'),
    ],
)
def test_text_value_shows_the_type(value, printed):
    assert text_value(value) == printed
