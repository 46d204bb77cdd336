"""Field cases F1 (YAML 1.1 booleans), F2 (duplicate keys) and F3 (misspelled keys)."""

from __future__ import annotations

from reconciler.project import check_project, load_project
from reconciler.spec import loader
from reconciler.spec.loader import parse_yaml_text


def test_fast_path_uses_the_c_parser():
    loader_class = loader._c_loader_class()

    assert loader_class is not None
    assert any(base.__module__.endswith("_ruamel_yaml") for base in loader_class.__mro__)


def test_yaml_11_booleans_stay_text():
    text = "country: NO\nmode: on\nanswer: y\nflag: off\nyes_word: Yes\nat: 10:00\nday: 2024-03-01\nreal: true\n"

    parsed = parse_yaml_text(text, "f1.yaml")

    assert parsed.diagnostics == []
    assert parsed.documents[0].data == {
        "country": "NO", "mode": "on", "answer": "y", "flag": "off", "yes_word": "Yes",
        "at": "10:00", "day": "2024-03-01", "real": True,
    }


def test_country_no_stays_string(write_project):
    audience = """\
apiVersion: personas/v1
kind: Audience
metadata: {name: norway}
spec:
  include:
    trait: country
    equals: NO
"""
    root = write_project({"audiences/norway.yaml": audience})

    project = load_project(root, env={"CRM_TOKEN": "t", "CRM_SIGNING_SECRET": "s"})

    assert project.audiences["norway"].spec.include.equals == "NO"


def test_mode_on_rejected_as_text(write_project):
    destination = "apiVersion: personas/v1\nkind: Destination\nmetadata: {name: crm}\nspec:\n  type: file\n  path: out\n  mode: on\n"
    root = write_project({"destinations/crm.yaml": destination})

    result = check_project(root, env={})

    [problem] = [d for d in result.diagnostics if d.is_error]
    assert (problem.file, problem.line, problem.path) == ("destinations/crm.yaml", 7, "spec.mode")
    assert problem.message == "`on` is not one of `diff`, `mirror`, `add_only`"


def test_duplicate_window_names_both_lines(write_project):
    audience = """\
apiVersion: personas/v1
kind: Audience
metadata: {name: buyers}
spec:
  include:
    event: Order Completed
    window: 30d
    window: 90d
"""
    root = write_project({"audiences/buyers.yaml": audience})

    result = check_project(root, env={})

    assert not result.valid
    [problem] = [d for d in result.diagnostics if d.is_error]
    assert (problem.file, problem.line, problem.column, problem.code) == ("audiences/buyers.yaml", 8, 5, "duplicate-key")
    assert problem.message == "duplicate key `window`: it is also set at line 7"


def test_duplicate_keys_on_fast_path():
    parsed = parse_yaml_text("a: 1\nb: {c: 1, c: 2}\na: 3\n", "f2.yaml")

    found = [(d.line, d.path, d.message) for d in parsed.diagnostics]
    assert found == [
        (2, "b.c", "duplicate key `c`: it is also set at line 2"),
        (3, "a", "duplicate key `a`: it is also set at line 1"),
    ]


def test_misspelled_window_has_hint(write_project):
    audience = """\
apiVersion: personas/v1
kind: Audience
metadata: {name: buyers}
spec:
  include:
    event: Order Completed
    windw: 30d
"""
    root = write_project({"audiences/buyers.yaml": audience})

    result = check_project(root, env={})

    assert result.project is None
    [problem] = [d for d in result.diagnostics if d.is_error]
    assert problem.to_dict() == {
        "file": "audiences/buyers.yaml",
        "line": 7,
        "column": 5,
        "path": "spec.include.windw",
        "code": "unknown-key",
        "severity": "error",
        "message": "unknown key `windw`",
        "hint": "did you mean `window`?",
    }
