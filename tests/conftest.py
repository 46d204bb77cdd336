"""Shared fixtures: real PostgreSQL databases and Redis key prefixes, made per test.

Tests that need a server skip with the reason when it is unreachable, unless
PERSONAS_REQUIRE_SERVICES=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "PERSONAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PERSONAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip, or fail under PERSONAS_REQUIRE_SERVICES=1, when a server is unreachable."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {urlsplit(url).hostname}:{urlsplit(url).port or default_port}"
    if os.environ.get("PERSONAS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message}, and PERSONAS_REQUIRE_SERVICES=1 requires it")
    pytest.skip(f"{message}; set PERSONAS_TEST_POSTGRES_URL / PERSONAS_TEST_REDIS_URL to run these tests")


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_service("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    import sqlalchemy as sa

    name = f"personas_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url():
    """The Redis server URL; pair it with `redis_prefix` so tests never share keys."""
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix unique to one test; its keys are deleted afterwards."""
    import redis

    prefix = f"personas_test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()
