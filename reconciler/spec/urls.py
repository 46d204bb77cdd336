"""Checking the form of URLs in specs, on the parts that are written literally.

A URL may hold `${NAME}` references anywhere. Only the literal text is
checked: a reference stands for whatever it will hold, so `${HOOK_URL}` or
`https://${HOST}/x` pass, while `htps://x`, `https://` (no host) or
`postgres//db` are rejected with the form expected. A URL that is one whole
reference with a default is checked by its default.

No database driver is imported here: a SQLAlchemy URL is checked by its
shape, `dialect[+driver]://...`, so `personas validate` stays fast.
"""

from __future__ import annotations

import re

from reconciler.spec.interpolation import find_references

_HOLE = "\x00"  # replaces a ${...} reference while the literal text is checked
_SCHEME_RE = re.compile(r"^([^:/?#]*)://([^/?#]*)")
_SQLALCHEMY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\+[A-Za-z0-9_]+)?$")

WEBHOOK_FORM = "an http or https URL with a host, such as https://hooks.example.com/audiences"
REDIS_FORM = "a redis://, rediss:// or unix:// URL, such as redis://127.0.0.1:6379/0"
DATABASE_FORM = "a SQLAlchemy URL dialect[+driver]://..., such as postgresql+psycopg://user:${DB_PASSWORD}@host/db or sqlite:///data.db"


def _literal(url: str) -> str | None:
    """The URL with each reference replaced by a placeholder; None when there is nothing literal to check."""
    try:
        references = find_references(url)
    except ValueError:
        return None  # reported as an invalid reference
    if len(references) == 1 and references[0].start == 0 and references[0].end == len(url):
        default = references[0].default
        return _literal(default) if default else None
    text = url.replace("$${", "${")
    for reference in reversed(references):
        text = text[: reference.start] + _HOLE + text[reference.end :]
    return text


def _scheme_and_host(url: str) -> tuple[str, str] | None:
    """Return (scheme, host part) of the literal URL, or None when a reference is part of the scheme."""
    text = _literal(url)
    if text is None:
        return None
    match = _SCHEME_RE.match(text)
    if match is None:
        return ("", "") if _HOLE not in text.partition("://")[0] else None
    scheme, host = match.groups()
    return None if _HOLE in scheme else (scheme, host)


def webhook_url_problem(url: str) -> str | None:
    """Return why `url` is not an http(s) URL with a host, or None when it is valid or depends on a reference."""
    found = _scheme_and_host(url)
    if found is None:
        return None
    scheme, host = found
    if scheme.lower() not in ("http", "https"):
        return f"invalid URL {url!r}: expected {WEBHOOK_FORM}"
    if not host.rpartition("@")[2]:
        return f"invalid URL {url!r}: it has no host; expected {WEBHOOK_FORM}"
    return None


def redis_url_problem(url: str) -> str | None:
    """Return why `url` is not a Redis URL, or None."""
    found = _scheme_and_host(url)
    if found is None:
        return None
    if found[0].lower() not in ("redis", "rediss", "unix"):
        return f"invalid URL {url!r}: expected {REDIS_FORM}"
    return None


def database_url_problem(url: str) -> str | None:
    """Return why `url` is not shaped like a SQLAlchemy URL, or None."""
    found = _scheme_and_host(url)
    if found is None:
        return None
    if not _SQLALCHEMY_RE.match(found[0]):
        return f"invalid URL {url!r}: expected {DATABASE_FORM}"
    return None
