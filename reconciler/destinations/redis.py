"""The `redis` destination: sets for on-site lookups.

Per audience, `<prefix>audience:<name>` holds the identifier values of its
members; per identifier value, `<prefix>member:<value>` holds the names of
its audiences. Each batch runs as one MULTI/EXEC transaction. Exits remove
only values personas sent (the engine sends exits from its snapshot), so a
value someone added by hand is never removed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from reconciler.destinations.base import Capabilities, Change, DestinationAdapter, SendResult
from reconciler.errors import PermanentError, TransientError

log = logging.getLogger(__name__)


class RedisAdapter(DestinationAdapter):
    capabilities = Capabilities(
        supports_removals=True,
        default_batch_size=1000,
        max_batch_size=10_000,
        idempotency_keys=False,
        carries_traits=False,
    )

    def __init__(self, name: str, *, url: str, key_prefix: str) -> None:
        import redis

        self.name = name
        self.url = url
        self.prefix = key_prefix
        self.client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10)

    def describe(self) -> str:
        parts = urlsplit(self.url)
        return f"redis destination {self.name} ({parts.hostname}:{parts.port or 6379})"

    def audience_key(self, audience: str) -> str:
        return f"{self.prefix}audience:{audience}"

    def member_key(self, value: str) -> str:
        return f"{self.prefix}member:{value}"

    def send(self, changes: Sequence[Change]) -> SendResult:
        import redis

        pipeline = self.client.pipeline(transaction=True)
        for change in changes:
            audience_key, member_key = self.audience_key(change.audience), self.member_key(change.identifier_value)
            if change.type == "exited":
                pipeline.srem(audience_key, change.identifier_value)
                pipeline.srem(member_key, change.audience)
            else:
                pipeline.sadd(audience_key, change.identifier_value)
                pipeline.sadd(member_key, change.audience)
        try:
            pipeline.execute()
        except redis.AuthenticationError as error:
            raise PermanentError(f"{self.describe()}: authentication failed", hint="Check the password in the destination's url.") from error
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise TransientError(f"{self.describe()}: {type(error).__name__}") from error
        except redis.ResponseError as error:
            raise PermanentError(
                f"{self.describe()}: Redis rejected the batch: {error}",
                hint="A key under the prefix holds another type; change key_prefix or remove that key.",
            ) from error
        return SendResult(acknowledged=[change.idempotency_key for change in changes])

    def rename(self, old: str, new: str, values: Sequence[str]) -> None:
        import redis

        pipeline = self.client.pipeline(transaction=True)
        # SUNIONSTORE then DEL, not RENAME: RENAME fails when the old set is already gone.
        pipeline.sunionstore(self.audience_key(new), [self.audience_key(old), self.audience_key(new)])
        pipeline.delete(self.audience_key(old))
        for value in values:
            pipeline.srem(self.member_key(value), old)
            pipeline.sadd(self.member_key(value), new)
        try:
            pipeline.execute()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise TransientError(f"{self.describe()}: {type(error).__name__}") from error

    def close(self) -> None:
        self.client.close()
