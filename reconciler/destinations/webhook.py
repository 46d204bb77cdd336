"""The `webhook` destination: versioned JSON batches of changes, POSTed with httpx.

Body (version 1)::

    {"version": 1, "batch_id": "...", "sent_at": "...", "changes": [...]}

Headers: `Idempotency-Key` (the batch's key, a hash of its changes' keys) and,
with a signing secret, `Personas-Signature: t=<unix time>,v1=<hex HMAC-SHA256
of "<t>.<body>">`.

Responses: 2xx acknowledges the batch. Timeouts, connection errors, 5xx,
408 and 429 are retried within the run (jittered exponential backoff,
honouring Retry-After) and, past the retry budget, raise TransientError so
the changes stay pending. 401, 403 and 404 raise PermanentError: the sync
fails as a whole and marks nothing. 400 and 422 split the batch in halves
until the rejected changes are isolated. Those are returned as rejected with
an excerpt of the response body. Any other status is permanent.

Logs name the scheme and host only: webhook paths and queries often carry tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from reconciler.destinations.base import Capabilities, Change, DestinationAdapter, SendResult, batch_key, format_instant
from reconciler.destinations.options import RetryPolicy
from reconciler.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO; webhook URLs carry tokens in their paths.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

BODY_VERSION = 1
SIGNATURE_HEADER = "Personas-Signature"
_RETRY_STATUSES = {408, 429}
_PERMANENT_STATUSES = {401, 403, 404}
_SPLIT_STATUSES = {400, 422}
_REASON_CHARS = 300


class WebhookAdapter(DestinationAdapter):
    capabilities = Capabilities(
        supports_removals=True,
        default_batch_size=500,
        max_batch_size=10_000,
        idempotency_keys=True,
        carries_traits=True,
    )

    def __init__(
        self,
        name: str,
        *,
        url: str,
        headers: dict[str, str],
        signing_secret: str | None,
        timeout_s: float,
        max_rate: float | None,
        retry: RetryPolicy,
    ) -> None:
        self.name = name
        self.url = url
        self.signing_secret = signing_secret
        self.retry = retry
        self.bucket = TokenBucket(max_rate) if max_rate else None
        self.client = httpx.Client(timeout=timeout_s, headers=headers, follow_redirects=False)

    def describe(self) -> str:
        return f"webhook destination {self.name} ({safe_url(self.url)})"

    def close(self) -> None:
        self.client.close()

    def send(self, changes: Sequence[Change]) -> SendResult:
        """Deliver a batch, splitting it on 400/422 to isolate the changes the endpoint rejects."""
        status, text = self._post_with_retries(changes)
        if status not in _SPLIT_STATUSES:
            return SendResult(acknowledged=[change.idempotency_key for change in changes])
        if len(changes) == 1:
            reason = f"HTTP {status}: {text[:_REASON_CHARS]}".rstrip()
            log.warning("%s rejected one change: HTTP %s", self.describe(), status)
            return SendResult(rejected={changes[0].idempotency_key: reason})
        middle = len(changes) // 2
        result = self.send(changes[:middle])
        result.extend(self.send(changes[middle:]))
        return result

    def _post_with_retries(self, changes: Sequence[Change]) -> tuple[int, str]:
        """POST the batch, retrying transient failures; return (status, body text) for 2xx, 400 and 422."""
        deadline = time.monotonic() + self.retry.budget_s
        attempt = 0
        while True:
            attempt += 1
            outcome = self._post_once(changes)
            if isinstance(outcome, tuple):
                return outcome
            delay = outcome.retry_after if outcome.retry_after is not None else backoff(self.retry, attempt)
            if attempt >= self.retry.attempts or time.monotonic() + delay > deadline:
                raise TransientError(f"{self.describe()}: {outcome.message} (after {attempt} attempts)", retry_after=outcome.retry_after)
            log.debug("%s: %s; retrying in %.2fs", self.describe(), outcome.message, delay)
            time.sleep(delay)

    def _post_once(self, changes: Sequence[Change]) -> tuple[int, str] | TransientError:
        body, headers = self.request(changes)
        if self.bucket is not None:
            self.bucket.acquire()
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return TransientError("the request timed out")
        except httpx.TransportError as error:
            return TransientError(f"connection failed ({type(error).__name__})")
        status = response.status_code
        if 200 <= status < 300 or status in _SPLIT_STATUSES:
            return status, response.text
        if status in _RETRY_STATUSES or status >= 500:
            return TransientError(f"HTTP {status}", retry_after=retry_after(response.headers.get("Retry-After")))
        hint = "Check the destination's URL and credentials, then run `personas run` again."
        if status in _PERMANENT_STATUSES:
            raise PermanentError(f"{self.describe()} responded with HTTP {status}; nothing was marked as sent", hint=hint)
        raise PermanentError(f"{self.describe()} responded with HTTP {status}, which personas does not retry", hint=hint)

    def request(self, changes: Sequence[Change]) -> tuple[bytes, dict[str, str]]:
        """Build the body and headers of one batch; the signature covers the exact bytes sent."""
        key = batch_key(changes)
        document = {
            "version": BODY_VERSION,
            "batch_id": key,
            "sent_at": format_instant(datetime.now(timezone.utc)),
            "changes": [change.to_dict() for change in changes],
        }
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key, "User-Agent": "personas"}
        if self.signing_secret:
            headers[SIGNATURE_HEADER] = sign(self.signing_secret, body)
        return body, headers


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Check a Personas-Signature header, as a receiver would."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def backoff(policy: RetryPolicy, attempt: int) -> float:
    """Full jitter: a random delay up to base * 2^(attempt-1), capped."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (attempt - 1)))
    return random.uniform(0, ceiling)


def safe_url(url: str) -> str:
    """Scheme and host only."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class TokenBucket:
    """At most `rate` requests per second on average, with bursts of up to max(1, rate)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)

