"""Semantic checks over whole projects: references, entities, operators, cycles, secrets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reconciler.project import check_project
from reconciler.spec.checks import has_literal_password, operand_problem

from .conftest import SECRETS


def _resource(kind: str, name: str, spec: str, metadata: str = "") -> str:
    return f"apiVersion: personas/v1\nkind: {kind}\nmetadata:\n  name: {name}\n{metadata}spec:\n{spec}"


ACCOUNT_TRAIT = _resource("Trait", "seats", "  entity: account\n  type: identify\n  trait: seats\n  value_type: number\n")


def problems(write_project, files, env=SECRETS):
    result = check_project(write_project(files), env=env)
    return [(d.file, d.line, d.path, d.code, d.message) for d in result.diagnostics]


def test_shop_project_has_no_problems(write_project):
    assert problems(write_project, {}) == []


def test_account_audience_with_user_wrappers_is_valid(write_project):
    audience = _resource("Audience", "big_accounts", """\
  entity: account
  include:
    all:
      - trait: seats
        gte: 10
      - any_user:
          trait: email_opt_in
          equals: true
      - no_user:
          not:
            trait: country
            in: [NO, SE]
""")
    assert problems(write_project, {"traits/seats.yaml": ACCOUNT_TRAIT, "audiences/big.yaml": audience}) == []


def test_user_wrapper_inside_user_wrapper_is_an_entity_error(write_project):
    audience = _resource("Audience", "nested", "  entity: account\n  include:\n    any_user:\n      all_users:\n        event: X\n")

    assert problems(write_project, {"audiences/nested.yaml": audience}) == [(
        "audiences/nested.yaml", 9, "spec.include.any_user.all_users", "entity-mismatch",
        "`all_users` is allowed only at account level of an account audience, not inside another user-level condition",
    )]


def test_account_trait_inside_any_user_is_an_entity_error(write_project):
    audience = _resource("Audience", "acc", "  entity: account\n  include:\n    any_user:\n      trait: seats\n      gt: 1\n")

    assert problems(write_project, {"traits/seats.yaml": ACCOUNT_TRAIT, "audiences/acc.yaml": audience}) == [(
        "audiences/acc.yaml", 9, "spec.include.any_user.trait", "entity-mismatch",
        "trait.seats is an account-level trait, but this condition is at user level",
    )]


def test_destination_traits_must_match_the_audience_entity(write_project):
    audience = _resource("Audience", "users", "  include: {event: X}\n  destinations:\n    - {destination: crm, identifier: email, traits: [seats]}\n")

    found = problems(write_project, {"traits/seats.yaml": ACCOUNT_TRAIT, "audiences/users.yaml": audience})

    assert [(line, path, code) for _, line, path, code, _ in found] == [(8, "spec.destinations[0].traits[0]", "entity-mismatch")]


def test_cycle_of_three_audiences_is_reported_once_naming_every_file(write_project):
    files = {
        "audiences/a.yaml": _resource("Audience", "a", "  include: {audience: b}\n"),
        "audiences/b.yaml": _resource("Audience", "b", "  include: {audience: c}\n"),
        "audiences/nested/c.yaml": _resource("Audience", "c", "  include: {event: X}\n  exclude: {audience: a}\n"),
    }

    assert problems(write_project, files) == [(
        "audiences/a.yaml", 6, "spec.include.audience", "reference-cycle",
        "audiences reference each other in a cycle: audience.a (audiences/a.yaml) -> audience.b (audiences/b.yaml)"
        " -> audience.c (audiences/nested/c.yaml) -> audience.a",
    )]


def test_audiences_may_share_a_dependency_without_a_cycle(write_project):
    files = {
        "audiences/a.yaml": _resource("Audience", "a", "  include: {all: [{audience: b}, {audience: c}]}\n"),
        "audiences/b.yaml": _resource("Audience", "b", "  include: {audience: c}\n"),
        "audiences/c.yaml": _resource("Audience", "c", "  include: {event: X}\n"),
    }

    assert problems(write_project, files) == []


def test_previous_name_claimed_twice_or_own_name(write_project):
    files = {
        "traits/a.yaml": _resource("Trait", "a", "  type: event_counter\n  event: X\n", "  previous_names: [old, a]\n"),
        "traits/b.yaml": _resource("Trait", "b", "  type: event_counter\n  event: X\n", "  previous_names: [old]\n"),
    }

    assert [(f, line, code, message) for f, line, _, code, message in problems(write_project, files)] == [
        ("traits/a.yaml", 5, "previous-name-conflict", "`a` is this trait's current name"),
        ("traits/b.yaml", 5, "previous-name-conflict", "previous name `old` is also claimed by trait.a (traits/a.yaml)"),
    ]


def test_same_name_in_different_kinds_is_allowed(write_project):
    files = {"audiences/country.yaml": _resource("Audience", "country", "  include: {trait: country, equals: NO}\n")}

    assert problems(write_project, files) == []


@pytest.mark.parametrize(
    "value_type, operator, operand, fits",
    [
        ("number", "gt", 5, True),
        ("number", "gt", Decimal("2.5"), True),
        ("number", "gt", "5", False),
        ("number", "equals", True, False),
        ("boolean", "equals", False, True),
        ("boolean", "equals", "NO", False),
        ("string", "equals", "NO", True),
        ("string", "in", 5, False),
        ("timestamp", "gte", "2024-03-31T00:00:00Z", True),
        ("timestamp", "lt", "2024-03-31", True),
        ("timestamp", "lt", "last tuesday", False),
        ("timestamp", "within_last", "30d", True),
        ("list", "contains", "red", True),
        ("number", "exists", True, True),
    ],
)
def test_operand_fits_value_type(value_type, operator, operand, fits):
    assert (operand_problem(value_type, operator, operand) is None) is fits


@pytest.mark.parametrize(
    "url, literal",
    [
        ("postgresql://app:hunter2@db/x", True),
        ("redis://:hunter2@127.0.0.1:6379/0", True),
        ("postgresql://app:${PGPASSWORD}@db/x", False),
        ("postgresql://${PGUSER}:${PGPASSWORD}@db/x", False),
        ("postgresql://app:pre${PGPASSWORD}@db/x", True),
        ("postgresql://app@db/x", False),
        ("sqlite:///.personas/state.db", False),
        ("${STATE_URL}", False),
        ("${STATE_URL:-sqlite:///s.db}", False),
        ("${STATE_URL:-postgresql://app:hunter2@db/x}", True),
        ("https://user:pass@hooks.example.com/x?a=b@c", True),
    ],
)
def test_literal_passwords_in_urls(url, literal):
    assert has_literal_password(url) is literal


@pytest.mark.parametrize(
    "name, value, flagged",
    [
        ("Authorization", "Bearer ${CRM_TOKEN}", False),
        ("Authorization", "Bearer abc", True),
        ("proxy-authorization", "Basic abc", True),
        ("Cookie", "session=abc", True),
        ("X-Auth-Token", "abc", True),
        ("X-Client-Secret", "${CLIENT_SECRET}", False),
        ("x-api-key", "abc", True),
        ("Content-Type", "application/json", False),
        ("X-Team", "growth", False),
    ],
)
def test_credential_headers_need_a_reference(write_project, name, value, flagged):
    destination = _resource(
        "Destination", "crm",
        f"  type: webhook\n  url: https://hooks.example.com/in\n  headers:\n    {name}: {value!r}\n  consent: [email_opt_in]\n",
    )

    env = {**SECRETS, "CLIENT_SECRET": "x"}

    codes = [code for *_, code, _ in problems(write_project, {"destinations/crm.yaml": destination}, env=env)]

    assert codes == (["literal-secret"] if flagged else [])


@pytest.mark.parametrize("secret, flagged", [("${SIGN}", False), ("${SIGN:-dev}", False), ("${A}${B}", True), ("plain", True)])
def test_signing_secret_is_exactly_one_reference(write_project, secret, flagged):
    destination = _resource("Destination", "crm", f"  type: webhook\n  url: https://x.example\n  signing_secret: '{secret}'\n")

    codes = [code for *_, code, _ in problems(write_project, {"destinations/crm.yaml": destination}, env={"SIGN": "x", "A": "a", "B": "b"})]

    assert codes == (["literal-secret"] if flagged else [])


def test_defaults_and_escapes_are_not_unset_variables(write_project):
    destination = _resource(
        "Destination", "crm",
        "  type: webhook\n  url: ${CRM_URL:-https://x.example}/$${literal}\n  headers: {Authorization: 'Bearer ${TOKEN:-}'}\n",
    )

    assert problems(write_project, {"destinations/crm.yaml": destination}, env={}) == []


def test_unset_variable_in_personas_yaml_is_a_warning_with_its_place(write_project):
    found = problems(write_project, {"personas.yaml": "version: 1\nname: shop\nwarehouse: ${WAREHOUSE_URL}\n"})

    assert found == [("personas.yaml", 3, "warehouse", "unset-variable", "environment variable WAREHOUSE_URL is not set")]


def test_sql_trait_with_a_known_identifier_is_valid(write_project):
    trait = _resource("Trait", "score", "  type: sql\n  query: SELECT email, score FROM scores\n  identifier: email\n  value_type: number\n")

    assert problems(write_project, {"traits/score.yaml": trait}) == []


def test_identifier_types_come_from_personas_yaml(write_project):
    settings = "version: 1\nname: shop\nidentity:\n  identifiers:\n    - {type: user_id}\n    - {type: customer_id}\n"
    trait = _resource("Trait", "score", "  type: sql\n  query: SELECT 1, 2\n  identifier: customer_id\n  value_type: number\n")

    found = problems(write_project, {"personas.yaml": settings, "traits/score.yaml": trait})

    assert [(path, code) for _, _, path, code, _ in found] == [("spec.destinations[0].identifier", "unknown-identifier")]


@pytest.mark.parametrize("operand", ["1.0", "0.0", "1e0", "2.5"])
def test_float_operand_on_number_trait_is_valid(write_project, operand):
    audience = _resource("Audience", "frequent", f"  include:\n    trait: orders_90d\n    gte: {operand}\n")

    assert problems(write_project, {"audiences/frequent.yaml": audience}) == []


def test_boolean_operand_on_number_trait_is_invalid(write_project):
    audience = _resource("Audience", "frequent", "  include:\n    trait: orders_90d\n    gte: true\n")

    codes = [code for _, _, _, code, _ in problems(write_project, {"audiences/frequent.yaml": audience})]

    assert codes == ["operand-mismatch"]
