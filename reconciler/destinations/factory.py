"""Build the adapter for a destination spec, resolving `${...}` references and paths."""

from __future__ import annotations

import os
from typing import Any

from reconciler.destinations.base import DestinationAdapter
from reconciler.destinations.options import RetryPolicy
from reconciler.spec.interpolation import interpolate


def open_adapter(destination: Any, project: Any, *, run_id: str, retry: RetryPolicy) -> DestinationAdapter:
    """Create the adapter for a Destination model; raise SpecError on an unset variable."""
    spec = destination.spec
    name = destination.name
    where = f"destination.{name}"
    if spec.type == "file":
        from reconciler.destinations.file import FileAdapter

        folder = project.resolve_path(interpolate(spec.path, os.environ, where=f"{where} path"))
        return FileAdapter(name, folder, spec.format, run_id)
    if spec.type == "webhook":
        from reconciler.destinations.webhook import WebhookAdapter

        return WebhookAdapter(
            name,
            url=interpolate(spec.url, os.environ, where=f"{where} url"),
            headers={key: interpolate(value, os.environ, where=f"{where} headers") for key, value in spec.headers.items()},
            signing_secret=interpolate(spec.signing_secret, os.environ, where=f"{where} signing_secret") if spec.signing_secret else None,
            timeout_s=float(spec.timeout.seconds),
            max_rate=spec.max_rate.per_second if spec.max_rate else None,
            retry=retry,
        )
    if spec.type == "sql_table":
        from reconciler.destinations.sql_table import SqlTableAdapter

        return SqlTableAdapter(name, url=project.resolve_url(spec.url), table=spec.table, schema=spec.schema_)
    if spec.type == "redis":
        from reconciler.destinations.redis import RedisAdapter

        return RedisAdapter(name, url=project.resolve_url(spec.url), key_prefix=spec.key_prefix)
    raise ValueError(f"unknown destination type {spec.type!r}")
