"""Reading YAML files into plain Python data, fast, with exact positions on demand.

Specs are read with the C parser of ruamel.yaml (`ruamel.yaml.clib`), used
only to compose a tree of nodes. This module then turns the nodes into plain
dicts, lists, strings, numbers, booleans and None itself. That keeps loading a
thousand files to a fraction of a second and gives full control over what a
value may become:

* Plain scalars follow the YAML 1.2 core schema: only `true`/`false` (in
  three spellings) are booleans, so `NO`, `on`, `off` and `y` stay text, and
  `10:00` or `2024-03-01` stay text too; the models decide every other type.
* Every duplicate key of a mapping is reported with both lines, never "last one wins".
* Tags other than the core ones (`!!str`, `!!int`, `!!float`, `!!bool`,
  `!!null`, `!!map`, `!!seq`) are rejected, so `!!python/object` or a custom
  `!thing` can never build an object.
* Anchors, aliases and `<<` merge keys work; a document that aliases expand
  past `MAX_VALUES` values is rejected instead of exhausting memory.

Positions cost nothing on the happy path: each document keeps its root node,
and `YamlDocument.locate(path)` walks it only when a diagnostic needs a line
and column. Documents that came from the parse cache re-parse their text the
first time a position is asked for.
"""

from __future__ import annotations

import functools
import logging
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import BaseResolver

from reconciler.spec.diagnostics import Diagnostic, PathPart, format_path
from reconciler.spec.parse_cache import ParseCache, digest

log = logging.getLogger(__name__)

MAX_VALUES = 200_000  # values in one document after aliases are expanded
MAX_DEPTH = 200  # nesting of mappings and lists

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_TAG + name for name in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"

# YAML 1.2 core schema, checked in this order; anything else is text.
_IMPLICIT = (
    (BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")),
    (NULL, re.compile(r"^(?:~|null|Null|NULL|)$")),
    (INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")),
    (FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")),
    (MERGE, re.compile(r"^<<$")),
)
_MAYBE_TYPED = frozenset("tTfFnN~-+0123456789.<")


class _CoreResolver(BaseResolver):
    """Resolves untagged plain scalars by the YAML 1.2 core schema, and nothing else."""

    def __init__(self, version: Any = None, loadumper: Any = None) -> None:
        super().__init__(loadumper)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode:
            if implicit[0] and (value == "" or value[0] in _MAYBE_TYPED):
                for tag, pattern in _IMPLICIT:
                    if pattern.match(value):
                        return tag
            return STR
        return SEQ if kind is SequenceNode else MAP


@functools.cache
def _c_loader_class() -> type | None:
    try:
        from _ruamel_yaml import CParser
    except ImportError:  # pragma: no cover - ruamel.yaml.clib is a declared dependency
        log.debug("ruamel.yaml.clib is missing; reading YAML with the slower pure-Python parser")
        return None

    class CoreLoader(CParser, _CoreResolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _CoreResolver.__init__(self, loadumper=self)

    return CoreLoader


def _compose_documents(text: str) -> Iterator[Node]:
    """Yield the root node of each document, using the C parser when it is installed."""
    loader_class = _c_loader_class()
    if loader_class is None:  # pragma: no cover
        yield from _compose_documents_pure(text)
        return
    loader = loader_class(text)
    while loader.check_node():
        yield loader.get_node()


def _compose_documents_pure(text: str) -> Iterator[Node]:  # pragma: no cover - fallback only
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = _CoreResolver
    yield from yaml.compose_all(text)


# --------------------------------------------------------------------------- documents


@dataclass
class YamlDocument:
    """One document of a YAML file, as plain data, able to say where each value is written."""

    file: str  # posix path relative to the project folder
    index: int  # 0-based position of the document in its file
    data: Any
    line: int  # 1-based line where the document starts
    node: Node | None = field(default=None, repr=False)
    text: str | None = field(default=None, repr=False)  # to re-parse when `node` is None
    broken: tuple[tuple[PathPart, ...], ...] = ()  # paths already reported while reading (bad tags, aliases)

    def locate(self, parts: Sequence[PathPart], *, key: bool = False) -> tuple[int | None, int | None]:
        """Return the 1-based (line, column) of the value at `parts`, or of its key when `key` is true.

        When the path goes further than the document (a missing key), the
        position of the deepest existing value is returned.
        """
        root = self._root_node()
        if root is None:
            return self.line, 1
        node, key_node = _find_node(root, parts)
        target = key_node if key and key_node is not None else node
        return target.start_mark.line + 1, target.start_mark.column + 1

    def diagnostic(
        self,
        parts: Sequence[PathPart],
        code: str,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Diagnostic:
        """A diagnostic placed at `parts` of this document."""
        line, column = self.locate(parts, key=key)
        return Diagnostic(self.file, line, column, format_path(parts), code, severity, message, hint)  # type: ignore[arg-type]

    def _root_node(self) -> Node | None:
        if self.node is None and self.text is not None:
            try:
                nodes = list(_compose_documents(self.text))
            except YAMLError:
                nodes = []
            # Empty documents are skipped when loading, so find this one by position.
            self.node = next((n for n in nodes if n.start_mark.line + 1 == self.line), None)
            self.text = None
        return self.node


@dataclass
class YamlFile:
    """A YAML file: its non-empty documents, and the problems found reading it."""

    file: str
    documents: list[YamlDocument]
    diagnostics: list[Diagnostic]


def read_yaml_file(path: Path, file: str, cache: ParseCache | None = None) -> YamlFile:
    """Read a file; unreadable, binary and non-UTF-8 files become one diagnostic.

    With a `cache`, a file whose bytes are unchanged since it last read
    cleanly is not parsed again; its positions are recovered on demand.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return YamlFile(file, [], [not_regular_file(file)])
        raw = path.read_bytes()
    except OSError as error:
        reason = error.strerror or str(error)
        return YamlFile(file, [], [Diagnostic(file, None, None, "", "file-unreadable", "error", f"cannot read the file: {reason}", "Check that the file exists and is readable.")])
    text, problem = decode_text(raw, file)
    if text is None:
        return YamlFile(file, [], [problem])  # type: ignore[list-item]
    if cache is None:
        return parse_yaml_text(text, file)
    sha = digest(raw)
    cached = cache.get(file, sha)
    if cached is not None:
        return YamlFile(file, [YamlDocument(file, index, data, line, text=text) for index, line, data in cached], [])
    loaded = parse_yaml_text(text, file)
    if not loaded.diagnostics:
        cache.put(file, sha, [(document.index, document.line, document.data) for document in loaded.documents])
    return loaded


def not_regular_file(file: str) -> Diagnostic:
    """A warning for a named pipe, socket or device with a YAML name: it is never opened, since reading could block."""
    return Diagnostic(
        file, None, None, "", "file-skipped", "warning", "not a regular file; skipped",
        "Named pipes, sockets and devices are never read; move it out of the project folder to silence this.",
    )


def decode_text(raw: bytes, file: str = "") -> tuple[str | None, Diagnostic | None]:
    """Decode UTF-8 (a byte order mark is allowed); binary or other encodings become a diagnostic."""
    if b"\x00" in raw:
        return None, Diagnostic(
            file, None, None, "", "file-encoding", "error",
            "binary file: it contains NUL bytes, so it is not YAML text",
            "Move binary files out of the project folder, or give them another extension than .yaml/.yml.",
        )
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return None, Diagnostic(
            file, line, None, "", "file-encoding", "error",
            f"not UTF-8 text: byte 0x{raw[error.start]:02x} at offset {error.start} cannot be decoded",
            "Save the file as UTF-8.",
        )


def parse_yaml_text(text: str, file: str) -> YamlFile:
    """Parse every document of `text`.

    A syntax error ends its document only: reading resumes at the next `---`
    line after the error, so the documents around a broken one are still checked.
    """
    documents: list[YamlDocument] = []
    diagnostics: list[Diagnostic] = []
    index = 0
    lines: list[str] | None = None
    start = 0  # 0-based line where reading (re)starts
    while True:
        # Blank lines in front keep every position relative to the whole file.
        source = text if start == 0 else "\n" * start + "".join(lines[start:])  # type: ignore[index]
        try:
            for node in _compose_documents(source):
                builder = _Builder(file)
                data = builder.build_document(node)
                diagnostics.extend(builder.diagnostics)
                if data is not None:
                    broken = tuple(builder.broken)
                    documents.append(YamlDocument(file, index, data, node.start_mark.line + 1, node, broken=broken))
                index += 1
            break
        except YAMLError as error:
            lines = lines if lines is not None else text.splitlines(keepends=True)
            resume = _next_document_start(lines, error, start)
            diagnostics.append(_syntax_diagnostic(error, text, file, resumed=resume is not None))
            if resume is None:
                break
            start, index = resume, index + 1
    return YamlFile(file, documents, diagnostics)


_DOCUMENT_START_RE = re.compile(r"^---(?:[ \t].*)?\r?\n?$")


def _next_document_start(lines: list[str], error: YAMLError, start: int) -> int | None:
    """The 0-based line of the first `---` at or after the error, past `start`; None when there is none."""
    mark = getattr(error, "problem_mark", None)
    first = max(mark.line if mark is not None else len(lines), start + 1)
    return next((number for number in range(first, len(lines)) if _DOCUMENT_START_RE.match(lines[number])), None)


def _syntax_diagnostic(error: YAMLError, text: str, file: str, *, resumed: bool = False) -> Diagnostic:
    hint = (
        "Fix the YAML syntax; the rest of this document was not read, and reading went on at the next `---`."
        if resumed else "Fix the YAML syntax; nothing after this point of the file was read."
    )
    if isinstance(error, MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        line, column = mark.line + 1, mark.column + 1
        if _tab_at(text, mark.line, mark.column):
            message = "YAML syntax error: tabs are not allowed for indentation in YAML"
            return Diagnostic(file, line, column, "", "yaml-syntax", "error", message, "Indent with spaces. " + hint)
        problem = error.problem or "invalid YAML"
        context = f" ({error.context} at line {error.context_mark.line + 1})" if error.context and error.context_mark else ""
        message = f"YAML syntax error: {problem}{context}"
    else:
        position = getattr(error, "position", None)
        line = column = None
        if isinstance(position, int):
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
        message = f"YAML syntax error: {getattr(error, 'reason', None) or error}"
    return Diagnostic(file, line, column, "", "yaml-syntax", "error", message, hint)


def _tab_at(text: str, line: int, column: int) -> bool:
    """True when the error sits on a tab within the leading whitespace of its line."""
    lines = text.splitlines()
    if line >= len(lines):
        return False
    lead = lines[line][: len(lines[line]) - len(lines[line].lstrip(" \t"))]
    return "\t" in lead and column <= len(lead)


# --------------------------------------------------------------------------- building values


class _TooLarge(Exception):
    """A document too large or too deep to build. `node` and `path` give the place where the limit was exceeded."""

    def __init__(self, message: str, node: Node, path: tuple[PathPart, ...], hint: str) -> None:
        super().__init__(message)
        self.node, self.path, self.hint = node, path, hint


class _Builder:
    """Turns one document's nodes into plain data, collecting problems as diagnostics."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.broken: list[tuple[PathPart, ...]] = []
        self._done: dict[int, tuple[Any, int]] = {}  # anchored nodes: value, values inside
        self._active: set[int] = set()
        self._count = 0

    def build_document(self, node: Node) -> Any:
        try:
            return self._build(node, (), 0)
        except _TooLarge as error:
            self._report(error.node, error.path, "yaml-too-large", str(error), error.hint)
            return None

    def _build(self, node: Node, path: tuple[PathPart, ...], depth: int) -> Any:
        if id(node) in self._done:
            value, size = self._done[id(node)]
            self._count += size  # an alias repeats every value of its anchor
            self._check_count(node, path)
            return value
        start = self._count
        self._count += 1
        self._check_count(node, path)
        if depth > MAX_DEPTH:
            raise _TooLarge(
                f"the document nests more than {MAX_DEPTH} levels deep", node, path,
                "Flatten this part of the document: specs never need that much nesting.",
            )
        if id(node) in self._active:
            self._report(node, path, "yaml-recursive-alias", "an alias refers to a value that contains it", "Remove the recursive alias.")
            return None
        self._active.add(id(node))
        try:
            value = self._build_node(node, path, depth)
        finally:
            self._active.discard(id(node))
        if node.anchor is not None:
            self._done[id(node)] = (value, self._count - start)
        return value

    def _check_count(self, node: Node, path: tuple[PathPart, ...]) -> None:
        if self._count > MAX_VALUES:
            if self._done:
                message = f"the document contains more than {MAX_VALUES} values once aliases are expanded"
                raise _TooLarge(message, node, path, "Use fewer aliases or split the document.")
            raise _TooLarge(f"the document contains more than {MAX_VALUES} values", node, path, "Split the document.")

    def _build_node(self, node: Node, path: tuple[PathPart, ...], depth: int) -> Any:
        tag = _tag(node)
        if node.__class__ is ScalarNode:
            return self._scalar(node, tag, path)
        if node.__class__ is SequenceNode:
            if tag != SEQ:
                self._unsupported_tag(node, tag, path)
                return None
            return [self._build(item, (*path, index), depth + 1) for index, item in enumerate(node.value)]
        if tag != MAP:
            self._unsupported_tag(node, tag, path)
            return None
        return self._mapping(node, path, depth)

    def _scalar(self, node: ScalarNode, tag: str, path: tuple[PathPart, ...]) -> Any:
        text = node.value
        try:
            if tag == STR:
                return text
            if tag == INT:
                return _to_int(text)
            if tag == FLOAT:
                return _to_float(text)
            if tag == BOOL:
                return {"true": True, "false": False}[text.lower()]
            if tag == NULL:
                if text.strip() not in ("", "~", "null", "Null", "NULL"):
                    raise ValueError
                return None
        except (ValueError, KeyError):
            short = tag.replace(_TAG, "!!")
            self._report(node, path, "invalid-value", f"`{text}` is not a valid {short} value", "Remove the tag or fix the value.")
            return None
        if tag == MERGE:
            return "<<"
        self._unsupported_tag(node, tag, path)
        return None

    def _mapping(self, node: MappingNode, path: tuple[PathPart, ...], depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[tuple[type, Any], Node] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                self._report(key_node, path, "invalid-key", "a mapping key must be a plain value, not a list or a mapping", "Write the key as text.")
                continue
            if _tag(key_node) == MERGE:
                self._merge(value_node, merged, path, depth)
                continue
            key = self._scalar(key_node, _tag(key_node), path)
            typed = (type(key), key)  # the YAML scalars 1 and true differ, though 1 == True in Python
            if not isinstance(key, str):
                key = self._text_key(key_node, key, path)
            if typed in seen:
                first = seen[typed].start_mark.line + 1
                self._report(
                    key_node, (*path, key), "duplicate-key",
                    f"duplicate key `{key}`: it is also set at line {first}",
                    "Keep one of them; YAML mappings cannot repeat a key.",
                )
                continue
            seen[typed] = key_node
            result[key] = self._build(value_node, (*path, key), depth + 1)
        if merged:
            return {**{k: v for k, v in merged.items() if k not in result}, **result}
        return result

    def _text_key(self, key_node: ScalarNode, key: Any, path: tuple[PathPart, ...]) -> str:
        """Report a key that is not text, and keep it as the text written, so its path reads as written."""
        from reconciler.spec.validation import describe

        text = key_node.value
        self._report(
            key_node, (*path, text), "invalid-key", f"keys must be text; got {describe(key)}",
            f'Put the key in quotes, such as "{text}", or remove it.',
        )
        return text

    def _merge(self, node: Node, merged: dict[Any, Any], path: tuple[PathPart, ...], depth: int) -> None:
        sources = node.value if node.__class__ is SequenceNode else [node]
        for source in sources:
            value = self._build(source, path, depth + 1)
            if not isinstance(value, dict):
                self._report(source, path, "invalid-merge", "`<<` merges mappings only", "Point `<<` at a mapping or a list of mappings.")
                continue
            for key, item in value.items():
                merged.setdefault(key, item)  # the first source that sets a key wins

    def _unsupported_tag(self, node: Node, tag: str, path: tuple[PathPart, ...]) -> None:
        shown = tag.replace(_TAG, "!!")
        self._report(
            node, path, "unsupported-tag",
            f"tag `{shown}` is not allowed: specs contain only text, numbers, booleans, null, lists and mappings",
            "Remove the tag.",
        )

    def _report(self, node: Node, path: Sequence[PathPart], code: str, message: str, hint: str) -> None:
        self.broken.append(tuple(path))
        mark = node.start_mark
        self.diagnostics.append(
            Diagnostic(self.file, mark.line + 1, mark.column + 1, format_path(path), code, "error", message, hint)
        )


def _tag(node: Node) -> str:
    """The node's resolved tag; reads the raw text, which the C parser has already expanded."""
    tag = node.ctag
    return tag.suffix if tag.handle is None else str(tag)


def _to_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _to_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)


# --------------------------------------------------------------------------- finding positions


def _find_node(root: Node, parts: Sequence[PathPart]) -> tuple[Node, Node | None]:
    """Follow `parts` from `root`; return the deepest node reached and the key node naming it."""
    node, key_node = root, None
    for part in parts:
        found = _child(node, part)
        if found is None:
            break
        key_node, node = found
    return node, key_node


def _child(node: Node, part: PathPart) -> tuple[Node | None, Node] | None:
    if node.__class__ is SequenceNode:
        if isinstance(part, int) and 0 <= part < len(node.value):
            return None, node.value[part]
        return None
    if node.__class__ is not MappingNode:
        return None
    merges = []
    for key_node, value_node in node.value:
        if key_node.__class__ is not ScalarNode:
            continue
        if _tag(key_node) == MERGE:
            merges.extend(value_node.value if value_node.__class__ is SequenceNode else [value_node])
        elif _same_key(key_node, part):
            return key_node, value_node
    for source in merges:
        found = _child(source, part)
        if found is not None:
            return found
    return None


def _same_key(key_node: ScalarNode, part: PathPart) -> bool:
    if isinstance(part, str):
        return key_node.value == part  # keys that are not text are kept as written
    try:
        return _tag(key_node) == INT and _to_int(key_node.value) == part
    except ValueError:
        return False
