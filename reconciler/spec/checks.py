"""Semantic checks: what a single document's model cannot see on its own.

They run over the whole project once every document has been validated, and each
finding is a Diagnostic placed at the YAML path it concerns:

* addresses are unique (naming both files), and `previous_names` do not
  collide with another resource's current name;
* every trait, audience, destination and identifier type a spec names exists
  (with "did you mean"), `consent` names boolean traits, and trait conditions
  use operators and operands that fit the trait's value type;
* entities agree: an account audience tests account traits and account
  audiences, while `any_user`, `all_users` and `no_user` appear only in
  account audiences and contain user-level conditions;
* audiences do not reference each other in a cycle;
* secrets are never literal: URL passwords are `${...}` references,
  credential headers carry one, `signing_secret` is exactly one;
* `${...}` references are well formed, and referenced variables that are not
  set and have no default are warned about (`apply` and `run` would fail);
* identity `blocked_patterns` compile as regular expressions, and identifier
  types are listed once (`settings_problems`, run even when the model fails);
* an audience lists each destination once.

Documents that fail validation are still checked for the references that
can be read from their plain data (`RawReferenceChecker`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from reconciler.spec.diagnostics import Diagnostic, PathPart
from reconciler.spec.interpolation import Reference, find_references, is_single_reference
from reconciler.spec.loader import YamlDocument
from reconciler.spec.models import (
    OPERATORS_BY_VALUE_TYPE,
    RELATIVE_TIME_OPERATORS,
    Audience,
    Destination,
    Trait,
    condition_kind,
    parse_timestamp,
    trait_value_type,
)
from reconciler.spec.settings import ProjectSettings
from reconciler.spec.validation import describe, did_you_mean

YamlPath = tuple[PathPart, ...]
_USER_WRAPPERS = ("any_user", "all_users", "no_user")
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie"}
_CREDENTIAL_WORDS = ("token", "secret", "key")
_URL_USERINFO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@")


@dataclass(frozen=True)
class Located:
    """A validated resource and the document it was written in."""

    model: Trait | Audience | Destination
    document: YamlDocument

    @property
    def address(self) -> str:
        return self.model.address

    @property
    def label(self) -> str:
        return f"{self.model.address} ({self.document.file})"


class ProjectChecker:
    """Runs every semantic check over a project's resources and settings."""

    def __init__(
        self,
        resources: Sequence[Located],
        settings: ProjectSettings | None,
        settings_document: YamlDocument | None,
        env: Mapping[str, str],
        invalid: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
        failed: Sequence[YamlDocument] = (),
    ) -> None:
        self.resources = list(resources)
        self.invalid = invalid  # (kind, name) of documents that failed to validate: already reported
        self.failed = list(failed)  # resource documents that failed to validate: checked on their raw data
        self.settings = settings
        self.settings_document = settings_document
        self.env = env
        self.diagnostics: list[Diagnostic] = []
        self.by_kind: dict[str, dict[str, Located]] = {"trait": {}, "audience": {}, "destination": {}}

    def run(self) -> list[Diagnostic]:
        self._check_addresses()
        self._check_previous_names()
        for located in self.resources:
            if isinstance(located.model, Audience):
                AudienceChecker(self, located).run()
            elif isinstance(located.model, Trait):
                self._check_trait(located)
            else:
                self._check_destination(located)
        for document in self.failed:
            RawReferenceChecker(self, document).run()
        self._check_cycles()
        self._check_settings()
        for document in self._documents():
            self._check_references(document)
        return self.diagnostics

    # ----------------------------------------------------------------- helpers

    def report(self, located: Located | YamlDocument, path: Sequence[PathPart], code: str, message: str,
               hint: str | None = None, *, key: bool = False, severity: str = "error") -> None:
        document = located.document if isinstance(located, Located) else located
        self.diagnostics.append(document.diagnostic(path, code, message, hint, key=key, severity=severity))

    def find(self, kind: str, name: str) -> Located | None:
        return self.by_kind[kind].get(name)

    def require(self, located: Located | YamlDocument, path: Sequence[PathPart], kind: str, name: str) -> Located | None:
        """The resource `kind.name`, or None after reporting it unknown."""
        found = self.find(kind, name)
        if found is None and (kind, name) not in self.invalid:
            hint = did_you_mean(name, sorted(self.by_kind[kind])) or f"Define {_a(kind)} {kind} named `{name}`, or fix the name."
            self.report(located, path, f"unknown-{kind}", f"unknown {kind} `{name}`", hint)
        return found

    def identifier_types(self) -> list[str] | None:
        if self.settings is not None:
            return [rule.type for rule in self.settings.identity.identifiers]
        if self.settings_document is None:
            return None  # personas.yaml cannot be read, and its own diagnostics explain why
        return raw_identifier_types(self.settings_document.data)

    def require_identifier(self, located: Located | YamlDocument, path: Sequence[PathPart], name: str) -> None:
        types = self.identifier_types()
        if types is None or name in types:
            return
        hint = did_you_mean(name, types) or f"identifier types of personas.yaml: {', '.join(types)}"
        self.report(located, path, "unknown-identifier", f"unknown identifier type `{name}`", hint)

    def _documents(self) -> Iterator[YamlDocument]:
        if self.settings_document is not None:
            yield self.settings_document
        for located in self.resources:
            yield located.document
        yield from self.failed

    # ----------------------------------------------------------------- addresses

    def _check_addresses(self) -> None:
        for located in self.resources:
            kind = located.model.kind.lower()
            first = self.by_kind[kind].get(located.model.name)
            if first is None:
                self.by_kind[kind][located.model.name] = located
                continue
            self.report(
                located, ["metadata", "name"], "duplicate-resource",
                f"{located.address} is defined twice: in {_place(first)} and in {_place(located)}",
                "Names are unique per kind: rename or remove one of them.",
            )

    def _check_previous_names(self) -> None:
        claimed: dict[tuple[str, str], Located] = {}
        for located in self.resources:
            kind = located.model.kind.lower()
            for index, previous in enumerate(located.model.metadata.previous_names):
                path = ["metadata", "previous_names", index]
                current = self.find(kind, previous)
                if current is located:
                    self.report(located, path, "previous-name-conflict", f"`{previous}` is this {kind}'s current name", "Remove it from previous_names.")
                elif current is not None:
                    self.report(
                        located, path, "previous-name-conflict",
                        f"previous name `{previous}` is the current name of {current.label}",
                        "A renamed resource frees its old name: remove it from previous_names, or rename the other resource.",
                    )
                elif (kind, previous) in claimed:
                    self.report(
                        located, path, "previous-name-conflict",
                        f"previous name `{previous}` is also claimed by {claimed[(kind, previous)].label}",
                        "Only one resource can carry over the history of a former name.",
                    )
                else:
                    claimed[(kind, previous)] = located

    # ----------------------------------------------------------------- traits and destinations

    def _check_trait(self, located: Located) -> None:
        spec = located.model.spec
        if spec.type == "sql":
            self.require_identifier(located, ["spec", "identifier"], spec.identifier)

    def _check_destination(self, located: Located) -> None:
        spec = located.model.spec
        for index, name in enumerate(spec.consent):
            path = ["spec", "consent", index]
            trait = self.require(located, path, "trait", name)
            if trait is not None and trait_value_type(trait.model.spec) != "boolean":
                value_type = trait_value_type(trait.model.spec)
                self.report(
                    located, path, "consent-not-boolean",
                    f"consent trait `{name}` has {value_type} values, but consent needs a boolean trait",
                    "Name a trait whose value is true or false, such as an identify trait with value_type: boolean.",
                )
        if spec.type in ("sql_table", "redis"):
            self._check_url_password(located, ["spec", "url"], spec.url)
        if spec.type == "webhook":
            self._check_webhook_secrets(located)

    def _check_webhook_secrets(self, located: Located) -> None:
        spec = located.model.spec
        for name, value in spec.headers.items():
            if _is_credential_header(name) and not _has_reference(value):
                example = "Bearer ${API_TOKEN}" if "authorization" in name.lower() else "${" + _variable_name(name) + "}"
                self.report(
                    located, ["spec", "headers", name], "literal-secret",
                    f"header `{name}` carries a credential written literally",
                    f"Write it as a reference, such as `{name}: \"{example}\"`, and set the variable in the environment.",
                )
        secret = spec.signing_secret
        if secret is not None and not _malformed(secret) and not is_single_reference(secret):
            self.report(
                located, ["spec", "signing_secret"], "literal-secret",
                "signing_secret must be exactly one ${...} reference",
                "Write it as `signing_secret: ${CRM_SIGNING_SECRET}` and set the variable in the environment.",
            )

    def _check_url_password(self, where: Located | YamlDocument, path: Sequence[PathPart], url: str) -> None:
        if has_literal_password(url):
            self.report(
                where, path, "literal-secret",
                "the password in this URL is written literally",
                "Write the password as a reference, such as user:${DB_PASSWORD}@host, and set the variable in the environment.",
            )

    # ----------------------------------------------------------------- settings

    def _check_settings(self) -> None:
        settings, document = self.settings, self.settings_document
        if settings is None or document is None:
            return
        given = document.data if isinstance(document.data, dict) else {}
        for field in ("warehouse", "state"):
            if field in given:
                self._check_url_password(document, [field], getattr(settings, field))
        if settings.sources is not None and settings.sources.url is not None:
            self._check_url_password(document, ["sources", "url"], settings.sources.url)

    # ----------------------------------------------------------------- ${...} references

    def _check_references(self, document: YamlDocument) -> None:
        for path, text in _strings(document.data, ()):
            try:
                references = find_references(text)
            except ValueError as error:
                self.report(document, path, "invalid-reference", str(error), "Write `$${` for a literal `${`.")
                continue
            for reference in references:
                if reference.default is None and reference.name not in self.env:
                    self.report(
                        document, path, "unset-variable",
                        f"environment variable {reference.name} is not set",
                        self._unset_hint(document, path, text, reference),
                        severity="warning",
                    )

    def _unset_hint(self, document: YamlDocument, path: YamlPath, text: str, reference: Reference) -> str:
        """Say to set the variable, and offer a default only where the value is not a secret."""
        need = f"`personas apply` and `personas run` need it: set {reference.name}"
        if self._is_secret_reference(document, path, text, reference):
            return f"{need} in the environment. It holds a secret, and secrets are never written in a spec."
        return f"{need}, or write ${{{reference.name}:-default}}."

    def _is_secret_reference(self, document: YamlDocument, path: YamlPath, text: str, reference: Reference) -> bool:
        """Return whether `reference` is where the literal-secret rule requires a reference.

        Those places are a webhook's signing_secret and credential headers, and
        the password of a URL (destination, warehouse, state and sources URLs).
        """
        data = document.data if isinstance(document.data, dict) else {}
        if document is self.settings_document:
            return path in (("warehouse",), ("state",), ("sources", "url")) and _in_url_password(text, reference)
        if data.get("kind") != "Destination":
            return False
        if path == ("spec", "signing_secret"):
            return True
        if len(path) == 3 and path[:2] == ("spec", "headers"):
            return _is_credential_header(str(path[2]))
        return path == ("spec", "url") and _in_url_password(text, reference)

    # ----------------------------------------------------------------- cycles

    def _check_cycles(self) -> None:
        edges: dict[str, list[tuple[str, YamlPath]]] = {}
        for located in self.resources:
            if isinstance(located.model, Audience):
                edges[located.model.name] = [
                    (condition.audience, path)
                    for condition, path, _ in iter_audience_conditions(located.model)
                    if condition_kind(condition) == "audience"
                ]
        reported: set[tuple[str, ...]] = set()
        for cycle in _find_cycles(edges):
            key = tuple(sorted(cycle))
            if key in reported:
                continue
            reported.add(key)
            self._report_cycle(cycle, edges)

    def _report_cycle(self, cycle: list[str], edges: dict[str, list[tuple[str, YamlPath]]]) -> None:
        start = cycle.index(min(cycle))
        cycle = cycle[start:] + cycle[:start]
        labels = [self.by_kind["audience"][name].label for name in cycle]
        message = "audiences reference each other in a cycle: " + " -> ".join(labels) + f" -> audience.{cycle[0]}"
        first = self.by_kind["audience"][cycle[0]]
        following = cycle[1] if len(cycle) > 1 else cycle[0]
        path = next(path for target, path in edges[cycle[0]] if target == following)
        self.report(first, [*path, "audience"], "reference-cycle", message, "Break the cycle: an audience cannot depend on itself.")


class AudienceChecker:
    """The checks of one audience: references, entities, operators and destinations."""

    def __init__(self, project: ProjectChecker, located: Located) -> None:
        self.project = project
        self.located = located
        self.audience: Audience = located.model  # type: ignore[assignment]

    def run(self) -> None:
        for condition, path, level in iter_audience_conditions(self.audience):
            kind = condition_kind(condition)
            if kind == "trait":
                self._check_trait_condition(condition, path, level)
            elif kind == "audience":
                self._check_audience_condition(condition, path, level)
            elif kind in _USER_WRAPPERS and level != "account":
                where = "in a user audience" if self.audience.spec.entity == "user" else "inside another user-level condition"
                self.project.report(
                    self.located, [*path, kind], "entity-mismatch",
                    f"`{kind}` is allowed only at account level of an account audience, not {where}",
                    "Use `entity: account` for the audience, or test the user's own conditions directly.",
                    key=True,
                )
        for index, destination in enumerate(self.audience.spec.destinations):
            self._check_destination(destination, ["spec", "destinations", index])
        names = [destination.destination for destination in self.audience.spec.destinations]
        check_duplicate_destinations(self.project, self.located.document, names)

    def _check_trait_condition(self, condition: Any, path: YamlPath, level: str) -> None:
        trait = self.project.require(self.located, [*path, "trait"], "trait", condition.trait)
        if trait is None:
            return
        if trait.model.spec.entity != level:
            self._entity_problem([*path, "trait"], trait, level)
            return
        value_type = trait_value_type(trait.model.spec)
        operator = condition.operator
        if operator not in OPERATORS_BY_VALUE_TYPE[value_type]:
            fitting = ", ".join(sorted(OPERATORS_BY_VALUE_TYPE[value_type]))
            self.project.report(
                self.located, [*path, operator], "operator-mismatch",
                f"operator `{operator}` does not apply to trait `{condition.trait}`, whose values are {_plural_type(value_type)}",
                f"operators for {_plural_type(value_type)}: {fitting}", key=True,
            )
            return
        for operand_path, operand in _operands(condition, path):
            problem = operand_problem(value_type, operator, operand)
            if problem:
                self.project.report(
                    self.located, operand_path, "operand-mismatch",
                    f"`{operator}` compares trait `{condition.trait}`, whose values are {_plural_type(value_type)}, with {describe(_yaml_value(operand))}",
                    problem,
                )

    def _check_audience_condition(self, condition: Any, path: YamlPath, level: str) -> None:
        other = self.project.require(self.located, [*path, "audience"], "audience", condition.audience)
        if other is not None and other.model.spec.entity != level:
            self._entity_problem([*path, "audience"], other, level)

    def _entity_problem(self, path: Sequence[PathPart], other: Located, level: str) -> None:
        entity = other.model.spec.entity
        where = "wrap it in any_user, all_users or no_user" if level == "account" else "test it in an account audience"
        self.project.report(
            self.located, path, "entity-mismatch",
            f"{other.address} is {_a(entity)} {entity}-level {other.model.kind.lower()}, but this condition is at {level} level",
            f"Use {_a(level)} {level}-level {other.model.kind.lower()}, or {where}.",
        )

    def _check_destination(self, destination: Any, path: list[PathPart]) -> None:
        self.project.require(self.located, [*path, "destination"], "destination", destination.destination)
        self.project.require_identifier(self.located, [*path, "identifier"], destination.identifier)
        entity = self.audience.spec.entity
        for index, name in enumerate(destination.traits):
            trait = self.project.require(self.located, [*path, "traits", index], "trait", name)
            if trait is not None and trait.model.spec.entity != entity:
                self.project.report(
                    self.located, [*path, "traits", index], "entity-mismatch",
                    f"{trait.address} is {_a(trait.model.spec.entity)} {trait.model.spec.entity}-level trait, "
                    f"but this audience's members are {entity}s",
                    f"Send {entity}-level traits only.",
                )


def check_duplicate_destinations(project: ProjectChecker, document: YamlDocument, names: Sequence[Any]) -> None:
    """Report a destination listed twice in one audience: its entries are a set keyed by destination name."""
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name not in first:
            first[name] = index
            continue
        project.report(
            document, ["spec", "destinations", index, "destination"], "duplicate-destination",
            f"destination `{name}` is listed twice in this audience: "
            f"at destinations[{first[name]}] and destinations[{index}]",
            "An audience sends to each destination once: keep one entry, or define a second destination.",
        )


class RawReferenceChecker:
    """The reference checks of a document that failed to validate, run on its plain data.

    Its own diagnostics report what is wrong with it, and the names it refers to
    can still be checked wherever they are readable: `audience:` and `trait:`
    in condition trees, `destination:`, `identifier:` and `traits:` of an
    audience's destinations, `consent:` of a destination and `identifier:` of
    a sql trait.
    """

    def __init__(self, project: ProjectChecker, document: YamlDocument) -> None:
        self.project = project
        self.document = document
        data = document.data if isinstance(document.data, dict) else {}
        self.kind = data.get("kind")
        self.spec = data.get("spec") if isinstance(data.get("spec"), dict) else {}

    def run(self) -> None:
        if self.kind == "Audience":
            for key in ("include", "exclude"):
                self._conditions(self.spec.get(key), ("spec", key))
            self._destinations(self.spec.get("destinations"))
        elif self.kind == "Destination":
            self._names(self.spec.get("consent"), ("spec", "consent"), "trait")
        elif self.kind == "Trait" and self.spec.get("type") == "sql" and isinstance(self.spec.get("identifier"), str):
            self.project.require_identifier(self.document, ["spec", "identifier"], self.spec["identifier"])

    def _conditions(self, condition: Any, path: YamlPath) -> None:
        if isinstance(condition, list):
            for index, child in enumerate(condition):
                self._conditions(child, (*path, index))
            return
        if not isinstance(condition, dict):
            return
        for kind in ("audience", "trait"):
            if isinstance(condition.get(kind), str):
                self.project.require(self.document, [*path, kind], kind, condition[kind])
        for key in ("all", "any", "not", *_USER_WRAPPERS):
            if key in condition:
                self._conditions(condition[key], (*path, key))

    def _destinations(self, destinations: Any) -> None:
        if not isinstance(destinations, list):
            return
        names = []
        for index, item in enumerate(destinations):
            item = item if isinstance(item, dict) else {}
            path = ("spec", "destinations", index)
            names.append(item.get("destination"))
            if isinstance(item.get("destination"), str):
                self.project.require(self.document, [*path, "destination"], "destination", item["destination"])
            if isinstance(item.get("identifier"), str):
                self.project.require_identifier(self.document, [*path, "identifier"], item["identifier"])
            self._names(item.get("traits"), (*path, "traits"), "trait")
        check_duplicate_destinations(self.project, self.document, names)

    def _names(self, names: Any, path: YamlPath, kind: str) -> None:
        if isinstance(names, list):
            for index, name in enumerate(names):
                if isinstance(name, str):
                    self.project.require(self.document, [*path, index], kind, name)


# --------------------------------------------------------------------------- personas.yaml


def raw_identifier_types(data: Any) -> list[str] | None:
    """The identifier types personas.yaml lists, read from its plain data; None when they cannot be read."""
    if not isinstance(data, dict):
        return None
    identity = data.get("identity", {})
    if not isinstance(identity, dict):
        return None
    if "identifiers" not in identity:
        from reconciler.spec.settings import default_identifier_types

        return default_identifier_types()
    rules = identity["identifiers"]
    if not isinstance(rules, list):
        return None
    return [rule["type"] for rule in rules if isinstance(rule, dict) and isinstance(rule.get("type"), str)]


def settings_problems(document: YamlDocument) -> list[Diagnostic]:
    """Checks of personas.yaml that do not wait for the model: each reports on its own.

    Identifier types are listed once, and blocked patterns compile as
    regular expressions, whatever else the file gets wrong.
    """
    data = document.data if isinstance(document.data, dict) else {}
    identity = data.get("identity") if isinstance(data.get("identity"), dict) else {}
    problems = []
    rules = identity.get("identifiers") if isinstance(identity.get("identifiers"), list) else []
    first: dict[str, int] = {}
    for index, rule in enumerate(rules):
        name = rule.get("type") if isinstance(rule, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(document.diagnostic(
                ["identity", "identifiers", index, "type"], "duplicate-identifier",
                f"identifier type `{name}` is listed twice: at identifiers[{first[name]}] and identifiers[{index}]",
                "List each identifier type once; the order of the list is the priority.",
            ))
        first.setdefault(name, index)
    patterns = identity.get("blocked_patterns") if isinstance(identity.get("blocked_patterns"), list) else []
    for index, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append(document.diagnostic(
                ["identity", "blocked_patterns", index], "invalid-regex",
                f"invalid regular expression {pattern!r}: {error}",
                "Use Python regular expression syntax; quote the pattern in single quotes to keep backslashes.",
            ))
    return problems


# --------------------------------------------------------------------------- condition trees


def iter_audience_conditions(audience: Audience) -> Iterator[tuple[Any, YamlPath, str]]:
    """Every condition of an audience's include and exclude trees, with its YAML path and level.

    The level is the entity a condition tests: the audience's entity, or
    `user` inside `any_user`, `all_users` and `no_user`.
    """
    spec = audience.spec
    yield from iter_conditions(spec.include, ("spec", "include"), spec.entity)
    if spec.exclude is not None:
        yield from iter_conditions(spec.exclude, ("spec", "exclude"), spec.entity)


def iter_conditions(condition: Any, path: YamlPath, level: str) -> Iterator[tuple[Any, YamlPath, str]]:
    yield condition, path, level
    kind = condition_kind(condition)
    if kind in ("all", "any"):
        for index, child in enumerate(getattr(condition, kind)):
            yield from iter_conditions(child, (*path, kind, index), level)
    elif kind == "not":
        yield from iter_conditions(condition.not_, (*path, "not"), level)
    elif kind in _USER_WRAPPERS:
        yield from iter_conditions(getattr(condition, kind), (*path, kind), "user")


def _find_cycles(edges: dict[str, list[tuple[str, YamlPath]]]) -> Iterator[list[str]]:
    """Each cycle of the reference graph, found by depth-first search (iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(edges):
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter([target for target, _ in edges[root]]))]
        trail = [root]
        state[root] = 1
        while stack:
            node, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                state[node] = 2
                stack.pop()
                trail.pop()
            elif target in edges and state.get(target) == 1:
                yield trail[trail.index(target):]
            elif target in edges and not state.get(target):
                state[target] = 1
                trail.append(target)
                stack.append((target, iter([t for t, _ in edges[target]])))


# --------------------------------------------------------------------------- operands


def _operands(condition: Any, path: YamlPath) -> Iterator[tuple[list[PathPart], Any]]:
    operator = condition.operator
    operand = condition.operand
    if isinstance(operand, list):
        for index, item in enumerate(operand):
            yield [*path, operator, index], item
    else:
        yield [*path, operator], operand


def operand_problem(value_type: str, operator: str, operand: Any) -> str | None:
    """Why `operand` cannot be compared with a trait of `value_type`, as a hint; None when it fits."""
    if operator in ("exists", "missing") or operator in RELATIVE_TIME_OPERATORS:
        return None
    if value_type == "number" and (isinstance(operand, bool) or not isinstance(operand, (int, Decimal))):
        return "Write a number without quotes, such as 100 or 2.5."
    if value_type == "boolean" and not isinstance(operand, bool):
        return "Write true or false without quotes (YAML 1.2 reads yes, no, on and off as text)."
    if value_type == "string" and not isinstance(operand, str):
        return "Put the value in quotes to compare it as text."
    if value_type == "timestamp":
        if not isinstance(operand, str):
            return "Write an ISO 8601 timestamp, such as 2024-03-31T00:00:00Z or 2024-03-31."
        try:
            parse_timestamp(operand)
        except ValueError:
            return "Write an ISO 8601 timestamp, such as 2024-03-31T00:00:00Z or 2024-03-31."
    return None


def _plural_type(value_type: str) -> str:
    return {"boolean": "booleans", "number": "numbers", "string": "text", "timestamp": "timestamps", "list": "lists"}[value_type]


def _yaml_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# --------------------------------------------------------------------------- secrets and strings


def has_literal_password(url: str) -> bool:
    """True when a URL (or the default of a whole-URL reference) contains a password that is not a reference."""
    try:
        references = find_references(url)
    except ValueError:
        return False  # reported as an invalid reference
    if len(references) == 1 and references[0].start == 0 and references[0].end == len(url):
        default = references[0].default
        return default is not None and has_literal_password(default)
    match = _URL_USERINFO_RE.match(url)
    if not match or ":" not in match.group(1):
        return False
    password = match.group(1).split(":", 1)[1]
    return bool(password) and not _only_references(password, without_defaults=True)


def _is_credential_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _CREDENTIAL_HEADERS or any(word in lowered for word in _CREDENTIAL_WORDS)


def _in_url_password(url: str, reference: Reference) -> bool:
    """Return whether `reference` lies in the password of the URL's `user:password@` part."""
    match = _URL_USERINFO_RE.match(url)
    if not match or ":" not in match.group(1):
        return False
    password_start = url.index(":", match.start(1)) + 1
    return password_start <= reference.start and reference.end <= match.end(1)


def _variable_name(header: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", header).strip("_").upper() or "SECRET"


def _malformed(text: str) -> bool:
    try:
        find_references(text)
    except ValueError:
        return True  # reported as an invalid reference
    return False


def _has_reference(text: str) -> bool:
    try:
        return bool(find_references(text))
    except ValueError:
        return True  # reported as an invalid reference instead


def _only_references(text: str, *, without_defaults: bool = False) -> bool:
    """True when `text` is made of references only; with `without_defaults`, none may hold a default but ""."""
    try:
        references = find_references(text)
    except ValueError:
        return True
    if without_defaults and any(reference.default for reference in references):
        return False  # `${DB_PASSWORD:-hunter2}` writes the password into the spec
    rest = text
    for reference in reversed(references):
        rest = rest[: reference.start] + rest[reference.end :]
    return references != [] and rest == ""


def _strings(value: Any, path: YamlPath) -> Iterator[tuple[YamlPath, str]]:
    if isinstance(value, str):
        if "$" in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _a(word: str) -> str:
    return "an" if word[:1] in "aeio" else "a"  # "a user", "an account", "an audience"


def _place(located: Located) -> str:
    """Name the file and line of a resource's `metadata.name`, or of its document when that has no position."""
    line, _ = located.document.locate(["metadata", "name"])
    return f"{located.document.file}:{line or located.document.line}"
