"""Syncing to a webhook on a real HTTP server on 127.0.0.1: diffs, guard, consent, holdout, modes, faults."""

from __future__ import annotations

import time

import pytest

from reconciler.destinations.options import RetryPolicy, SyncOptions
from reconciler.destinations.webhook import verify

from .harness import record_of

FAST = SyncOptions(retry=RetryPolicy(attempts=4, budget_s=5, base_delay_s=0.01, max_delay_s=0.05))

AUDIENCE = """
apiVersion: personas/v1
kind: Audience
metadata: {{name: vip}}
spec:
  include: {{event: Order Completed}}
  holdout: {holdout}
  destinations:
    - {{destination: crm, identifier: {identifier}, traits: [{traits}], send_updates: {send_updates}}}
---
apiVersion: personas/v1
kind: Trait
metadata: {{name: email_opt_in}}
spec: {{type: identify, trait: email_opt_in, value_type: boolean}}
---
apiVersion: personas/v1
kind: Trait
metadata: {{name: plan}}
spec: {{type: identify, trait: plan, value_type: string}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: crm}}
spec:
  type: webhook
  url: "{url}"
  mode: {mode}
  batch_size: {batch_size}
  consent: [{consent}]
  max_removals: {{share: 20%, at_least: 10}}
{extra}
"""


def make(workspace, receiver, *, mode="diff", identifier="user_id", traits="", send_updates="false",
         consent="", holdout="0%", batch_size=500, extra=""):
    text = AUDIENCE.format(url=receiver.url, mode=mode, identifier=identifier, traits=traits, send_updates=send_updates,
                           consent=consent, holdout=holdout, batch_size=batch_size, extra=extra)
    workspace.write_specs(text)
    workspace.apply()
    workspace.prepare()


def sent(receiver, start=0):
    """(type, value) of acknowledged changes from request number `start` on, sorted."""
    changes = [c for r in receiver.acknowledged[start:] for c in r.changes]
    return sorted((c["type"], c["identifier"]["value"]) for c in changes)


def test_first_sync_sends_every_member_once(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(3))
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.status, record.entered, record.sent, record.acknowledged, record.members) == ("ok", 3, 3, 3, 3)
    assert sent(receiver) == [("entered", "u_1"), ("entered", "u_2"), ("entered", "u_3")]


def test_body_version_and_batch_key(workspace, receiver):
    make(workspace, receiver, batch_size=2)
    workspace.set_members("vip", workspace.users(3))
    workspace.sync()
    first, second = receiver.acknowledged
    document = first.document
    assert set(document) == {"version", "batch_id", "sent_at", "changes"}
    assert document["version"] == 1
    assert set(document["changes"][0]) == {"type", "audience", "identifier", "traits", "idempotency_key", "at"}
    assert document["changes"][0]["audience"] == "vip"
    assert document["changes"][0]["identifier"] == {"type": "user_id", "value": "u_1"}
    assert document["changes"][0]["at"] == "2024-03-31T00:00:00.000Z"
    assert first.headers["Idempotency-Key"] == document["batch_id"] != second.document["batch_id"]
    assert len(first.changes) == 2
    assert len(second.changes) == 1
    assert first.path == "/hooks/secret-token?key=abc"


def test_second_sync_without_change_sends_nothing(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(3))
    workspace.sync()
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.entered, record.exited, record.sent) == (0, 0, 0)
    assert len(receiver.requests) == 1


def test_one_member_exiting_sends_exactly_one_exit(workspace, receiver):
    make(workspace, receiver)
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", subjects[:2])
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.entered, record.exited, record.held_back) == (0, 1, 0)
    assert sent(receiver, 1) == [("exited", "u_3")]


def test_changed_email_sends_one_exit_and_one_entry(workspace, receiver):
    make(workspace, receiver, identifier="email")
    subjects = workspace.users(2, kind="email")
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_identifiers([("p_2", "email", "new2@example.com", 20)])
    workspace.sync()
    assert sent(receiver, 1) == [("entered", "new2@example.com"), ("exited", "e2@example.com")]


def test_identifier_values_latest_and_all(workspace, receiver):
    make(workspace, receiver, identifier="email")
    workspace.set_identifiers([("p_1", "email", f"a{n}@example.com", n) for n in range(1, 6)])
    workspace.set_members("vip", ["p_1"])
    workspace.sync()
    assert sent(receiver) == [("entered", "a5@example.com")]

    text = (workspace.root / "resources.yaml").read_text().replace("identifier: email,", "identifier: email, identifier_values: all,")
    (workspace.root / "resources.yaml").write_text(text)
    workspace.apply()
    workspace.sync()
    assert sent(receiver, 1) == [("entered", "a3@example.com"), ("entered", "a4@example.com")]


def test_holdout_members_are_never_sent(workspace, receiver):
    make(workspace, receiver, holdout="50%")
    subjects = workspace.users(4)
    workspace.set_members("vip", subjects, holdout={"p_2", "p_4"})
    record = record_of(workspace.sync(), "vip", "crm")
    assert sent(receiver) == [("entered", "u_1"), ("entered", "u_3")]
    assert (record.eligible, record.members) == (2, 2)


def test_consent_loss_sends_an_exit(workspace, receiver):
    make(workspace, receiver, consent="email_opt_in")
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.set_trait("email_opt_in", "p_1", True)
    workspace.set_trait("email_opt_in", "p_2", True)
    workspace.set_trait("email_opt_in", "p_3", False)
    record = record_of(workspace.sync(), "vip", "crm")
    assert sent(receiver) == [("entered", "u_1"), ("entered", "u_2")]
    assert (record.eligible, record.members, record.non_consented) == (3, 2, 1)

    workspace.set_trait("email_opt_in", "p_2", False)
    workspace.sync()
    assert sent(receiver, 1) == [("exited", "u_2")]


def test_traits_travel_with_entries_and_updates_follow_changes(workspace, receiver):
    make(workspace, receiver, traits="plan", send_updates="true")
    workspace.set_members("vip", workspace.users(2))
    workspace.set_trait("plan", "p_1", "gold")
    workspace.sync()
    by_value = {c["identifier"]["value"]: c["traits"] for c in receiver.acknowledged_changes()}
    assert by_value == {"u_1": {"plan": "gold"}, "u_2": {"plan": None}}

    workspace.set_trait("plan", "p_2", "silver")
    record = record_of(workspace.sync(), "vip", "crm")
    assert record.updated == 1
    assert [(c["type"], c["identifier"]["value"], c["traits"]) for c in receiver.acknowledged[-1].changes] == [
        ("updated", "u_2", {"plan": "silver"})]


def test_removal_guard_holds_an_emptied_audience_until_approved(workspace, receiver):
    """An audience of 500 members computes to 0: every exit is held until approved."""
    make(workspace, receiver)
    subjects = workspace.users(500)
    workspace.set_members("vip", subjects)
    workspace.sync()
    requests_before = len(receiver.requests)

    workspace.set_members("vip", [])
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.status, record.exited, record.held_back, record.sent) == ("held", 500, 500, 0)
    assert "personas run --approve-removals vip:crm" in record.error
    assert len(receiver.requests) == requests_before

    # A held removal that is a member again is no longer an exit; approval releases the rest, exactly.
    workspace.set_members("vip", subjects[:1])
    approved = record_of(workspace.sync(SyncOptions(approve_removals=("vip:crm",))), "vip", "crm")
    assert (approved.status, approved.exited, approved.held_back, approved.acknowledged) == ("ok", 499, 0, 499)
    assert sent(receiver, requests_before) == sorted(("exited", f"u_{n}") for n in range(2, 501))
    assert record_of(workspace.sync(), "vip", "crm").sent == 0


def test_approval_checks_removals_that_were_not_held_again(workspace, receiver):
    make(workspace, receiver)
    subjects = workspace.users(100)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", subjects[:70])
    assert record_of(workspace.sync(), "vip", "crm").held_back == 30
    workspace.set_members("vip", subjects[:40])
    record = record_of(workspace.sync(SyncOptions(approve_removals=("vip",))), "vip", "crm")
    # The 30 held before are released; the 30 new ones are checked again against the 100 members sent.
    assert (record.exited, record.held_back, record.acknowledged) == (60, 30, 30)


def test_few_removals_pass_the_guard(workspace, receiver):
    make(workspace, receiver)
    subjects = workspace.users(20)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", subjects[:11])
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.exited, record.held_back) == (9, 0)


def test_add_only_never_sends_exits(workspace, receiver):
    make(workspace, receiver, mode="add_only")
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", subjects[:1] + workspace.users(1, start=4))
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.entered, record.exited) == (1, 0)
    assert sent(receiver, 1) == [("entered", "u_4")]


def test_mirror_mode_sends_whole_membership(workspace, receiver):
    make(workspace, receiver, mode="mirror")
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", subjects[:2])
    workspace.sync()
    assert sent(receiver, 1) == [("entered", "u_1"), ("entered", "u_2"), ("exited", "u_3")]
    keys = [c["idempotency_key"] for r in receiver.acknowledged for c in r.changes]
    assert len(keys) == len(set(keys))


def test_signature_verifies_with_the_secret(workspace, receiver, monkeypatch):
    monkeypatch.setenv("CRM_SIGNING_SECRET", "s3cret")
    make(workspace, receiver, extra="  signing_secret: ${CRM_SIGNING_SECRET}")
    workspace.set_members("vip", workspace.users(2))
    workspace.sync()
    request = receiver.acknowledged[0]
    header = request.headers["Personas-Signature"]
    assert header.startswith("t=")
    assert ",v1=" in header
    assert verify("s3cret", request.body, header)
    assert not verify("other", request.body, header)
    assert not verify("s3cret", request.body.replace(b"u_1", b"u_9"), header)


def test_max_rate_spaces_requests(workspace, receiver):
    make(workspace, receiver, batch_size=1, extra="  max_rate: 10/s")
    workspace.set_members("vip", workspace.users(8))
    started = time.monotonic()
    workspace.sync()
    assert len(receiver.requests) == 8
    # A burst of 10 tokens: the first 8 go at once; so use the arrival spacing of a second sync instead.
    workspace.set_members("vip", workspace.users(8) + workspace.users(15, start=9))
    started = time.monotonic()
    workspace.sync()
    elapsed = time.monotonic() - started
    # 15 requests, bucket refilled to 10: at least 5 wait 0.1 s each.
    assert elapsed >= 0.45


def test_retries_keep_idempotency_keys(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(2))
    receiver.script = [500, (429, {"Retry-After": "0"}), 503]
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.acknowledged) == ("ok", 2)
    assert [r.status for r in receiver.requests] == [500, 429, 503, 200]
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1


def test_long_retry_after_leaves_pending(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(2))
    receiver.script = [(429, {"Retry-After": "3600"})]
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.sent, record.acknowledged) == ("pending", 2, 0)
    assert "sent again next run" in record.error
    keys_first = [c["idempotency_key"] for c in receiver.requests[0].changes]

    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.acknowledged, record.entered) == ("ok", 2, 0)
    assert [c["idempotency_key"] for c in receiver.acknowledged[0].changes] == keys_first


def test_unauthorized_fails_the_sync_and_marks_nothing(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(2))
    receiver.script = [401]
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.acknowledged) == ("failed", 0)
    assert "HTTP 401" in record.error
    assert "secret-token" not in record.error
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.acknowledged) == ("ok", 2)


def test_rejected_change_isolated_with_reason(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(5))
    receiver.reject_values = {"u_3"}
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.acknowledged, record.rejected) == ("rejected", 4, 1)
    assert record.error.startswith("1 change rejected, first: HTTP 400: ")
    assert "personas syncs show vip:crm" in record.error
    assert sent(receiver) == [("entered", "u_1"), ("entered", "u_2"), ("entered", "u_4"), ("entered", "u_5")]
    rows = workspace.query("SELECT identifier_value, reason FROM personas_sync_rejected")
    assert rows[0][0] == "u_3"
    assert rows[0][1].startswith("HTTP 400: ")
    assert "invalid identifier" in rows[0][1]

    # Not retried while its content is the same.
    receiver.reject_values = set()
    assert record_of(workspace.sync(FAST), "vip", "crm").sent == 0


def test_rejected_change_is_retried_when_its_content_changes(workspace, receiver):
    make(workspace, receiver, traits="plan")
    workspace.set_members("vip", workspace.users(2))
    receiver.reject_values = {"u_2"}
    workspace.sync(FAST)
    receiver.reject_values = set()
    workspace.set_trait("plan", "p_2", "gold")
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.entered, record.acknowledged) == (1, 1)
    assert workspace.query("SELECT count(*) FROM personas_sync_rejected") == [(0,)]


def test_timeouts_and_dropped_connections_are_retried(workspace, receiver):
    extra = "  timeout: 1s"
    make(workspace, receiver, extra=extra)
    workspace.set_members("vip", workspace.users(2))
    receiver.script = ["drop", ("sleep", 1.5)]
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert (record.status, record.acknowledged) == ("ok", 2)
    keys = {tuple(c["idempotency_key"] for c in r.changes) for r in receiver.requests}
    assert len(keys) == 1


def test_renamed_audience_keeps_its_destination_state(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(3))
    workspace.sync()
    text = (workspace.root / "resources.yaml").read_text().replace("metadata: {name: vip}", "metadata: {name: top, previous_names: [vip]}")
    (workspace.root / "resources.yaml").write_text(text)
    workspace.apply()
    record = record_of(workspace.sync(), "top", "crm")
    assert (record.entered, record.exited, record.sent) == (0, 0, 0)


def test_deleted_audience_sends_exits_for_everything_unguarded(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(50))
    workspace.sync()
    text = (workspace.root / "resources.yaml").read_text()
    destination = text[text.index("kind: Destination") - len("apiVersion: personas/v1\n"):]
    (workspace.root / "resources.yaml").write_text(destination)
    workspace.apply()
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.exited, record.held_back, record.acknowledged) == (50, 0, 50)
    assert workspace.query("SELECT count(*) FROM personas_sync_snapshots") == [(0,)]
    store = workspace.store()
    try:
        assert [stone for stone in store.tombstones() if stone.kind == "Audience"] == []
    finally:
        store.close()
    assert workspace.sync() == []


def test_full_resync_sends_the_whole_membership_again(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(3))
    workspace.sync()
    record = record_of(workspace.sync(SyncOptions(full_resync=("vip:crm",))), "vip", "crm")
    assert (record.entered, record.sent) == (3, 3)
    assert sent(receiver, 1) == [("entered", "u_1"), ("entered", "u_2"), ("entered", "u_3")]


@pytest.mark.parametrize("answer", [403, 404])
def test_forbidden_and_not_found_fail_the_sync(workspace, receiver, answer):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(1))
    receiver.script = [answer]
    record = record_of(workspace.sync(FAST), "vip", "crm")
    assert record.status == "failed"
    assert f"HTTP {answer}" in record.error


def test_destination_removed_from_the_audience_gets_exits(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(30))
    workspace.sync()
    text = (workspace.root / "resources.yaml").read_text()
    text = text.replace("  destinations:\n    - {destination: crm, identifier: user_id, traits: [], send_updates: false}\n", "")
    (workspace.root / "resources.yaml").write_text(text)
    workspace.apply()
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.exited, record.held_back, record.acknowledged) == (30, 0, 30)
    assert workspace.sync() == []


def test_replaced_audience_moves_its_state_and_resyncs_once(workspace, receiver):
    from reconciler.state.records import AppliedChange, AuditEntry

    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(3))
    workspace.sync()
    old_id = workspace.ids()["audience.vip"]
    store = workspace.store()
    try:
        state = store.read()
        record = state.resources["audience.vip"]
        change = AppliedChange(action="replace", address="audience.vip", kind="Audience", name="vip", spec=record.spec,
                               spec_hash=record.spec_hash)
        store.apply(state.serial, state.lineage, [change], AuditEntry(plan={}))
    finally:
        store.close()
    new_id = workspace.ids()["audience.vip"]
    assert new_id != old_id
    workspace.set_members("vip", workspace.users(3))

    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.entered, record.exited, record.acknowledged) == (3, 0, 3)
    assert workspace.query("SELECT DISTINCT audience_id FROM personas_sync_snapshots") == [(new_id,)]
    assert record_of(workspace.sync(), "vip", "crm").sent == 0


def test_account_audience_sends_group_ids(workspace, receiver):
    specs = f"""
apiVersion: personas/v1
kind: Audience
metadata: {{name: big_accounts}}
spec:
  entity: account
  include: {{any_user: {{event: Order Completed}}}}
  destinations:
    - {{destination: crm, identifier: user_id}}
---
apiVersion: personas/v1
kind: Destination
metadata: {{name: crm}}
spec: {{type: webhook, url: "{receiver.url}"}}
"""
    workspace.write_specs(specs)
    workspace.apply()
    workspace.prepare()
    workspace.set_members("big_accounts", ["acme", "globex"])
    workspace.sync()
    assert [(c["identifier"]["type"], c["identifier"]["value"]) for c in receiver.acknowledged_changes()] == [
        ("group_id", "acme"), ("group_id", "globex")]


def test_deleted_destination_gets_exits(workspace, receiver):
    make(workspace, receiver)
    workspace.set_members("vip", workspace.users(12))
    workspace.sync()
    text = (workspace.root / "resources.yaml").read_text()
    text = text.replace("  destinations:\n    - {destination: crm, identifier: user_id, traits: [], send_updates: false}\n", "")
    text = text[: text.index("---\napiVersion: personas/v1\nkind: Destination")]
    (workspace.root / "resources.yaml").write_text(text)
    workspace.apply()

    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.exited, record.held_back, record.acknowledged) == (12, 0, 12)
    assert sent(receiver, 1) == sorted(("exited", f"u_{n}") for n in range(1, 13))
    store = workspace.store()
    try:
        assert [stone for stone in store.tombstones() if stone.kind == "Destination"] == []
    finally:
        store.close()


def test_project_default_removal_guard(workspace, receiver):
    specs = AUDIENCE.format(url=receiver.url, mode="diff", identifier="user_id", traits="", send_updates="false",
                            consent="", holdout="0%", batch_size=500, extra="")
    workspace.write_specs(specs.replace("  max_removals: {share: 20%, at_least: 10}\n", ""))
    config = workspace.root / "personas.yaml"
    config.write_text(config.read_text() + "defaults: {max_removals: {share: 10%, at_least: 2}}\n")
    workspace.apply()
    workspace.prepare()
    subjects = workspace.users(10)
    workspace.set_members("vip", subjects)
    workspace.sync()
    workspace.set_members("vip", subjects[:8])
    record = record_of(workspace.sync(), "vip", "crm")
    assert (record.exited, record.held_back) == (2, 2)


def test_rejected_exit_waits_for_a_full_resync(workspace, receiver):
    make(workspace, receiver)
    subjects = workspace.users(3)
    workspace.set_members("vip", subjects)
    workspace.sync(FAST)
    receiver.reject_values = {"u_3"}
    workspace.set_members("vip", subjects[:2])
    assert record_of(workspace.sync(FAST), "vip", "crm").rejected == 1
    receiver.reject_values = set()
    assert record_of(workspace.sync(FAST), "vip", "crm").sent == 0

    record = record_of(workspace.sync(SyncOptions(full_resync=("vip:crm",), retry=FAST.retry)), "vip", "crm")
    assert (record.entered, record.exited, record.acknowledged) == (2, 1, 3)
    assert workspace.query("SELECT count(*) FROM personas_sync_rejected") == [(0,)]
