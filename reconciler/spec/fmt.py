"""Canonical formatting of personas.yaml and resource files, comments kept.

A file is cut into documents at its `---` lines; comment-only parts (such as a
`# yaml-language-server` line above the first `---`) are kept as written.
Each document then goes through two passes:

1. Key order. Every block mapping a model recognises is put in canonical
   order (see key_order.py) by moving whole chunks of text: a key, its value
   and the comment lines directly above it. Working on the text rather than
   on ruamel.yaml's comment attachments keeps each comment beside the key it
   describes. One mapping is reordered per parse, and the document is parsed
   again until every mapping is in order.
2. Layout. ruamel.yaml's round-trip mode loads and dumps the result:
   two-space indentation, list items indented under their key, quotes and
   comments as written. Flow mappings (`{from: 120d, to: 45d}`) are reordered
   here, on the loaded objects, since they hold no comments.

Formatting never changes what a file means: each document is read before and
after, as `personas validate` reads it, and the data and anchor names must
match. When moving keys would change them (an alias placed before its anchor),
the document keeps its key order and gets the layout pass only, with a note.
When even that would change them, the file is left unchanged with an error.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import SpecError
from reconciler.spec.fmt_cache import FormattedCache, file_key
from reconciler.spec.key_order import (
    PROJECT_MODELS,
    RESOURCE_MODELS,
    Models,
    canonical_keys,
    child_models,
    choose_model,
)

PROJECT_FILE = "personas.yaml"

_MARKER_RE = re.compile(r"^(---|\.\.\.)(\s.*)?$")
_COMMENT_OR_BLANK_RE = re.compile(r"^\s*(#.*)?$")


@dataclass(frozen=True)
class _Part:
    """A piece of a file: a document marker line, or the lines between markers."""

    lines: list[str]
    first_line: int  # 0-based line number in the file
    is_marker: bool = False

    @property
    def has_content(self) -> bool:
        return not self.is_marker and any(
            not _COMMENT_OR_BLANK_RE.match(line) and not line.startswith("%") for line in self.lines
        )


def roots_for(filename: str) -> Models:
    """Return the models of a file's documents: personas.yaml is the project file, any other file contains resources."""
    return PROJECT_MODELS if filename.rsplit("/", 1)[-1] == PROJECT_FILE else RESOURCE_MODELS


def format_text(
    text: str, *, source: str = "<text>", roots: Models | None = None, notes: list[str] | None = None
) -> str:
    """Return `text` formatted canonically; raise SpecError, naming file and line, on invalid YAML.

    When keys cannot be reordered without changing what a document means
    (an alias would come before its anchor), that document keeps its key
    order and a line saying so is added to `notes`.
    """
    roots = roots if roots is not None else roots_for(source)
    notes = notes if notes is not None else []
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    pieces = []
    for part in _split_documents(text):
        if part.has_content:
            pieces.append(_format_document("".join(part.lines), roots, source, part.first_line, notes))
        else:
            pieces.append("".join(line.rstrip() + "\n" for line in part.lines))
    formatted = "".join(pieces).rstrip("\n")
    return formatted + "\n" if formatted else ""


def _split_documents(text: str) -> Iterator[_Part]:
    lines = text.splitlines(keepends=True)
    start = 0
    for number, line in enumerate(lines):
        if _MARKER_RE.match(line.rstrip("\n")):
            if number > start:
                yield _Part(lines[start:number], start)
            yield _Part([line], number, is_marker=True)
            start = number + 1
    if start < len(lines):
        yield _Part(lines[start:], start)


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096  # keep long strings on one line instead of folding them at 80 columns
    return yaml


def _compose(text: str) -> Node | None:
    """Compose the node tree of one document, with positions. The C parser makes this cheap to repeat."""
    return YAML(typ="safe").compose(text)


def _format_document(text: str, roots: Models, source: str, first_line: int, notes: list[str]) -> str:
    try:
        _check_readable(text)
        anchors = _anchors(text)
        try:
            formatted = _layout(_reorder_keys(text, roots), roots, reorder=True)
        except YAMLError:
            if not anchors:
                raise
            formatted = None  # the new order put an alias before its anchor
        if formatted == text:
            return text
        before = _meaning(text)
        if anchors and (formatted is None or not _same_meaning(_meaning(formatted), before)):
            name, line = anchors[0]
            notes.append(
                f"{source}:{first_line + line}: cannot reorder keys around the anchor `&{name}`; formatted indentation only"
            )
            formatted = _layout(text, roots, reorder=False)
    except MarkedYAMLError as error:
        raise _syntax_error(error, source, first_line) from None
    except YAMLError as error:
        raise SpecError(f"{source}: invalid YAML: {error}", hint="Fix the YAML; the file was left unchanged.") from None
    except RecursionError:
        raise SpecError(f"{source}: the YAML nests too deeply (or an alias refers to itself)", hint="The file was left unchanged.") from None
    if formatted != text and not _same_meaning(_meaning(formatted), before):
        raise SpecError(
            f"{source}:{first_line + 1}: formatting would change what this document means",
            hint="The file was left unchanged; format it by hand.",
        )
    return formatted


def _keep_anchors(data: Any, seen: set[int]) -> None:
    """Mark every anchor to be written, since ruamel.yaml drops the anchor of an unaliased mapping or list."""
    if id(data) in seen or not isinstance(data, (CommentedMap, CommentedSeq)):
        return
    seen.add(id(data))
    anchor = data.yaml_anchor()
    if anchor is not None:
        data.yaml_set_anchor(anchor.value, always_dump=True)
    for item in data.values() if isinstance(data, CommentedMap) else data:
        _keep_anchors(item, seen)


def _check_readable(text: str) -> None:
    """Raise YAMLError on a syntax error or a duplicate key, before anything moves.

    The C-based loader of `personas validate` finds both quickly. Only when
    it finds a problem is the slower ruamel.yaml loader run, for its message.
    """
    from reconciler.spec.loader import parse_yaml_text

    if parse_yaml_text(text, "").diagnostics:
        YAML(typ="safe").load(text)


def _layout(text: str, roots: Models, *, reorder: bool) -> str:
    """Load and dump with the round-trip parser: indentation, and flow mappings in key order when `reorder`."""
    data = _round_trip().load(text)
    _keep_anchors(data, set())
    if reorder:
        _order_flow_mappings(data, roots)
    stream = io.StringIO()
    _round_trip().dump(data, stream)
    return _indent_comments(stream.getvalue())


def _meaning(text: str) -> tuple[list[Any], list[tuple[str, int]]]:
    """Return what a document means: its data as `personas validate` reads it, and its anchors."""
    from reconciler.spec.loader import parse_yaml_text

    return [document.data for document in parse_yaml_text(text, "").documents], _anchors(text)


def _anchors(text: str) -> list[tuple[str, int]]:
    """List the anchors of a text by name and 1-based line, in order, so that a dropped one, even unused, counts as a change."""
    if "&" not in text:
        return []  # the scanner is pure Python: skip it for the many files without anchors
    from ruamel.yaml.tokens import AnchorToken

    try:
        tokens = YAML(typ="safe").scan(text)
        return [(str(token.value), token.start_mark.line + 1) for token in tokens if isinstance(token, AnchorToken)]
    except YAMLError:
        return []  # a broken text already differs from the original in its data


def _same_meaning(first: tuple[list[Any], list[tuple[str, int]]], second: tuple[list[Any], list[tuple[str, int]]]) -> bool:
    """True when two readings hold the same data and the same anchor names; anchors may move."""
    return first[0] == second[0] and sorted(name for name, _ in first[1]) == sorted(name for name, _ in second[1])


def _indent_comments(text: str) -> str:
    """Indent each full-line comment like the line it precedes.

    ruamel.yaml keeps a comment's original column when the keys around it
    move to a new indentation, so this puts it back beside its key. Lines inside
    multi-line scalars (a `|` block holding `# ...`) are content and stay.
    """
    lines = text.splitlines(keepends=True)
    protected = _scalar_lines(text)
    following = ""  # indentation of the next content line, scanning upwards. A last comment goes to column 0.
    for number in range(len(lines) - 1, -1, -1):
        line = lines[number]
        if number in protected or not line.strip():
            continue
        stripped = line.lstrip(" ")
        if stripped.startswith("#"):
            lines[number] = following + stripped
            continue
        following = line[: len(line) - len(stripped)]
    return "".join(lines)


def _scalar_lines(text: str) -> set[int]:
    """Return the line numbers (0-based) inside scalars that span several lines."""
    protected: set[int] = set()
    seen: set[int] = set()
    pending = [_compose(text)]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue  # an alias: already visited at its anchor
        seen.add(id(node))
        if isinstance(node, MappingNode):
            pending.extend(value for pair in node.value for value in pair)
        elif isinstance(node, SequenceNode):
            pending.extend(node.value)
        elif isinstance(node, ScalarNode) and node.end_mark.line > node.start_mark.line:
            protected.update(range(node.start_mark.line, node.end_mark.line + 1))
    return protected


def _syntax_error(error: MarkedYAMLError, source: str, first_line: int) -> SpecError:
    mark = error.problem_mark or error.context_mark
    where = f"{source}:{mark.line + first_line + 1}" if mark is not None else source
    problem = "; ".join(str(part) for part in (error.context, error.problem) if part)
    return SpecError(
        f"{where}: invalid YAML: {problem or 'cannot parse'}",
        hint="Fix the YAML; the file was left unchanged.",
    )


# --------------------------------------------------------------------------- pass 1: key order

def _reorder_keys(text: str, roots: Models) -> str:
    # Each pass puts one mapping in order and leaves the others as they are,
    # so the number of mappings bounds the passes. The limit only guards
    # against a bug turning into an endless loop.
    for _ in range(text.count("\n") + 2):
        lines = text.splitlines(keepends=True)
        node = _compose(text)
        changed = _visit(node, roots, lines, is_root=True) if node is not None else None
        if changed is None:
            return text
        text = "".join(changed)
    return text


def _visit(node: Node, candidates: Models, lines: list[str], *, is_root: bool = False) -> list[str] | None:
    """Reorder the first out-of-order mapping below `node`, returning the new lines, or None when all are in order."""
    if isinstance(node, SequenceNode):
        for item in node.value:
            changed = _visit(item, candidates, lines)
            if changed is not None:
                return changed
        return None
    if not isinstance(node, MappingNode) or not candidates:
        return None
    if not all(isinstance(key, ScalarNode) for key, _ in node.value):
        return None
    keys = [key.value for key, _ in node.value]
    scalars = {key.value: value.value if isinstance(value, ScalarNode) else None for key, value in node.value}
    model = choose_model(candidates, scalars)
    if model is None:
        return None
    order = canonical_keys(keys, model)
    if order != keys and not node.flow_style:
        moved = _move_chunks(node, order, lines, is_root)
        if moved is not None:
            return moved
    for key, value in node.value:
        changed = _visit(value, child_models(model, key.value), lines)
        if changed is not None:
            return changed
    return None


def _move_chunks(node: MappingNode, order: list[str], lines: list[str], is_root: bool) -> list[str] | None:
    """Rearrange the lines of a block mapping into `order`, or return None when its layout is unusual."""
    keys = [key for key, _ in node.value]
    column = keys[0].start_mark.column
    starts = [key.start_mark.line for key in keys]
    ends = [_last_line(key, value) for key, value in node.value]
    if any(key.start_mark.column != column for key in keys) or any(b <= a for a, b in zip(starts, starts[1:])):
        return None
    if any(end >= start for end, start in zip(ends, starts[1:])):
        return None  # a value seems to reach into the next key: leave this mapping as written
    if any(value.start_mark.line < key.start_mark.line for key, value in node.value):
        return None  # an alias: its marks point at the anchor, elsewhere in the file
    prefix = lines[starts[0]][:column]
    first = starts[0] if is_root or prefix.strip() else _comments_above(lines, starts[0])
    chunk_starts = [first] + [end + 1 for end in ends[:-1]]
    for chunk_start, start in zip(chunk_starts, starts):
        if not all(_COMMENT_OR_BLANK_RE.match(line) for line in lines[chunk_start:start]):
            return None
    chunks = {
        key.value: (lines[chunk_start : end + 1], start - chunk_start)
        for key, chunk_start, start, end in zip(keys, chunk_starts, starts, ends)
    }
    arranged: list[str] = []
    for position, name in enumerate(order):
        chunk, key_offset = chunks[name]
        chunk = list(chunk)
        lead = prefix if position == 0 else " " * column
        chunk[key_offset] = lead + chunk[key_offset][column:]
        arranged.extend(chunk)
    return lines[:first] + arranged + lines[ends[-1] + 1 :]


def _last_line(key: Node, value: Node) -> int:
    """Return the last line (0-based) of the value's content, its end-of-line comment included."""
    node = value
    while isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, MappingNode) else last
    mark = node.end_mark
    line = mark.line if mark.column > 0 else mark.line - 1
    return max(line, key.start_mark.line)


def _comments_above(lines: list[str], line: int) -> int:
    """Return the first of the comment or blank lines directly above `line`."""
    while line > 0 and _COMMENT_OR_BLANK_RE.match(lines[line - 1]):
        line -= 1
    return line


# --------------------------------------------------------------------------- pass 2: flow mappings

def _order_flow_mappings(data: Any, candidates: Models) -> None:
    """Put flow-style mappings in canonical key order, on the loaded objects."""
    if isinstance(data, CommentedSeq):
        for item in data:
            _order_flow_mappings(item, candidates)
        return
    if not isinstance(data, CommentedMap) or not candidates:
        return
    scalars = {key: value if not isinstance(value, (CommentedMap, CommentedSeq)) else None for key, value in data.items()}
    model = choose_model(candidates, scalars)
    if model is None:
        return
    if data.fa.flow_style() and all(isinstance(key, str) for key in data):
        for key in canonical_keys(list(data), model):
            data.move_to_end(key)
    for key, value in data.items():
        _order_flow_mappings(value, child_models(model, key) if isinstance(key, str) else ())


# --------------------------------------------------------------------------- files

@dataclass(frozen=True)
class FormattedFile:
    """The outcome of formatting one file; nothing is written until `write_file` is called."""

    path: Path
    original: str
    formatted: str | None  # None when the file could not be read or parsed
    error: SpecError | None = None
    notes: tuple[str, ...] = ()  # what formatting left undone, such as keys kept in order around an anchor

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original


def format_file(path: Path, *, display_name: str | None = None, cache: FormattedCache | None = None) -> FormattedFile:
    """Format one file in memory. `display_name` is the name used in error messages.

    With a `cache`, a file whose bytes are known to be canonical is not
    formatted again, and a file found canonical is added to it.
    """
    name = display_name or path.as_posix()
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return FormattedFile(path, "", None, notes=(f"{name}: not a regular file; skipped",))
        raw = path.read_bytes()
        key = file_key(raw, path.name)
        if cache is not None and key in cache:
            return FormattedFile(path, raw.decode("utf-8"), raw.decode("utf-8"))
        original = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return FormattedFile(path, "", None, SpecError(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})"))
    except OSError as error:
        return FormattedFile(path, "", None, SpecError(f"{name}: read failed: {error.strerror}"))
    try:
        text = original.removeprefix("\ufeff")  # a byte order mark is not written back
        notes: list[str] = []
        formatted = format_text(text, source=name, roots=roots_for(path.name), notes=notes)
        if cache is not None and formatted == original and not notes:
            cache.add(key)
        return FormattedFile(path, original, formatted, notes=tuple(notes))
    except SpecError as error:
        return FormattedFile(path, original, None, error)


def write_file(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (temporary file, then rename), keeping its mode."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def unified_diff(result: FormattedFile, display_name: str) -> str:
    """Return a unified diff from the file as it is to the file as fmt would write it."""
    lines = difflib.unified_diff(
        result.original.splitlines(keepends=True),
        (result.formatted or "").splitlines(keepends=True),
        fromfile=display_name if display_name.startswith("/") else f"a/{display_name}",
        tofile=display_name if display_name.startswith("/") else f"b/{display_name}",
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
