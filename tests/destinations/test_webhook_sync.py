"""Webhook sync against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from .harness import record_of

SPECS = """
apiVersion: personas/v1
kind: Audience
metadata: {name: vip}
spec:
  include: {event: Order Completed}
  destinations:
    - {destination: crm, identifier: user_id}
---
apiVersion: personas/v1
kind: Destination
metadata: {name: crm}
spec:
  type: webhook
  url: "{url}"
"""


def make(workspace, receiver, specs=SPECS):
    workspace.write_specs(specs.replace("{url}", receiver.url))
    workspace.apply()
    workspace.prepare()


def test_first_sync_sends_every_member_once(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(3))
    records = workspace.sync()
    record = record_of(records, "vip", "crm")
    assert (record.status, record.entered, record.sent, record.acknowledged) == ("ok", 3, 3, 3)
    changes = receiver.acknowledged_changes()
    assert sorted((c["type"], c["identifier"]["value"]) for c in changes) == [
        ("entered", "u_1"), ("entered", "u_2"), ("entered", "u_3")]
