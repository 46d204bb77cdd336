"""The hint of an unset variable offers a default only where the value is not a secret."""

from __future__ import annotations

import pytest

from reconciler.project import check_project

SET_HINT = "`personas apply` and `personas run` need it: set {name} in the environment. " \
    "It holds a secret, and secrets are never written in a spec."
DEFAULT_HINT = "`personas apply` and `personas run` need it: set {name}, or write ${{{name}:-default}}."

WEBHOOK = """\
apiVersion: personas/v1
kind: Destination
metadata: {name: crm}
spec:
  type: webhook
  url: https://${HOOK_HOST}/hook
  signing_secret: ${HOOK_SECRET}
  headers:
    Authorization: Bearer ${API_TOKEN}
    X-Tenant: ${TENANT}
"""

TABLE = """\
apiVersion: personas/v1
kind: Destination
metadata: {name: table}
spec:
  type: sql_table
  url: postgresql://${DB_USER}:${DB_PASSWORD}@db.internal/crm
  table: buyers
"""


def hints(write_project, files: dict[str, str]) -> dict[str, str]:
    result = check_project(write_project(files, base=False), env={})
    return {
        diagnostic.message.split()[2]: diagnostic.hint
        for diagnostic in result.diagnostics
        if diagnostic.code == "unset-variable"
    }


@pytest.mark.parametrize("name", ["HOOK_SECRET", "API_TOKEN", "DB_PASSWORD", "STATE_PASSWORD"])
def test_secret_hint_says_only_set(write_project, name):
    found = hints(write_project, {
        "personas.yaml": "version: 1\nname: shop\nstate: postgresql://app:${STATE_PASSWORD}@db.internal/state\n",
        "destinations/crm.yaml": WEBHOOK,
        "destinations/table.yaml": TABLE,
    })

    assert found[name] == SET_HINT.format(name=name)


@pytest.mark.parametrize("name", ["HOOK_HOST", "TENANT", "DB_USER", "WAREHOUSE_URL"])
def test_plain_hint_offers_a_default(write_project, name):
    found = hints(write_project, {
        "personas.yaml": "version: 1\nname: shop\nwarehouse: ${WAREHOUSE_URL}\n",
        "destinations/crm.yaml": WEBHOOK,
        "destinations/table.yaml": TABLE,
    })

    assert found[name] == DEFAULT_HINT.format(name=name)
