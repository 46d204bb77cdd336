"""`personas validate`: exit codes, text output compared whole, and the --json shape."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from reconciler.cli import cli

from .conftest import SECRETS

BROKEN_AUDIENCE = """\
apiVersion: personas/v1
kind: Audience
metadata:
  name: buyers
spec:
  include:
    event: Order Completed
    windw: 30d
  destinations:
    - destination: crn
      identifier: email
"""


class _Outcome:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


def _validate(root, *args, env=None) -> _Outcome:
    """Run the command as `personas.main` would: its returned int is the exit code."""
    runner = CliRunner()
    environment = {"CRM_TOKEN": None, "CRM_SIGNING_SECRET": None, "NO_COLOR": "1", **(env or {})}
    result = runner.invoke(cli, ["--project", str(root), "validate", *args], env=environment, standalone_mode=False)
    assert result.exception is None, result.exception
    return _Outcome(result.return_value, result.output)


def test_valid_project_exits_0_with_a_summary(write_project):
    result = _validate(write_project(), env=SECRETS)

    assert result.exit_code == 0
    assert result.output == "Valid: 3 traits, 1 audience, 1 destination.\n"


def test_warnings_are_printed_and_still_exit_0(write_project):
    result = _validate(write_project(), env={"CRM_TOKEN": "x"})

    assert result.exit_code == 0
    assert result.output == (
        "destinations/crm.yaml:9:19: warning[unset-variable] spec.signing_secret: "
        "environment variable CRM_SIGNING_SECRET is not set\n"
        "    hint: `personas apply` and `personas run` need it: set CRM_SIGNING_SECRET in the environment. "
        "It holds a secret, and secrets are never written in a spec.\n"
        "Valid: 3 traits, 1 audience, 1 destination (1 warning).\n"
    )


def test_invalid_project_lists_every_problem_and_exits_1(write_project):
    root = write_project({"audiences/buyers.yaml": BROKEN_AUDIENCE})

    result = _validate(root, env={"CRM_TOKEN": "x"})

    assert result.exit_code == 1
    assert result.output == (
        "audiences/buyers.yaml:8:5: error[unknown-key] spec.include.windw: unknown key `windw`\n"
        "    hint: did you mean `window`?\n"
        "audiences/buyers.yaml:10:20: error[unknown-destination] spec.destinations[0].destination: "
        "unknown destination `crn`\n"
        "    hint: did you mean `crm`?\n"
        "destinations/crm.yaml:9:19: warning[unset-variable] spec.signing_secret: "
        "environment variable CRM_SIGNING_SECRET is not set\n"
        "    hint: `personas apply` and `personas run` need it: set CRM_SIGNING_SECRET in the environment. "
        "It holds a secret, and secrets are never written in a spec.\n"
        "2 errors, 1 warning in 2 files; 1 document could not be checked further until they are fixed.\n"
    )


def test_semantic_errors_are_listed_once_the_documents_are_valid(write_project):
    root = write_project({"audiences/buyers.yaml": BROKEN_AUDIENCE.replace("    windw: 30d\n", "")})

    result = _validate(root, env=SECRETS)

    assert result.exit_code == 1
    assert result.output == (
        "audiences/buyers.yaml:9:20: error[unknown-destination] spec.destinations[0].destination: "
        "unknown destination `crn`\n"
        "    hint: did you mean `crm`?\n"
        "1 error, 0 warnings in 1 file.\n"
    )


def test_json_output_shape(write_project):
    root = write_project({"audiences/buyers.yaml": BROKEN_AUDIENCE})

    result = _validate(root, "--json", env=SECRETS)

    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "valid": False,
        "diagnostics": [{
            "file": "audiences/buyers.yaml", "line": 8, "column": 5, "path": "spec.include.windw",
            "code": "unknown-key", "severity": "error", "message": "unknown key `windw`",
            "hint": "did you mean `window`?",
        }, {
            "file": "audiences/buyers.yaml", "line": 10, "column": 20, "path": "spec.destinations[0].destination",
            "code": "unknown-destination", "severity": "error", "message": "unknown destination `crn`",
            "hint": "did you mean `crm`?",
        }],
        "summary": {
            "errors": 2, "warnings": 0, "files_with_problems": 1, "files_checked": 5,
            "documents_not_checked_further": 1,
            "traits": 3, "audiences": 1, "destinations": 1,
        },
    }


def test_json_output_of_a_valid_project(write_project):
    result = _validate(write_project(), "--json", env=SECRETS)

    payload = json.loads(result.output)
    assert result.exit_code == 0
    assert (payload["valid"], payload["diagnostics"], payload["summary"]["errors"]) == (True, [], 0)


def test_missing_project_file_names_next_step(tmp_path):
    result = _validate(tmp_path)

    assert result.exit_code == 1
    assert result.output == (
        f"personas.yaml: error[missing-project-file] no personas.yaml in {tmp_path.resolve()}\n"
        "    hint: Run `personas init DIR` to create a project, or pass `--project DIR` to point at one.\n"
        "1 error, 0 warnings in 1 file.\n"
    )


def _personas(*args, cwd):
    code = "import sys; from reconciler.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin", **SECRETS})


def test_project_option_works_before_and_after_the_command(write_project, tmp_path):
    root = write_project()

    after = _personas("validate", "--project", str(root), cwd=tmp_path)
    before = _personas("--project", str(root), "validate", cwd=tmp_path)

    assert (after.returncode, after.stdout) == (0, "Valid: 3 traits, 1 audience, 1 destination.\n")
    assert (before.returncode, before.stdout) == (0, after.stdout)


def test_project_defaults_to_the_current_folder(write_project):
    root = write_project({"audiences/buyers.yaml": BROKEN_AUDIENCE})

    completed = _personas("validate", cwd=root)

    assert completed.returncode == 1
    assert completed.stdout.splitlines()[0] == "audiences/buyers.yaml:8:5: error[unknown-key] spec.include.windw: unknown key `windw`"


def test_summary_counts_documents_checked_in_part(write_project):
    settings = 'version: 1\nname: shop\nidentity: {identifiers: [{type: user_id, limit: 0}], blocked_patterns: ["(a"]}\n'
    audience = (
        "apiVersion: personas/v1\nkind: Audience\nmetadata: {name: a}\n"
        "spec:\n  holdout: 60%\n  include: {audience: ghost}\n"
        "  destinations: [{destination: nowhere, identifier: fax}]\n"
    )
    root = write_project({"personas.yaml": settings, "audiences/a.yaml": audience}, base=False)

    result = _validate(root)

    assert result.exit_code == 1
    assert result.output.count("error[") == 6
    assert result.output.endswith(
        "6 errors, 0 warnings in 2 files; 2 documents could not be checked further until they are fixed.\n"
    )
