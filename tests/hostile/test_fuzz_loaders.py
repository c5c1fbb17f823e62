"""Property test over every loader: valid files, mutated (byte flips, truncation, inserted bytes,
renamed keys, swapped values, deep nesting), never raise anything but InputError.

Seeds are the repository's own files (SLO specs in every format, scenarios, the lab topology,
runbooks, experiments) and a small valid run directory. A fixed number of examples per loader
keeps the whole module near half a minute; a failure prints the mutated text to reproduce it.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability.chaos.runner import load_experiment
from reliability.errors import InputError
from reliability.lab.config import load_lab_config
from reliability.report.rundir import read_run
from reliability.runbooks.loader import load_runbook
from reliability.scenario import load_scenario
from reliability.slo import compile_rules, load_slo_files
from reliability.slo.writer import render
from tests.conftest import COMPAT, REPO

# The mutators use libyaml too (the pure-Python parser is slow on deep nesting, and recursive).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible, not a lottery
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SLO_SEEDS = [
    REPO / "tests" / "slo" / "data" / "inference-api.yaml",
    REPO / "tests" / "slo" / "data" / "inference-gameday.yaml",
    *(COMPAT / "sloth" / c / "input.yaml" for c in ("getting-started", "k8s-getting-started")),
    *(COMPAT / "sloth" / c / "input.yaml" for c in ("openslo-getting-started", "victoria-metrics")),
]
SCENARIO_SEEDS = sorted((REPO / "scenarios").glob("*.yaml"))
LAB_SEEDS = sorted((REPO / "scenarios" / "labs").glob("*.yaml"))
RUNBOOK_SEEDS = sorted((REPO / "runbooks").glob("*.md"))
EXPERIMENT_SEEDS = sorted((REPO / "experiments").glob("*.yaml"))

# Values that broke loaders before, or could: non-finite and huge numbers, wrong types, dates.
ODD_VALUES: list[Any] = [
    math.nan,
    math.inf,
    -1,
    0,
    1e308,
    10**30,
    "",
    "2026-13-45",
    "99999999999999999999d",
    "{{ .window }}",
    "x" * 5000,
    [],
    {},
    None,
    True,
    [[[[[[[[[[1]]]]]]]]]],
    {"a": {"b": {"c": 1}}},
]


# ---- mutations of text ----------------------------------------------------------------------


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _replace(data: Any, path: tuple[Any, ...], fn: Callable[[Any], Any]) -> Any:
    if not path:
        return fn(data)
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {k: (_replace(v, rest, fn) if k == head else v) for k, v in data.items()}
    return [_replace(v, rest, fn) if i == head else v for i, v in enumerate(data)]


def _rename(data: Any, path: tuple[Any, ...], new: str) -> Any:
    """Rename the key at `path` (a typo, another key's name, or garbage)."""
    if not path or not isinstance(path[-1], str):
        return data
    parent, key = path[:-1], path[-1]
    return _replace(data, parent, lambda d: {(new if k == key else k): v for k, v in d.items()})


@st.composite
def structural(draw: st.DrawFn, data: Any) -> str:
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    kind = draw(st.sampled_from(["rename", "swap", "nest", "swap2"]))
    for _ in range(2 if kind == "swap2" else 1):
        if kind == "rename":
            key = path[-1] if path and isinstance(path[-1], str) else "x"
            new = draw(
                st.sampled_from([key[:-1] or "y", key + "s", key.upper(), "objective", "name", "\u00e9"])
            )
            data = _rename(data, path, new)
        elif kind == "nest":
            depth = draw(st.integers(1, 150))
            data = _replace(data, path, lambda v, d=depth: _nested(v, d))
        else:
            value = draw(st.sampled_from(ODD_VALUES))
            data = _replace(data, path, lambda _v, x=value: x)
            path = draw(st.sampled_from(_paths(data)))
    try:
        return yaml.dump(data, Dumper=_DUMPER, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        return yaml.dump({"unrepresentable": True}, Dumper=_DUMPER)


def _nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def byte_level(draw: st.DrawFn, text: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "deep"]))
    data = bytearray(text)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, max(0, len(data) - 1)))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, max(0, len(data) - 1)))
            if data:
                data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    i = draw(st.integers(0, len(data)))
    chunk = (
        draw(st.binary(min_size=1, max_size=16)) if kind == "insert" else b"[" * draw(st.integers(50, 3000))
    )
    return bytes(data[:i]) + chunk + bytes(data[i:])


def mutated(seeds: list[Path], front_matter: bool = False) -> st.SearchStrategy[bytes]:
    """A seed file, mutated as bytes or (parsed with PyYAML) as data and dumped back."""
    return mutated_seed(seeds, front_matter).map(lambda pair: pair[1])


def mutated_seed(seeds: list[Path], front_matter: bool = False) -> st.SearchStrategy[tuple[Path, bytes]]:
    """(seed, its mutation): runbooks must keep their file name (it is their id)."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[Path, bytes]:
        seed = draw(st.sampled_from(seeds))
        return seed, draw(mutate(seed, front_matter))

    return build()


def mutate(seed: Path, front_matter: bool) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        raw = seed.read_bytes()
        if draw(st.booleans()):
            return draw(byte_level(raw))
        text = raw.decode("utf-8")
        head, body = "", ""
        if front_matter:
            _, head, body = text.split("---\n", 2)
            text = head
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
        new = draw(structural(docs[0]))
        if front_matter:
            return f"---\n{new}---\n{body}".encode()
        return new.encode("utf-8")

    return build()


def only_input_errors(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except InputError as exc:
        assert "\n" not in str(exc), str(exc)  # one line


def write(tmp: str, name: str, data: bytes) -> Path:
    path = Path(tmp) / name
    path.write_bytes(data)
    return path


# ---- one property per loader ----------------------------------------------------------------


@FUZZ
@given(mutated(SLO_SEEDS))
def test_slo_loader_and_compiler(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(tmp, "spec.yaml", data)

        def load_and_compile() -> None:
            services = load_slo_files([path])
            compile_rules(services)
            render(services)
            render(services, "prometheus-operator")

        only_input_errors(load_and_compile)


@FUZZ
@given(mutated(SCENARIO_SEEDS))
def test_scenario_loader(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        only_input_errors(lambda: load_scenario(write(tmp, "scenario.yaml", data)))


@FUZZ
@given(mutated(LAB_SEEDS))
def test_lab_config_loader(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        only_input_errors(lambda: load_lab_config(write(tmp, "lab.yaml", data)))


@FUZZ
@given(mutated_seed(RUNBOOK_SEEDS, front_matter=True))
def test_runbook_loader(case: tuple[Path, bytes]) -> None:
    seed, data = case
    with tempfile.TemporaryDirectory() as tmp:
        only_input_errors(lambda: load_runbook(write(tmp, seed.name, data)))


@FUZZ
@given(mutated(EXPERIMENT_SEEDS), st.booleans())
def test_experiment_loader(data: bytes, as_json: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if as_json:
            # Not YAML any more: the raw bytes are a fine broken JSON file too.
            with contextlib.suppress(ValueError, yaml.YAMLError, TypeError, RecursionError):
                data = json.dumps(yaml.load(data.decode("utf-8"), Loader=_LOADER)).encode()
        only_input_errors(lambda: load_experiment(write(tmp, "exp.json" if as_json else "exp.yaml", data)))


# A small valid run directory; one of its files is mutated per example.
RUN_FILES: dict[str, bytes] = {
    "scenario.yaml": (REPO / "scenarios" / "gpu-node-loss.yaml").read_bytes(),
    "events.jsonl": b'{"ts": 100.0, "mono": 5.0, "event": "lab_up"}\n'
    b'{"ts": 120.0, "mono": 25.0, "event": "node_killed", "node": "us-east-1"}\n',
    "timeline.jsonl": b'{"ts": 119.0, "mono": 24.0, "event": "gameday_phase", "name": "chaos"}\n',
    "load_stats.jsonl": b"".join(
        json.dumps({"ts": 100 + i, "requests": 10, "failures": i % 3, "rps": 10.0, "p50_ms": 5.0}).encode()
        + b"\n"
        for i in range(5)
    ),
    "canary_writes.jsonl": b'{"kind": "write", "seq": 1, "ts": 101.0, "acked": true}\n'
    b'{"kind": "survivors", "seqs": [1]}\n',
    "series/sli.csv": b"ts,value\n100,1.0\n101,0.5\n",
}


@st.composite
def damaged_run(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(RUN_FILES)))
    raw = RUN_FILES[name]
    if name.endswith(".jsonl") and draw(st.booleans()):
        lines = [json.loads(line) for line in raw.splitlines()]
        i = draw(st.integers(0, len(lines) - 1))
        new = draw(structural(lines[i]))
        lines[i] = yaml.load(new, Loader=_LOADER)
        try:
            text = "\n".join(json.dumps(x) for x in lines) + "\n"
        except (TypeError, ValueError):
            text = raw.decode()
        return name, text.encode()
    return name, draw(byte_level(raw))


@FUZZ
@given(damaged_run())
def test_run_directory_reader(case: tuple[str, bytes]) -> None:
    name, data = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "series").mkdir()
        for file, raw in RUN_FILES.items():
            (root / file).write_bytes(data if file == name else raw)
        only_input_errors(lambda: read_run(root))


@pytest.mark.parametrize(
    "seed", [*SLO_SEEDS, *SCENARIO_SEEDS, *LAB_SEEDS, *RUNBOOK_SEEDS[:2], *EXPERIMENT_SEEDS]
)
def test_seeds_are_valid(seed: Path) -> None:
    """The properties start from files each loader accepts (else they test nothing)."""
    loader = {
        "slos": lambda p: load_slo_files([p]),
        "scenarios": load_scenario,
        "labs": load_lab_config,
        "runbooks": load_runbook,
        "experiments": load_experiment,
    }
    kind = "slos" if seed in SLO_SEEDS else seed.parent.name
    loader[kind](seed)
