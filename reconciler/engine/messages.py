"""Checking one Segment-spec message and turning it into a personas_events row.

A message that fails a check raises `MalformedMessage` with a reason meant for
the quarantine table; ingest stores it there with the raw line. Times are
converted to naive UTC; when both `sentAt` and `receivedAt` are present the
timestamp is corrected for device clock skew as Segment does:
`timestamp = receivedAt - (sentAt - timestamp)`, keeping the device's time as
`original_timestamp`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")

# Page and screen calls count as events with these names, as in Segment Engage.
EVENT_NAMES = {"page": "Page Viewed", "screen": "Screen Viewed"}

_NEEDS_USER = {"track", "identify", "page", "screen"}


class MalformedMessage(ValueError):
    """A message that cannot be stored; the text is the quarantine reason."""


def parse_message(message: Any) -> dict[str, Any]:
    """Check a decoded JSON line and return its personas_events row (without batch columns)."""
    if not isinstance(message, dict):
        raise MalformedMessage(f"not a JSON object but {_json_kind(message)}")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        if kind is None:
            raise MalformedMessage("missing type")
        raise MalformedMessage(f"unknown type {kind!r}; expected one of {', '.join(MESSAGE_TYPES)}")
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id.strip():
        raise MalformedMessage("missing messageId" if message_id is None else "messageId is not a non-empty string")

    user_id = _identifier(message, "userId")
    anonymous_id = _identifier(message, "anonymousId")
    group_id = _identifier(message, "groupId")
    event = _check_call(message, kind, user_id, anonymous_id, group_id)
    timestamp, original = _timestamps(message)
    properties = _object(message, "properties")
    if kind in EVENT_NAMES and isinstance(message.get("name"), str) and "name" not in (properties or {}):
        properties = {**(properties or {}), "name": message["name"]}
    if kind == "alias":
        properties = {**(properties or {}), "previousId": _identifier(message, "previousId")}

    return {
        "message_id": message_id,
        "type": kind,
        "event": event,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "group_id": group_id,
        "timestamp": timestamp,
        "original_timestamp": original,
        "sent_at": _optional_time(message, "sentAt"),
        "received_at": _optional_time(message, "receivedAt"),
        "properties": properties,
        "traits": _object(message, "traits"),
        "context": _object(message, "context"),
    }


def _check_call(message: dict[str, Any], kind: str, user_id: str | None, anonymous_id: str | None, group_id: str | None) -> str | None:
    """Check the fields a call type needs; return the event name it is stored under."""
    if kind in _NEEDS_USER and user_id is None and anonymous_id is None:
        raise MalformedMessage(f"{kind} call without userId or anonymousId")
    if kind == "group" and group_id is None:
        raise MalformedMessage("group call without groupId")
    if kind == "alias" and (user_id is None or _identifier(message, "previousId") is None):
        raise MalformedMessage("alias call without userId and previousId")
    if kind == "track":
        event = message.get("event")
        if not isinstance(event, str) or not event.strip():
            raise MalformedMessage("track call without an event name")
        return event
    return EVENT_NAMES.get(kind)


def _identifier(message: dict[str, Any], key: str) -> str | None:
    """Return an id field as text: strings as sent, whole numbers in decimal, null as None."""
    value = message.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        raise MalformedMessage(f"{key} is a number with a fraction; ids must be strings or whole numbers")
    raise MalformedMessage(f"{key} is {_json_kind(value)}, not a string")


def _object(message: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = message.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise MalformedMessage(f"{key} is {_json_kind(value)}, not an object")


def _timestamps(message: dict[str, Any]) -> tuple[datetime, datetime]:
    """Return the skew-corrected timestamp and the timestamp the device sent."""
    original = _optional_time(message, "timestamp") or _optional_time(message, "originalTimestamp")
    received = _optional_time(message, "receivedAt")
    if original is None:
        if received is None:
            raise MalformedMessage("missing timestamp (and no originalTimestamp or receivedAt to take it from)")
        return received, received
    sent = _optional_time(message, "sentAt")
    if sent is not None and received is not None:
        return received - (sent - original), original
    return original, original


def _optional_time(message: dict[str, Any], key: str) -> datetime | None:
    value = message.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"{key} is {_json_kind(value)}, not an ISO 8601 string")
    try:
        return parse_time(value)
    except ValueError:
        raise MalformedMessage(f"{key} {value!r} is not an ISO 8601 timestamp") from None


def parse_time(text: str) -> datetime:
    """Read an ISO 8601 time as naive UTC; a time without a zone is taken as UTC."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return "a string"
