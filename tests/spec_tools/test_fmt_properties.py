"""Properties of `personas fmt` over generated specs: idempotent, meaning and comments kept, keys canonical."""

from __future__ import annotations

import io
import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from reconciler.spec.fmt import format_text
from reconciler.spec.key_order import RESOURCE_MODELS, canonical_keys, child_models, choose_model
from reconciler.spec.models import RESOURCE_KINDS
from reconciler.spec.schema import build_schemas

names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
durations = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 400), st.sampled_from("smhdw"))
events = st.sampled_from(["Order Completed", "Page Viewed", "NO", "on", "10:00"])
filters = st.builds(
    lambda prop, op, value: {"property": prop, op: value},
    names,
    st.sampled_from(["equals", "gt", "lte", "contains"]),
    st.one_of(st.integers(0, 9), st.sampled_from(["pro", "yes", "null"])),
)
windows = st.one_of(durations, st.builds(lambda far: {"from": f"{far + 10}d", "to": f"{far}d"}, st.integers(1, 90)))


def selection(extra: dict) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"event": events, **extra},
        optional={"where": st.lists(filters, max_size=2), "window": windows},
    )


traits = st.one_of(
    selection({"type": st.just("event_counter")}),
    selection({"type": st.just("aggregation"), "function": st.sampled_from(["sum", "max"]), "property": names}),
    selection({"type": st.sampled_from(["first", "last"]), "property": names}),
    st.fixed_dictionaries({"type": st.just("identify"), "trait": names, "value_type": st.just("string")}),
)
leaf_conditions = st.one_of(
    selection({}).map(lambda event: {**event, "count": {"gte": 1}} if len(event) % 2 else event),
    st.builds(lambda trait, value: {"trait": trait, "equals": value}, names, st.booleans()),
    st.builds(lambda audience: {"audience": audience}, names),
)
conditions = st.recursive(
    leaf_conditions,
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
    ),
    max_leaves=6,
)
audiences = st.fixed_dictionaries(
    {"include": conditions},
    optional={
        "exclude": conditions,
        "holdout": st.sampled_from(["10%", "12.5%"]),
        "destinations": st.lists(st.fixed_dictionaries({"destination": names, "identifier": st.just("email")}), max_size=2),
    },
)
destinations = st.one_of(
    st.fixed_dictionaries({"type": st.just("file"), "path": st.just("exports")}, optional={"format": st.just("jsonl")}),
    st.fixed_dictionaries(
        {"type": st.just("webhook"), "url": st.just("https://hooks.example.com/x")},
        optional={"mode": st.just("mirror"), "consent": st.lists(names, max_size=2), "max_rate": st.just("20/s")},
    ),
)


def resource(kind: str, spec: dict, name: str) -> dict:
    return {"apiVersion": "personas/v1", "kind": kind, "metadata": {"name": name, "labels": {"tier": "core"}}, "spec": spec}


resources = st.one_of(
    st.builds(resource, st.just("Trait"), traits, names),
    st.builds(resource, st.just("Audience"), audiences, names),
    st.builds(resource, st.just("Destination"), destinations, names),
)


def scrambled(value, rng: random.Random, comments: list[str]):
    """The value as ruamel objects with shuffled keys, random flow style and comments above some keys."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        mapping = CommentedMap((key, scrambled(value[key], rng, comments)) for key in keys)
        # ruamel.yaml writes `url: https://...` in a flow mapping unquoted, which it cannot read back.
        flow = rng.random() < 0.2 and all(not isinstance(v, (dict, list)) and ":" not in str(v) for v in value.values())
        mapping.fa.set_flow_style() if flow else mapping.fa.set_block_style()
        if not flow:
            for key in keys:
                if rng.random() < 0.3:
                    text = f"note {len(comments)}"
                    comments.append(text)
                    mapping.yaml_set_comment_before_after_key(key, before=text)
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(scrambled(item, rng, comments) for item in value)
        sequence.fa.set_block_style()
        return sequence
    return value


def dump(data, rng: random.Random) -> str:
    yaml = YAML()
    mapping, sequence, offset = rng.choice([(2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 4)])
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def plain(text: str) -> dict:
    from reconciler.spec.loader import parse_yaml_text

    parsed = parse_yaml_text(text, "x.yaml")
    assert not parsed.diagnostics, parsed.diagnostics
    return parsed.documents[0].data


def assert_keys_canonical(text: str) -> None:
    def visit(node, candidates) -> None:
        if isinstance(node, SequenceNode):
            for item in node.value:
                visit(item, candidates)
        if not isinstance(node, MappingNode) or not candidates:
            return
        keys = [key.value for key, _ in node.value]
        scalars = {key.value: value.value if isinstance(value, ScalarNode) else None for key, value in node.value}
        model = choose_model(candidates, scalars)
        assert keys == canonical_keys(keys, model), (keys, model)
        for key, value in node.value:
            visit(value, child_models(model, key.value))

    visit(YAML().compose(text), RESOURCE_MODELS)


RESOURCE_SCHEMA = next(item.schema for item in build_schemas() if item.filename == "resource.schema.json")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=resources, seed=st.integers(0, 2**32 - 1))
def test_fmt_generated_specs_stable(document, seed):
    RESOURCE_KINDS[document["kind"]].model_validate(document)  # the generator makes valid specs only
    rng = random.Random(seed)
    comments: list[str] = []
    text = dump(scrambled(document, rng, comments), rng)

    once = format_text(text, source="x.yaml")

    assert format_text(once, source="x.yaml") == once
    assert plain(once) == plain(text) == document
    assert sorted(re.findall(r"# (note \d+)", once)) == sorted(comments)
    assert_keys_canonical(once)
    assert re.search(r"^ {1}\S|^(?:  )* {3}\S", once, re.MULTILINE) is None, "indentation is not a multiple of 2"


@settings(max_examples=100, deadline=None)
@given(document=resources)
def test_schema_accepts_generated_valid_specs(document):
    from jsonschema import Draft202012Validator

    RESOURCE_KINDS[document["kind"]].model_validate(document)
    errors = [f"{error.json_path}: {error.message}" for error in Draft202012Validator(RESOURCE_SCHEMA).iter_errors(document)]
    assert errors == []
