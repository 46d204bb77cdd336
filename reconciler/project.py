"""A personas project: `personas.yaml` plus every resource file below it.

`load_project(folder)` reads and checks everything and returns a `Project`,
or raises `SpecError` whose `diagnostics` list every problem of every file:

1. `personas.yaml` (one document) validates against `ProjectSettings`.
2. Every `*.yaml` / `*.yml` file below the folder, except in dot-folders
   (`.git`, `.personas`, ...), is a resource file: each non-empty document
   is one Trait, Audience or Destination. Files are read in path order.
3. The semantic checks of `reconciler.spec.checks` run over the whole set.

Warnings (such as an unset environment variable) do not stop loading; they
are kept in `Project.warnings`. Relative paths and SQLite/DuckDB file URLs in
the specs resolve against the project folder, never the current directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import SpecError
from reconciler.gcpause import paused_gc
from reconciler.spec.diagnostics import Diagnostic, SourceLocation, errors, format_diagnostic, plural, sort_diagnostics
from reconciler.spec.models import Audience, Destination, Trait

PROJECT_FILE = "personas.yaml"
YAML_SUFFIXES = (".yaml", ".yml")
MAX_SHOWN = 20  # diagnostics quoted in a SpecError message; validate shows them all

_FILE_URL_RE = re.compile(r"^(?P<scheme>(?:sqlite|duckdb)(?:\+[A-Za-z0-9_]+)?):///(?P<rest>.*)$", re.DOTALL)

if TYPE_CHECKING:
    from reconciler.spec.settings import ProjectSettings

Resource = Trait | Audience | Destination


@dataclass
class ProjectSettingsFile:
    """The project folder and its valid `personas.yaml`, without the resource files.

    Commands that need only the state or warehouse URL (state, force-unlock)
    use this, so a broken resource file never locks an operator out.
    """

    root: Path
    settings: ProjectSettings

    def resolve_url(self, text: str, env: Mapping[str, str] | None = None) -> str:
        """Substitute `${...}` references, then anchor relative SQLite/DuckDB file paths at the project folder.

        `sqlite:///data/state.db` becomes `sqlite:////abs/project/data/state.db`;
        absolute paths, `:memory:` and other databases are left as they are.
        Raises SpecError when a variable without a default is unset.
        """
        from reconciler.spec.interpolation import interpolate

        url = interpolate(text, os.environ if env is None else env, where="a URL of the project")
        match = _FILE_URL_RE.match(url)
        if not match:
            return url
        rest = match.group("rest")
        if rest == "" or rest.startswith("/") or rest.startswith(":memory:"):
            return url
        path, query = (rest.split("?", 1) + [""])[:2]
        absolute = (self.root / path).as_posix()
        return f"{match.group('scheme')}:///{absolute}" + (f"?{query}" if query else "")

    def resolve_path(self, text: str | Path) -> Path:
        """Make a path absolute against the project folder; `~` is the home folder.

        `${...}` references are not substituted here: callers interpolate
        first, so an escaped `$${` is never read twice.
        """
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.root / path


@dataclass
class Project(ProjectSettingsFile):
    """A loaded, valid project. Resources are sorted by address."""

    resources: list[Resource]
    warnings: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, SourceLocation] = field(default_factory=dict, repr=False)

    @cached_property
    def traits(self) -> dict[str, Trait]:
        return {r.name: r for r in self.resources if isinstance(r, Trait)}

    @cached_property
    def audiences(self) -> dict[str, Audience]:
        return {r.name: r for r in self.resources if isinstance(r, Audience)}

    @cached_property
    def destinations(self) -> dict[str, Destination]:
        return {r.name: r for r in self.resources if isinstance(r, Destination)}

    def resource(self, address: str) -> Resource | None:
        """Return the resource at an address such as `audience.winback`, or None."""
        return next((r for r in self.resources if r.address == address), None)

    def source_of(self, address: str) -> SourceLocation | None:
        """Return where a resource is written: its file relative to the root (posix) and the line its document starts."""
        return self.sources.get(address)

    @cached_property
    def specs_hash(self) -> str:
        """sha256 of the normalised specs of every resource (by address) and of the identity rules.

        Two projects that plan the same have the same hash, whatever their
        formatting, key order or order of set-like lists.
        """
        try:
            from reconciler.plan.normalize import normalize_identity, normalize_resource
        except ImportError:  # the plan package is optional for loading; fall back to the plain dump
            def normalize_resource(model: Any) -> Any:
                return model.model_dump(mode="json", by_alias=True)

            normalize_identity = normalize_resource
        document = {
            "identity": normalize_identity(self.settings.identity),
            "resources": {r.address: normalize_resource(r) for r in self.resources},
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class LoadResult:
    """Everything one load found: the project when valid, and every diagnostic."""

    root: Path
    project: Project | None
    diagnostics: list[Diagnostic]
    files: int
    counts: dict[str, int]
    unchecked: int = 0  # documents that failed validation, so only their references were checked

    @property
    def valid(self) -> bool:
        return self.project is not None


def load_project(folder: Path | str, env: Mapping[str, str] | None = None, *, cache: bool = True) -> Project:
    """Load and check a project; raise SpecError listing every problem when it is invalid.

    `env` (default: os.environ) decides which `${...}` variables count as
    unset for the warnings. `cache=False` parses every file even when the
    parse cache in .personas/cache/ has it.
    """
    result = check_project(folder, env, cache=cache)
    if result.project is None:
        raise spec_error(result.diagnostics)
    return result.project


def load_settings(folder: Path | str) -> ProjectSettingsFile:
    """Load only `personas.yaml`; raise SpecError when it is missing or invalid.

    Resource files are not read, so commands that only need the state or
    warehouse URL keep working while a resource file is broken.
    """
    root = Path(folder).resolve()
    missing = _missing_project_file(root)
    if missing is not None:
        raise spec_error([missing])
    diagnostics: list[Diagnostic] = []
    settings, _ = _load_settings(root, diagnostics, None)
    if settings is None or errors(diagnostics):
        raise spec_error(diagnostics)
    return ProjectSettingsFile(root=root, settings=settings)


def spec_error(diagnostics: list[Diagnostic]) -> SpecError:
    """Build a SpecError whose message lists the problems, so any command shows where they are."""
    found = errors(diagnostics)
    shown = "\n".join(format_diagnostic(d) for d in found[:MAX_SHOWN])
    more = f"\n... and {len(found) - MAX_SHOWN} more" if len(found) > MAX_SHOWN else ""
    if len(found) == 1 and found[0].code == "missing-project-file":
        return SpecError(found[0].message, diagnostics=diagnostics, hint=found[0].hint)
    return SpecError(
        f"the project has {plural(len(found), 'error')}:\n{shown}{more}",
        diagnostics=diagnostics,
        hint="Fix them, then run `personas validate` to check.",
    )


def check_project(folder: Path | str, env: Mapping[str, str] | None = None, *, cache: bool = True) -> LoadResult:
    """Load a project and return every diagnostic, valid or not. `personas validate` reports this."""
    root = Path(folder).expanduser().resolve()
    env = os.environ if env is None else env
    missing = _missing_project_file(root)
    if missing is not None:
        return LoadResult(root, None, [missing], 0, {})
    # Parsing makes many small objects and no reference cycles: collecting during it only costs time.
    with paused_gc():
        return _check(root, env, cache)


def _check(root: Path, env: Mapping[str, str], use_cache: bool) -> LoadResult:
    from reconciler.spec.checks import Located, ProjectChecker
    from reconciler.spec.loader import read_yaml_file
    from reconciler.spec.parse_cache import ParseCache

    cache = ParseCache(root) if use_cache else None
    diagnostics: list[Diagnostic] = []
    settings, settings_document = _load_settings(root, diagnostics, cache)
    located: list[Located] = []
    invalid: set[tuple[str, str]] = set()
    failed: list[Any] = []
    seen = {PROJECT_FILE}
    for path, relative in iter_resource_files(root):
        seen.add(relative)
        loaded = read_yaml_file(path, relative, cache)
        diagnostics.extend(loaded.diagnostics)
        if not loaded.documents and not loaded.diagnostics:
            diagnostics.append(_empty_file(relative))
        located.extend(_validate_documents(loaded.documents, diagnostics, invalid, failed))
    if cache is not None:
        cache.keep_only(seen)
        cache.save()
    files = len(seen)
    located.sort(key=lambda item: (item.address, item.document.file, item.document.index))
    diagnostics.extend(ProjectChecker(located, settings, settings_document, env, invalid, failed).run())
    diagnostics = sort_diagnostics(diagnostics)
    counts = _counts(located)
    if errors(diagnostics) or settings is None:
        unchecked = len(failed) + (settings is None and settings_document is not None)
        return LoadResult(root, None, diagnostics, files, counts, unchecked)
    project = Project(
        root=root,
        settings=settings,
        resources=[item.model for item in located],
        warnings=diagnostics,
        sources={item.address: SourceLocation(item.document.file, item.document.line) for item in located},
    )
    return LoadResult(root, project, diagnostics, files, counts)


def iter_resource_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield every resource file below `root` as (path, posix path relative to root), in path order.

    Dot-folders (`.git`, `.personas`, `.github`, ...) and dot-files are skipped,
    and so is `personas.yaml` at the root.
    """
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if name.startswith(".") or not name.endswith(YAML_SUFFIXES):
                continue
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if relative != PROJECT_FILE:
                found.append((path, relative))
    return iter(sorted(found, key=lambda item: item[1]))


def _missing_project_file(root: Path) -> Diagnostic | None:
    if (root / PROJECT_FILE).is_file():
        return None
    if not root.is_dir():
        message = f"project folder {root} does not exist"
    elif (root / "personas.yml").is_file():
        return Diagnostic(
            "personas.yml", None, None, "", "missing-project-file", "error",
            f"{root} has personas.yml, but the project file must be named personas.yaml",
            "Rename personas.yml to personas.yaml.",
        )
    else:
        message = f"no personas.yaml in {root}"
    return Diagnostic(
        PROJECT_FILE, None, None, "", "missing-project-file", "error", message,
        "Run `personas init DIR` to create a project, or pass `--project DIR` to point at one.",
    )


def _load_settings(root: Path, diagnostics: list[Diagnostic], cache: Any) -> tuple[Any, Any]:
    from reconciler.spec.checks import settings_problems
    from reconciler.spec.loader import read_yaml_file
    from reconciler.spec.settings import ProjectSettings
    from reconciler.spec.validation import validate_model

    loaded = read_yaml_file(root / PROJECT_FILE, PROJECT_FILE, cache)
    diagnostics.extend(loaded.diagnostics)
    if loaded.diagnostics:
        return None, None
    if not loaded.documents:
        diagnostics.append(Diagnostic(
            PROJECT_FILE, 1, 1, "", "missing-key", "error", "personas.yaml is empty: it needs at least `version: 1` and `name`",
            "Run `personas init DIR` for a starting point.",
        ))
        return None, None
    document = loaded.documents[0]
    for extra in loaded.documents[1:]:
        diagnostics.append(extra.diagnostic([], "invalid-document", "personas.yaml must contain one document: resources go in their own files"))
    if not isinstance(document.data, dict):
        diagnostics.append(document.diagnostic([], "invalid-document", "personas.yaml must be a mapping with `version: 1` and `name`"))
        return None, None
    settings, problems = validate_model(document, ProjectSettings)
    diagnostics.extend(problems)
    diagnostics.extend(settings_problems(document))
    return settings, document


def _validate_documents(
    documents: list[Any], diagnostics: list[Diagnostic], invalid: set[tuple[str, str]], failed: list[Any]
) -> Iterator[Any]:
    """Validate each document; remember the kind and name of those that fail, and the documents.

    References to a resource whose document is invalid are not reported
    again as unknown, because its own diagnostics already explain what to fix. The
    failed documents go to `failed`, to have their readable references checked.
    """
    from reconciler.spec.checks import Located
    from reconciler.spec.validation import validate_resource

    for document in documents:
        model, problems = validate_resource(document)
        diagnostics.extend(problems)
        if model is not None:
            yield Located(model, document)  # type: ignore[arg-type]
        elif isinstance(document.data, dict) and isinstance(document.data.get("kind"), str):
            failed.append(document)
            metadata = document.data.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            if isinstance(name, str):
                invalid.add((document.data["kind"].lower(), name))


def _empty_file(relative: str) -> Diagnostic:
    return Diagnostic(
        relative, None, None, "", "empty-file", "warning", "the file holds no documents",
        "Add a resource to it, or delete it.",
    )


def _counts(located: list[Any]) -> dict[str, int]:
    counts = {"traits": 0, "audiences": 0, "destinations": 0}
    for item in located:
        counts[item.model.kind.lower() + "s"] += 1
    return counts
