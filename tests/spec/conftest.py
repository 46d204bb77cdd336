"""Fixtures for spec tests: small projects written into temporary folders."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

PROJECT_FILE = "version: 1\nname: shop\n"

TRAITS = """\
apiVersion: personas/v1
kind: Trait
metadata:
  name: orders_90d
  description: Orders in the last 90 days
spec:
  type: event_counter
  event: Order Completed
  window: 90d
---
apiVersion: personas/v1
kind: Trait
metadata:
  name: email_opt_in
spec:
  type: identify
  trait: email_opt_in
  value_type: boolean
---
apiVersion: personas/v1
kind: Trait
metadata:
  name: country
spec:
  type: identify
  trait: country
  value_type: string
"""

AUDIENCE = """\
apiVersion: personas/v1
kind: Audience
metadata:
  name: winback
  labels: {tier: core}
spec:
  include:
    all:
      - event: Order Completed
        window: {from: 120d, to: 45d}
      - not:
          event: Order Completed
          window: 45d
      - trait: email_opt_in
        equals: true
  holdout: 10%
  destinations:
    - destination: crm
      identifier: email
      traits: [orders_90d, country]
"""

DESTINATION = """\
apiVersion: personas/v1
kind: Destination
metadata:
  name: crm
spec:
  type: webhook
  url: https://hooks.example.com/audiences
  headers: {Authorization: "Bearer ${CRM_TOKEN}"}
  signing_secret: ${CRM_SIGNING_SECRET}
  consent: [email_opt_in]
"""

VALID_FILES = {
    "personas.yaml": PROJECT_FILE,
    "traits/traits.yaml": TRAITS,
    "audiences/winback.yaml": AUDIENCE,
    "destinations/crm.yaml": DESTINATION,
}
SECRETS = {"CRM_TOKEN": "token-value", "CRM_SIGNING_SECRET": "signing-value"}

WriteProject = Callable[..., Path]


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content) if content.startswith("\n") else content)
    return root


@pytest.fixture
def write_project(tmp_path: Path) -> WriteProject:
    """Write a project: the valid shop project, with `files` added or replaced (None removes one)."""
    counter = iter(range(1000))

    def write(files: dict[str, str | bytes | None] | None = None, *, base: bool = True) -> Path:
        root = tmp_path / f"project{next(counter)}"
        merged: dict[str, str | bytes | None] = dict(VALID_FILES) if base else {"personas.yaml": PROJECT_FILE}
        merged.update(files or {})
        return write_files(root, {k: v for k, v in merged.items() if v is not None})

    return write
