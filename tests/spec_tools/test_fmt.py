"""`personas fmt`: canonical key order and layout, comments and meaning kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.errors import SpecError
from reconciler.spec.fmt import format_text

from .helpers import REPO, documents, example_files, run_cli

SCRAMBLED = """\
# yaml-language-server: $schema=./schemas/trait.schema.json
# Revenue per customer.
metadata:   # who owns it
    # the address is trait.ltv
    name: ltv  # short
    # shown in plans
    description: "Revenue, all time"
    custom: kept
apiVersion: personas/v1
# the kind decides the spec
kind: Trait
spec:
    # counted once per order
    event: 'Order Completed'
    type: aggregation
    where:
    -   gt: 0
        property: revenue
    # before the window
    window: {to: 45d, from: 120d}
    property: revenue
    function: sum
"""

CANONICAL = """\
# yaml-language-server: $schema=./schemas/trait.schema.json
# Revenue per customer.
apiVersion: personas/v1
# the kind decides the spec
kind: Trait
metadata:   # who owns it
  # the address is trait.ltv
  name: ltv    # short
  # shown in plans
  description: "Revenue, all time"
  custom: kept
spec:
  type: aggregation
  # counted once per order
  event: 'Order Completed'
  where:
    - property: revenue
      gt: 0
  # before the window
  window: {from: 120d, to: 45d}
  function: sum
  property: revenue
"""


def test_fmt_keeps_comments_with_moved_keys():
    assert format_text(SCRAMBLED, source="traits/ltv.yaml") == CANONICAL


def test_fmt_leaves_a_canonical_file_byte_for_byte():
    assert format_text(CANONICAL, source="traits/ltv.yaml") == CANONICAL


def test_fmt_orders_destination_type_keys_before_shared_ones():
    text = """\
apiVersion: personas/v1
kind: Destination
metadata:
  name: crm
spec:
  consent: [marketing_email]
  mode: diff
  headers:
    Authorization: "Bearer ${CRM_TOKEN}"
  type: webhook
  url: https://hooks.example.com/audiences
"""
    assert format_text(text, source="crm.yaml") == """\
apiVersion: personas/v1
kind: Destination
metadata:
  name: crm
spec:
  type: webhook
  url: https://hooks.example.com/audiences
  headers:
    Authorization: "Bearer ${CRM_TOKEN}"
  mode: diff
  consent: [marketing_email]
"""


def test_fmt_condition_kind_key_first():
    text = """\
apiVersion: personas/v1
kind: Audience
metadata:
  name: winback
spec:
  include:
    all:
      - equals: true
        trait: email_opt_in
      - not:
          window: 45d
          event: Order Completed
      - count: {gte: 2}
        window: {to: 45d, from: 120d}
        event: Order Completed
  destinations:
    - identifier: email
      destination: crm
  entity: user
"""
    assert format_text(text, source="winback.yaml") == """\
apiVersion: personas/v1
kind: Audience
metadata:
  name: winback
spec:
  entity: user
  include:
    all:
      - trait: email_opt_in
        equals: true
      - not:
          event: Order Completed
          window: 45d
      - event: Order Completed
        window: {from: 120d, to: 45d}
        count: {gte: 2}
  destinations:
    - destination: crm
      identifier: email
"""


def test_fmt_orders_the_project_file_by_its_model():
    text = """\
identity:
  identifiers:
    - {limit: 5, type: email, from: [traits.email]}
    - {type: user_id}
name: acme
version: 1
"""
    assert format_text(text, source="personas.yaml") == """\
version: 1
name: acme
identity:
  identifiers:
    - {type: email, limit: 5, from: [traits.email]}
    - {type: user_id}
"""


def test_fmt_keeps_document_markers():
    text = "# yaml-language-server: $schema=./schemas/resource.schema.json\n---\nkind: Trait\napiVersion: personas/v1\n---\n# second\nkind: Audience\napiVersion: personas/v1\n"
    assert format_text(text, source="all.yaml") == (
        "# yaml-language-server: $schema=./schemas/resource.schema.json\n---\napiVersion: personas/v1\nkind: Trait\n"
        "---\n# second\napiVersion: personas/v1\nkind: Audience\n"
    )


def test_fmt_never_touches_block_scalar_content():
    text = """\
apiVersion: personas/v1
kind: Trait
metadata:
  name: plan
spec:
  type: sql
  value_type: string
  query: |
    SELECT user_id, plan
    # a line of the query, not a comment
      FROM accounts
  identifier: user_id
"""
    formatted = format_text(text, source="plan.yaml")
    assert formatted.endswith("""\
spec:
  type: sql
  query: |
    SELECT user_id, plan
    # a line of the query, not a comment
      FROM accounts
  identifier: user_id
  value_type: string
""")
    assert documents_of(formatted) == documents_of(text)


def test_fmt_adds_one_final_newline_and_turns_crlf_into_lf():
    assert format_text("version: 1\r\nname: acme", source="personas.yaml") == "version: 1\nname: acme\n"
    assert format_text("version: 1\nname: acme\n\n\n", source="personas.yaml") == "version: 1\nname: acme\n"


def test_fmt_keeps_unknown_keys_after_the_known_ones_in_their_order():
    text = "zeta: 1\nkind: Trait\nalpha: 2\napiVersion: personas/v1\n"
    assert format_text(text, source="x.yaml") == "apiVersion: personas/v1\nkind: Trait\nzeta: 1\nalpha: 2\n"


def test_fmt_reports_a_yaml_error_with_file_and_line():
    with pytest.raises(SpecError) as raised:
        format_text("apiVersion: personas/v1\nspec:\n  where: [\n", source="traits/bad.yaml")
    assert raised.value.message.startswith("traits/bad.yaml:4: invalid YAML:")


def test_fmt_reports_a_duplicate_key_instead_of_dropping_one():
    with pytest.raises(SpecError) as raised:
        format_text("apiVersion: personas/v1\nspec:\n  window: 30d\n  window: 60d\n", source="dup.yaml")
    assert "dup.yaml:4" in raised.value.message
    assert "duplicate key" in raised.value.message


def documents_of(text: str) -> list:
    from reconciler.spec.loader import parse_yaml_text

    return [document.data for document in parse_yaml_text(text, "x.yaml").documents]


@pytest.mark.parametrize("path", example_files(), ids=lambda path: path.relative_to(REPO).as_posix())
def test_fmt_is_idempotent_and_keeps_the_meaning_of_every_example(path: Path):
    original = path.read_text(encoding="utf-8")
    once = format_text(original, source=path.name)
    assert format_text(once, source=path.name) == once
    assert documents_of(once) == documents(path)


@pytest.mark.parametrize("path", sorted(REPO.glob("reconciler/templates/init/**/*.yaml")), ids=lambda path: path.name)
def test_init_templates_are_already_formatted(path: Path):
    assert format_text(path.read_text(encoding="utf-8"), source=path.name) == path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the command


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "personas.yaml").write_text("name: acme\nversion: 1\n")
    (tmp_path / "traits").mkdir()
    (tmp_path / "traits" / "ltv.yaml").write_text(SCRAMBLED)
    (tmp_path / "traits" / "done.yml").write_text(CANONICAL)
    (tmp_path / ".personas").mkdir()
    (tmp_path / ".personas" / "ignored.yaml").write_text("b: 1\na: [\n")
    return tmp_path


def test_fmt_check_lists_files_that_would_change_and_writes_nothing(project: Path):
    result = run_cli("fmt", "--check", "--project", str(project))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("would reformat: ") for line in lines)
    assert lines[0].endswith("personas.yaml") and lines[1].endswith("traits/ltv.yaml")
    assert result.stderr == "2 files would be reformatted, 1 unchanged.\n"
    assert (project / "traits" / "ltv.yaml").read_text() == SCRAMBLED


def test_fmt_rewrites_files_then_check_passes(project: Path):
    result = run_cli("fmt", "--project", str(project))
    assert result.exit_code == 0, result.stderr
    assert (project / "traits" / "ltv.yaml").read_text() == CANONICAL
    assert (project / "personas.yaml").read_text() == "version: 1\nname: acme\n"
    assert (project / ".personas" / "ignored.yaml").read_text() == "b: 1\na: [\n"
    assert run_cli("fmt", "--check", "--project", str(project)).exit_code == 0


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(project: Path, monkeypatch):
    monkeypatch.chdir(project)
    result = run_cli("fmt", "--diff", "personas.yaml")
    assert result.exit_code == 0
    assert result.stdout == "--- a/personas.yaml\n+++ b/personas.yaml\n@@ -1,2 +1,2 @@\n+version: 1\n name: acme\n-version: 1\n"
    assert (project / "personas.yaml").read_text() == "name: acme\nversion: 1\n"


def test_fmt_with_check_and_diff_exits_one_with_the_diff(project: Path):
    result = run_cli("fmt", "--check", "--diff", str(project / "personas.yaml"))
    assert result.exit_code == 1
    assert "+version: 1" in result.stdout


def test_fmt_leaves_a_file_with_yaml_errors_untouched_and_formats_the_rest(project: Path):
    broken = "kind: Trait\nspec:\n  where: [\n"
    (project / "traits" / "broken.yaml").write_text(broken)
    result = run_cli("fmt", "--project", str(project))
    assert result.exit_code == 1
    assert "broken.yaml:4: invalid YAML" in result.stderr
    assert (project / "traits" / "broken.yaml").read_text() == broken
    assert (project / "traits" / "ltv.yaml").read_text() == CANONICAL


def test_fmt_keeps_the_file_mode_and_leaves_no_temporary_file(project: Path):
    path = project / "traits" / "ltv.yaml"
    os.chmod(path, 0o640)
    assert run_cli("fmt", str(path)).exit_code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in path.parent.iterdir()) == ["done.yml", "ltv.yaml"]


def test_fmt_drops_a_byte_order_mark(project: Path):
    path = project / "personas.yaml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\nname: acme\n")
    assert run_cli("fmt", "--check", str(path)).exit_code == 1
    assert run_cli("fmt", str(path)).exit_code == 0
    assert path.read_bytes() == b"version: 1\nname: acme\n"


def test_fmt_keeps_empty_and_comment_only_files():
    assert format_text("", source="empty.yaml") == ""
    assert format_text("\n\n", source="empty.yaml") == ""
    assert format_text("# nothing here yet  \n", source="todo.yaml") == "# nothing here yet\n"


def test_fmt_keeps_a_yaml_directive():
    text = "%YAML 1.2\n---\nkind: Trait\napiVersion: personas/v1\n"
    assert format_text(text, source="t.yaml") == "%YAML 1.2\n---\napiVersion: personas/v1\nkind: Trait\n"
