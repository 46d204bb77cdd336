"""Value types of the spec language: durations, windows, percentages, rates, schedules.

Each type keeps the text the user wrote in canonical form (so `24h` and `1d`
compare equal in a plan) and exposes the number it stands for.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

_DURATION_RE = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^[0-9]+(s|m|h|d|w)$"
# The longest duration a spec may hold: 36500 days, about 100 years. Windows reach
# back from as_of by a duration, and longer ones would leave the range of dates.
MAX_DURATION_SECONDS = 36500 * 86400
MAX_DURATION = "36500d"
PERCENT_PATTERN = r"^[0-9]+(\.[0-9]+)?%$"
RATE_PATTERN = r"^[0-9]+(\.[0-9]+)?/(s|m|h)$"


def parse_duration_seconds(text: str) -> int:
    """Return the length of a duration such as `30s`, `45d` or `8w`, in seconds."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a whole number and a unit, such as 30s, 30m, 12h, 45d or 8w"
        )
    digits, unit = match.groups()
    if len(digits.lstrip("0")) > 12 or int(digits) * _UNIT_SECONDS[unit] > MAX_DURATION_SECONDS:
        raise ValueError(f"invalid duration {text!r}: the longest duration is {MAX_DURATION} (about 100 years)")
    return int(digits) * _UNIT_SECONDS[unit]


def format_duration(seconds: int) -> str:
    """Write a length in seconds in the largest unit that divides it exactly."""
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")


class Duration(str):
    """An exact length of time (`1d` is 24 hours, never a calendar day)."""

    @property
    def seconds(self) -> int:
        return parse_duration_seconds(self)

    @classmethod
    def parse(cls, value: Any) -> "Duration":
        if isinstance(value, bool) or isinstance(value, (int, float)):
            raise ValueError(f"invalid duration {value!r}: a duration needs a unit, such as {value}d or {value}h")
        if not isinstance(value, str):
            raise ValueError(f"invalid duration {value!r}: expected text such as 30d")
        return cls(format_duration(parse_duration_seconds(value)))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(cls.parse, serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": f"A whole number and a unit (s, m, h, d, w), at most {MAX_DURATION} (about 100 years).",
            "examples": ["30m", "12h", "45d", "8w"],
        }


class Percent(str):
    """A share written with a percent sign, such as `10%` or `12.5%`."""

    @property
    def fraction(self) -> Decimal:
        return Decimal(self[:-1]) / 100

    @classmethod
    def parse(cls, value: Any) -> "Percent":
        if isinstance(value, str) and value.strip().startswith("-") and re.match(PERCENT_PATTERN, value.strip()[1:]):
            raise ValueError(f"invalid percentage {value!r}: a share cannot be below 0%")
        if not isinstance(value, str) or not re.match(PERCENT_PATTERN, value.strip()):
            raise ValueError(f"invalid percentage {value!r}: write it with a percent sign, such as 10%")
        number = Decimal(value.strip()[:-1])
        if number > 100:
            raise ValueError(f"invalid percentage {value!r}: it cannot exceed 100%")
        return cls(f"{number.normalize():f}%")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(cls.parse, serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "string", "pattern": PERCENT_PATTERN, "examples": ["10%", "12.5%"]}


class Rate(str):
    """A request rate such as `20/s`, `600/m` or `1000/h`."""

    @property
    def per_second(self) -> float:
        number, unit = self.split("/")
        return float(number) / {"s": 1, "m": 60, "h": 3600}[unit]

    @classmethod
    def parse(cls, value: Any) -> "Rate":
        if not isinstance(value, str) or not re.match(RATE_PATTERN, value.strip()):
            raise ValueError(f"invalid rate {value!r}: write requests per unit of time, such as 20/s or 600/m")
        rate = cls(value.strip())
        if rate.per_second <= 0:
            raise ValueError(f"invalid rate {value!r}: it must be above zero")
        return rate

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(cls.parse, serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "string", "pattern": RATE_PATTERN, "examples": ["20/s", "600/m"]}


_CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*/,\-?LW#]+$")


class Schedule(str):
    """When to recompute: a duration (`1h`, every hour) or a five-field cron expression."""

    @property
    def is_cron(self) -> bool:
        return not _DURATION_RE.match(self)

    @property
    def interval_seconds(self) -> int | None:
        return None if self.is_cron else parse_duration_seconds(self)

    @classmethod
    def parse(cls, value: Any) -> "Schedule":
        if not isinstance(value, str):
            raise ValueError(f"invalid refresh {value!r}: use a duration such as 1h or a cron expression such as '0 6 * * *'")
        text = " ".join(value.split())
        if _DURATION_RE.match(text):
            seconds = parse_duration_seconds(text)
            if seconds < 60:
                raise ValueError(f"invalid refresh {value!r}: the shortest interval is 1m")
            return cls(format_duration(seconds))
        fields = text.split(" ")
        if len(fields) != 5 or not all(_CRON_FIELD_RE.match(field) for field in fields):
            raise ValueError(
                f"invalid refresh {value!r}: use a duration such as 1h or a five-field cron expression "
                "(minute hour day month weekday) such as '0 6 * * *'"
            )
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(text)
        except ValueError as error:
            raise ValueError(f"invalid cron expression {value!r}: {error}") from None
        return cls(text)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(cls.parse, serialization=core_schema.to_string_ser_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {
            "type": "string",
            "description": "A duration such as 1h (at least 1m), or a five-field cron expression such as '0 6 * * *'.",
            "examples": ["1h", "0 6 * * *"],
        }
