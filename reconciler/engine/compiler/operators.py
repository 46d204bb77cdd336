"""The operators of conditions and `where` filters, as SQL predicates.

Two readings of the same operator:

* on an event property (`property_predicate`): the property is untyped JSON
  read as text. It is compared as a number when the operand is a number, as
  a timestamp when the operand is an ISO 8601 timestamp or the operator is a
  relative-time one, else as text;
* on a trait value (`value_predicate`): the value column already has the
  trait's value type.

Every operator but `missing` is false on NULL: SQL comparisons yield NULL
there, and callers keep only rows where the predicate is true.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from reconciler.engine.compiler.functions import DECIMAL, JsonListContains, SafeCast
from reconciler.spec.models import OperatorFields, parse_timestamp

_TIMESTAMP_TEXT = re.compile(r"^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?$")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)


def is_timestamp_text(value: Any) -> bool:
    if not isinstance(value, str) or not _TIMESTAMP_TEXT.match(value):
        return False
    try:
        parse_timestamp(value)
    except ValueError:
        return False
    return True


def naive_utc(value: datetime) -> datetime:
    """Convert a datetime to what the warehouse stores: UTC without a zone."""
    if value.tzinfo is not None:
        from datetime import timezone

        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _as_timestamp(value: Any) -> datetime:
    return naive_utc(parse_timestamp(value) if isinstance(value, str) else value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    return str(value)


def _decimal(value: Any) -> Any:
    # Bound as text and cast in SQL, so no driver turns it into a float on the way.
    return sa.cast(sa.literal(format(Decimal(str(value)), "f"), sa.Text), DECIMAL)


def relative_time(expr: ColumnElement, operator: str, seconds: int, as_of: datetime) -> ColumnElement:
    """within_last / before_last / within_next / after_next, relative to as_of."""
    span = timedelta(seconds=seconds)
    if operator == "within_last":
        return sa.and_(expr >= as_of - span, expr <= as_of)
    if operator == "before_last":
        return expr < as_of - span
    if operator == "within_next":
        return sa.and_(expr >= as_of, expr <= as_of + span)
    return expr > as_of + span


def _compare(expr: ColumnElement, operator: str, operand: Any) -> ColumnElement:
    if operator == "equals":
        return expr == operand
    if operator == "not_equals":
        return expr != operand
    if operator == "gt":
        return expr > operand
    if operator == "gte":
        return expr >= operand
    if operator == "lt":
        return expr < operand
    return expr <= operand


def _text_match(expr: ColumnElement, operator: str, operand: str) -> ColumnElement:
    if operator == "contains":
        return expr.contains(operand, autoescape=True)
    if operator == "starts_with":
        return expr.startswith(operand, autoescape=True)
    return expr.endswith(operand, autoescape=True)


def property_predicate(raw: ColumnElement, fields: OperatorFields, as_of: datetime) -> ColumnElement:
    """Build a filter on a property read as text from the event's JSON."""
    operator, operand = fields.operator, fields.operand
    if operator == "exists":
        return raw.isnot(None)
    if operator == "missing":
        return raw.is_(None)
    if operator in ("within_last", "before_last", "within_next", "after_next"):
        return relative_time(SafeCast(raw, "timestamp"), operator, operand.seconds, as_of)
    if operator in ("contains", "starts_with", "ends_with"):
        return _text_match(raw, operator, _text(operand))
    if operator in ("in", "not_in"):
        return _membership(raw, operator, operand)
    if operator == "between":
        low, high = operand
        typed, low, high = _typed_pair(raw, low, high)
        return sa.and_(raw.isnot(None), typed >= low, typed <= high)
    typed, value = _typed_operand(raw, operator, operand)
    return sa.and_(raw.isnot(None), _compare(typed, operator, value))


def _typed_operand(raw: ColumnElement, operator: str, operand: Any) -> tuple[ColumnElement, Any]:
    if is_number(operand):
        return SafeCast(raw, "decimal"), _decimal(operand)
    if operator not in ("equals", "not_equals") and is_timestamp_text(operand):
        return SafeCast(raw, "timestamp"), _as_timestamp(operand)
    return raw, _text(operand)


def _typed_pair(raw: ColumnElement, low: Any, high: Any) -> tuple[ColumnElement, Any, Any]:
    if is_number(low) and is_number(high):
        return SafeCast(raw, "decimal"), _decimal(low), _decimal(high)
    if is_timestamp_text(low) and is_timestamp_text(high):
        return SafeCast(raw, "timestamp"), _as_timestamp(low), _as_timestamp(high)
    return raw, _text(low), _text(high)


def _membership(raw: ColumnElement, operator: str, operands: list[Any]) -> ColumnElement:
    if operands and all(is_number(value) for value in operands):
        typed, values = SafeCast(raw, "decimal"), [_decimal(value) for value in operands]
    else:
        typed, values = raw, [_text(value) for value in operands]
    test = typed.in_(values) if operator == "in" else typed.not_in(values)
    return sa.and_(typed.isnot(None), test)


def value_predicate(value: ColumnElement, value_type: str, fields: OperatorFields, as_of: datetime) -> ColumnElement:
    """Build a test of a trait value whose column has the trait's value type."""
    operator, operand = fields.operator, fields.operand
    if operator == "exists":
        return value.isnot(None)
    if operator == "missing":
        return value.is_(None)
    if value_type == "list":
        return sa.and_(value.isnot(None), JsonListContains(value, sa.literal(_text(operand))))
    if operator in ("within_last", "before_last", "within_next", "after_next"):
        return relative_time(value, operator, operand.seconds, as_of)
    if operator in ("contains", "starts_with", "ends_with"):
        return _text_match(value, operator, _text(operand))
    convert = _converter(value_type)
    if operator in ("in", "not_in"):
        values = [convert(item) for item in operand]
        test = value.in_(values) if operator == "in" else value.not_in(values)
        return sa.and_(value.isnot(None), test)
    if operator == "between":
        low, high = operand
        return sa.and_(value >= convert(low), value <= convert(high))
    return sa.and_(value.isnot(None), _compare(value, operator, convert(operand)))


def _converter(value_type: str):
    if value_type == "number":
        return _decimal
    if value_type == "timestamp":
        return _as_timestamp
    if value_type == "boolean":
        return lambda value: sa.true() if value in (True, "true") else sa.false()
    return _text
