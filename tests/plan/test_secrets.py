"""Secrets: a resolved value never leaves the process, and a rotated one shows in the plan."""

from __future__ import annotations

from .conftest import dump_state
from .shapes import SECRETS, write_all

TOKEN = SECRETS["CRM_TOKEN"]
ROTATED = {**SECRETS, "CRM_TOKEN": "tok_live_ROTATED999"}
SECRET_VALUES = [*SECRETS.values(), ROTATED["CRM_TOKEN"]]


def assert_no_secret(text: str, where: str) -> None:
    for value in SECRET_VALUES:
        assert value not in text, f"{value} appears in {where}"


def test_secret_values_never_appear_anywhere(project):
    write_all(project)
    planfile = project.root / "plan.json"
    outputs = []
    for args in (
        ["-vv", "validate"],
        ["-vv", "plan", "--format", "text"],
        ["-vv", "--log-format", "json", "plan", "--format", "json"],
        ["-vv", "plan", "--format", "markdown", "--out", str(planfile)],
        ["-vv", "show", str(planfile), "--format", "json"],
        ["-vv", "apply", "--auto-approve", str(planfile)],
        ["-vv", "plan", "--detailed-exitcode"],
    ):
        result = project.run(*args, env=SECRETS)
        assert result.exit_code == 0, (args, result.output)
        outputs.append((args, result.output))

    # Errors: an unset variable, then a stale saved plan, both after the secrets were used.
    destinations = project.root / "destinations/all.yaml"
    project.write("destinations/all.yaml", destinations.read_text().replace("batch_size: 250", "batch_size: 100"))
    unset = project.run("-vv", "apply", "--auto-approve", env={"CRM_TOKEN": TOKEN})
    assert unset.exit_code == 1
    assert "CRM_SIGNING_SECRET" in unset.stderr
    outputs.append(("unset", unset.output))
    stale = project.run("--debug", "-vv", "apply", "--auto-approve", str(planfile), env=SECRETS)
    assert stale.exit_code == 1
    outputs.append(("stale", stale.output))
    rotated = project.run("-vv", "apply", "--auto-approve", env=ROTATED)
    assert rotated.exit_code == 0
    outputs.append(("rotated", rotated.output))

    for args, text in outputs:
        assert_no_secret(text, f"the output of {args}")
    assert_no_secret(planfile.read_text(), "the saved plan")
    store = project.store()
    try:
        dump = dump_state(store)
    finally:
        store.close()
    assert dump["resources"], "the state holds the applied resources"
    assert_no_secret(repr(dump), "the state store")


def test_rotated_token_shows_as_sensitive_value_changed(project):
    write_all(project)
    assert project.run("apply", "--auto-approve", env=SECRETS).exit_code == 0

    result = project.run("plan", "--detailed-exitcode", env=ROTATED)
    assert result.exit_code == 2
    assert result.stdout == (
        "To update (1):\n"
        "  ~ destination.crm_webhook  (destinations/all.yaml)\n"
        "      a secret value changed\n"
        '      ~ spec.headers.Authorization: "Bearer ${CRM_TOKEN}" (sensitive value changed)\n'
        "      downstream: audience.winback\n"
        "\n"
        "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 0 to move.\n"
    )
    assert project.run("apply", "--auto-approve", env=ROTATED).exit_code == 0
    assert project.run("plan", "--detailed-exitcode", env=ROTATED).exit_code == 0


def test_unset_secret_is_unknown_not_a_change(project):
    write_all(project)
    assert project.run("apply", "--auto-approve", env=SECRETS).exit_code == 0
    unset = {key: value for key, value in SECRETS.items() if key != "CRM_TOKEN"}
    assert project.run("plan", "--detailed-exitcode", env=unset).exit_code == 0

    project.write("destinations/all.yaml", (project.root / "destinations/all.yaml").read_text().replace("batch_size: 250", "batch_size: 100"))
    result = project.run("plan", env=unset)
    assert '      ~ spec.batch_size: 250 -> 100\n' in result.stdout
    assert '      ~ spec.headers.Authorization: "Bearer ${CRM_TOKEN}" (sensitive value unknown)\n' in result.stdout


def test_webhook_url_shows_scheme_and_host_only(project):
    write_all(project)
    result = project.run("plan", "--format", "json", env=SECRETS)
    assert "/services/T000/B000" not in result.stdout
    assert '"url": "https://hooks.example.com"' in result.stdout
