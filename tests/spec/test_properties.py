"""Property tests: whatever YAML a file contains, loading ends in a result or diagnostics, never a crash.

Three sources of input: arbitrary text, arbitrary data dumped to YAML, and
valid specs mutated by dropping, renaming or retyping a key.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.errors import SpecError
from reconciler.project import check_project, load_project

from .conftest import AUDIENCE, DESTINATION, PROJECT_FILE, TRAITS

_CODE_RE = re.compile(r"^[a-z]+(-[a-z]+)*$")
_SETTINGS = settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.sampled_from(["NO", "on", "30d", "10%", "${X}", "${", "event", "Trait", "personas/v1"]),
)
keys = st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(["kind", "spec", "metadata", "include", "event", "window", "type", "name"]))
data = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=20)

VALID_DOCUMENTS = [document for text in (TRAITS, AUDIENCE, DESTINATION) for document in YAML(typ="safe").load_all(text)]


def _dump(value: Any) -> str:
    stream = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.dump(value, stream)
    return stream.getvalue()


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@st.composite
def mutated_projects(draw) -> dict[str, str]:
    """The valid documents, one of them mutated 1-3 times, each written to its own file."""
    import copy

    documents = copy.deepcopy(VALID_DOCUMENTS)
    index = draw(st.integers(0, len(documents) - 1))
    document = documents[index]
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        action = draw(st.sampled_from(["drop", "rename", "retype"]))
        if action == "drop":
            del parent[last]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(last)
        else:
            parent[last] = draw(data)
    return {f"resource{number}.yaml": _dump(item) for number, item in enumerate(documents)}


# The YAML parser counts NEL, LS and PS as line breaks too (as YAML 1.1 does),
# so a diagnostic's line can be past the number of "\n" in the text.
_LINE_BREAK_RE = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _check(files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "personas.yaml").write_text(PROJECT_FILE)
        for name, text in files.items():
            (root / name).write_text(text)
        result = check_project(root, env={})
        lines = {name: len(_LINE_BREAK_RE.findall(text)) + 2 for name, text in files.items()}
        for diagnostic in result.diagnostics:
            assert _CODE_RE.match(diagnostic.code), diagnostic
            assert diagnostic.severity in ("error", "warning")
            assert diagnostic.message
            assert diagnostic.line is None or 1 <= diagnostic.line <= lines.get(diagnostic.file, 10**6), diagnostic
        assert result.valid is (not any(d.is_error for d in result.diagnostics))
        try:
            load_project(root, env={})
        except SpecError as error:
            assert error.diagnostics and not result.valid


@_SETTINGS
@given(st.text(max_size=200))
@example("0:\x85 0")
def test_any_text_ends_in_a_result_or_diagnostics(text):
    _check({"resource.yaml": text})


@_SETTINGS
@given(st.lists(data, min_size=1, max_size=3))
def test_any_data_dumped_as_yaml_ends_in_a_result_or_diagnostics(documents):
    _check({"resource.yaml": "---\n".join(_dump(document) for document in documents)})


@_SETTINGS
@given(mutated_projects())
def test_mutated_specs_end_in_a_result_or_diagnostics(files):
    _check(files)
