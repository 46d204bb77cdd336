"""Reading YAML: scalars, tags, aliases, encodings, syntax errors, positions and the parse cache."""

from __future__ import annotations

import os
import stat

import pytest

from reconciler.project import check_project
from reconciler.spec.loader import MAX_VALUES, parse_yaml_text, read_yaml_file
from reconciler.spec.parse_cache import CACHE_FILE, ParseCache


def test_core_schema_numbers_and_nulls():
    text = "a: 12\nb: -3\nc: 0o17\nd: 0x1F\ne: 1.5\nf: 1e3\ng: ~\nh:\ni: null\nj: '12'\nk: 012\n"

    data = parse_yaml_text(text, "f.yaml").documents[0].data

    assert data == {"a": 12, "b": -3, "c": 15, "d": 31, "e": 1.5, "f": 1000.0, "g": None, "h": None, "i": None, "j": "12", "k": 12}


def test_several_documents_with_empty_ones_skipped():
    parsed = parse_yaml_text("a: 1\n---\n---\n# only a comment\n---\nb: 2\n", "f.yaml")

    assert [(d.index, d.line, d.data) for d in parsed.documents] == [(0, 1, {"a": 1}), (3, 6, {"b": 2})]


def test_empty_file_has_no_documents():
    parsed = parse_yaml_text("", "f.yaml")

    assert (parsed.documents, parsed.diagnostics) == ([], [])


@pytest.mark.parametrize(
    "text, tag",
    [
        ("a: !!python/object/apply:os.system ['true']\n", "!!python/object/apply:os.system"),
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !custom value\n", "!custom"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !!set {x, y}\n", "!!set"),
        ("a: !!timestamp 2024-01-01\n", "!!timestamp"),
    ],
)
def test_object_tags_are_rejected(text, tag):
    parsed = parse_yaml_text(text, "f.yaml")

    [problem] = parsed.diagnostics
    assert (problem.code, problem.line, problem.column, problem.path) == ("unsupported-tag", 1, 4, "a")
    assert f"`{tag}`" in problem.message
    assert parsed.documents[0].data == {"a": None}


def test_core_tags_are_accepted():
    parsed = parse_yaml_text("a: !!str 10\nb: !!int '7'\nc: !!float '1.5'\nd: !!bool 'true'\ne: !!null ''\n", "f.yaml")

    assert parsed.diagnostics == []
    assert parsed.documents[0].data == {"a": "10", "b": 7, "c": 1.5, "d": True, "e": None}


def test_anchors_aliases_and_merge_keys():
    text = "base: &base {event: X, window: 30d}\nuse:\n  <<: *base\n  window: 90d\nagain: *base\n"

    data = parse_yaml_text(text, "f.yaml").documents[0].data

    assert data["use"] == {"event": "X", "window": "90d"}
    assert data["again"] == {"event": "X", "window": "30d"}


def test_alias_bomb_is_rejected_unexpanded():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 9):
        previous, name = chr(96 + index), chr(97 + index)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    parsed = parse_yaml_text("\n".join(lines) + "\n", "bomb.yaml")

    assert parsed.documents == []
    assert [d.code for d in parsed.diagnostics] == ["yaml-too-large"]
    assert str(MAX_VALUES) in parsed.diagnostics[0].message


def test_deep_nesting_is_rejected():
    parsed = parse_yaml_text("a: " + "[" * 500 + "]" * 500 + "\n", "deep.yaml")

    assert [d.code for d in parsed.diagnostics] == ["yaml-too-large"]


def test_syntax_error_keeps_earlier_documents():
    parsed = parse_yaml_text("a: 1\n---\nb: [1, 2\nc: 3\n", "f.yaml")

    assert [d.data for d in parsed.documents] == [{"a": 1}]
    [problem] = parsed.diagnostics
    assert (problem.code, problem.line, problem.column) == ("yaml-syntax", 4, 2)
    assert problem.message == "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 3)"


def test_tab_indentation_is_a_syntax_error():
    parsed = parse_yaml_text("a:\n\tb: 1\n", "f.yaml")

    [problem] = parsed.diagnostics
    assert (problem.code, problem.line) == ("yaml-syntax", 2)


def test_control_character_is_syntax_error():
    parsed = parse_yaml_text("a: 1\nb: x\x07y\n", "f.yaml")

    [problem] = parsed.diagnostics
    assert (problem.code, problem.line, problem.column) == ("yaml-syntax", 2, 5)


def test_binary_and_non_utf8_reported(tmp_path):
    (tmp_path / "image.yaml").write_bytes(b"GIF89a\x00\x01")
    (tmp_path / "latin.yaml").write_bytes("a: 1\nb: caf\xe9\n".encode("latin-1"))
    (tmp_path / "bom.yaml").write_bytes("\ufeffa: 1\n".encode("utf-8"))

    binary = read_yaml_file(tmp_path / "image.yaml", "image.yaml")
    latin = read_yaml_file(tmp_path / "latin.yaml", "latin.yaml")
    bom = read_yaml_file(tmp_path / "bom.yaml", "bom.yaml")

    assert [(d.file, d.code) for d in binary.diagnostics] == [("image.yaml", "file-encoding")]
    assert [(d.file, d.line, d.message) for d in latin.diagnostics] == [
        ("latin.yaml", 2, "not UTF-8 text: byte 0xe9 at offset 11 cannot be decoded")
    ]
    assert bom.documents[0].data == {"a": 1}


def test_dangling_link_is_reported_as_unreadable(write_project):
    root = write_project()
    (root / "traits" / "moved.yaml").symlink_to(root / "nowhere.yaml")

    result = check_project(root, env={})

    [problem] = [d for d in result.diagnostics if d.is_error]
    assert (problem.file, problem.code) == ("traits/moved.yaml", "file-unreadable")
    assert problem.message == "cannot read the file: No such file or directory"


def test_locate_finds_keys_values_and_list_items():
    text = "spec:\n  include:\n    all:\n      - event: X\n        window: 30d\n      - trait: t\n"
    document = parse_yaml_text(text, "f.yaml").documents[0]

    assert document.locate(["spec", "include", "all", 0, "window"]) == (5, 17)
    assert document.locate(["spec", "include", "all", 0, "window"], key=True) == (5, 9)
    assert document.locate(["spec", "include", "all", 1]) == (6, 9)
    assert document.locate(["spec", "include", "nothing", "here"]) == (3, 5)


# --------------------------------------------------------------------------- parse cache


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cache_serves_unchanged_files_and_never_stale_ones(write_project):
    root = write_project()
    check_project(root, env={})
    cache = ParseCache(root)
    assert "traits/traits.yaml" in cache.entries

    traits = root / "traits/traits.yaml"
    traits.write_text(traits.read_text().replace("window: 90d", "window: 30d"))
    project = check_project(root, env={}).project

    assert project.traits["orders_90d"].spec.window.from_ == "30d"


def test_cached_data_keeps_exact_positions(write_project):
    audience = "apiVersion: personas/v1\nkind: Audience\nmetadata: {name: a}\nspec:\n  include:\n    trait: nope\n    equals: 1\n"
    root = write_project({"audiences/a.yaml": audience})
    first = check_project(root, env={}).diagnostics
    assert "audiences/a.yaml" in ParseCache(root).entries

    second = check_project(root, env={}).diagnostics

    assert second == first
    assert [(d.line, d.column, d.code) for d in second if d.is_error] == [(6, 12, "unknown-trait")]


def test_files_with_problems_are_not_cached(write_project):
    root = write_project({"audiences/bad.yaml": "a: 1\na: 2\n"})

    check_project(root, env={})

    assert "audiences/bad.yaml" not in ParseCache(root).entries


def test_corrupt_cache_is_ignored_and_rewritten(write_project):
    root = write_project()
    (root / CACHE_FILE).parent.mkdir(parents=True)
    (root / CACHE_FILE).write_text("{not json")

    result = check_project(root, env={})

    assert result.valid
    assert "personas.yaml" in ParseCache(root).entries


def test_read_only_project_loads_without_a_cache(write_project):
    root = write_project()
    mode = root.stat().st_mode
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = check_project(root, env={})
    finally:
        root.chmod(mode)

    assert result.valid
    if os.geteuid() != 0:
        assert not (root / CACHE_FILE).exists()


def test_deleted_files_leave_the_cache(write_project):
    root = write_project({"traits/extra.yaml": "apiVersion: personas/v1\nkind: Trait\nmetadata: {name: extra}\nspec: {type: event_counter, event: X}\n"})
    check_project(root, env={})
    (root / "traits/extra.yaml").unlink()

    check_project(root, env={})

    assert "traits/extra.yaml" not in ParseCache(root).entries
