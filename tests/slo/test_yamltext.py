"""The fast rule-file emitter writes exactly what yaml.dump (libyaml) writes, or declines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability.slo import compile_rules, load_slo_files, yamltext
from reliability.slo.compiler import prometheus_operator
from reliability.slo.writer import to_yaml, yaml_dump
from tests.conftest import COMPAT, REPO

SPECS = [
    REPO / "tests" / "slo" / "data" / "inference-api.yaml",
    REPO / "tests" / "slo" / "data" / "gameday.yaml",
    *sorted((COMPAT / "sloth").glob("*/input.yaml")),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: Path(p).parent.name + "/" + Path(p).name)
def test_rule_files_are_byte_identical_to_yaml_dump(spec: Path) -> None:
    services = load_slo_files([spec])
    for doc in [compile_rules(services), *prometheus_operator(services)]:
        assert yamltext.dump(doc) == yaml_dump(doc)


# Text made of what decides YAML scalar styles: indicators, quotes, spaces, line breaks, words the
# resolver reads as other types, non-ASCII; now and then a character the fast path must decline.
_SAFE = st.sampled_from(
    [
        *"-?:,[]{}#&*!|>'\"%@` \n.~=$_aZ09",
        "true",
        "null",
        "1",
        "0.5",
        "1e3",
        "---",
        "...",
        ": ",
        " #",
        "é",
        "yes",
        "2026-01-01",
        "<<",
        "sum(rate(x[5m]))",
        "\n\n",
        " \n",
    ]
)
_RARE = st.sampled_from(["\t", "\r", "\u2028", "\u0085", "\ufeff", "\U0001f600", "\x00"])


def _tree(text: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    key = st.one_of(text.map(lambda s: s.replace("\n", "")), st.sampled_from(["record", "expr", "labels"]))
    scalar = st.one_of(text, text, text, text, st.integers(), st.booleans(), st.none())
    tree = st.recursive(
        scalar,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(key, inner, max_size=3)),
        max_leaves=12,
    )
    return st.dictionaries(key, tree, min_size=1, max_size=4)


_SAFE_TEXT = st.lists(_SAFE, max_size=8).map("".join)
_ANY_TEXT = st.lists(st.one_of(_SAFE, _SAFE, _SAFE, _RARE), max_size=8).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree(_SAFE_TEXT))
def test_any_tree_is_rendered_identically_or_declined(data: dict[str, Any]) -> None:
    try:
        fast = yamltext.dump(data)
    except yamltext.Unsupported:
        return
    assert fast == yaml_dump(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree(_ANY_TEXT))
def test_characters_outside_the_fast_path_are_declined_not_mangled(data: dict[str, Any]) -> None:
    try:
        fast = yamltext.dump(data)
    except yamltext.Unsupported:
        return
    assert fast == yaml_dump(data)


def test_to_yaml_falls_back_for_what_the_fast_path_declines() -> None:
    data = {"a": 0.5, "b": "x\u2028y"}
    with pytest.raises(yamltext.Unsupported):
        yamltext.dump(data)
    assert to_yaml(data) == yaml_dump(data)
    assert yaml.safe_load(to_yaml(data)) == data
