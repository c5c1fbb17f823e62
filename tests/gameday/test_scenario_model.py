"""The scenario format: durations, validation errors as one line, JSON Schema, CLI exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reliability.errors import InputError
from reliability.scenario import Scenario, load_scenario, parse_duration, scenario_json_schema

REPO = Path(__file__).resolve().parents[2]


def minimal(tmp_path: Path, **over: object) -> dict:
    (tmp_path / "slo.yaml").write_text("x: 1\n")
    (tmp_path / "exp.yaml").write_text("title: t\n")
    doc: dict = {
        "name": "demo",
        "slos": ["slo.yaml"],
        "experiment": {"file": "exp.yaml"},
        "phases": {"baseline": "5s", "fault_hold": 3, "recovery_max": "1m"},
    }
    doc.update(over)
    return doc


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("250ms", 0.25), (7, 7.0), ("1.5", 1.5)],
)
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


def test_minimal_scenario_loads_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, minimal(tmp_path)))
    assert sc.phases.recovery_max == 60.0 and sc.phases.recovered_hold == 5.0
    assert sc.target.kind == "lab" and sc.load.shape == "steady"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phases": {"baseline": "soon", "fault_hold": 3, "recovery_max": 5}}, "phases.baseline"),
        ({"bogus": 1}, "bogus"),
        ({"slos": ["missing.yaml"]}, "slos[0]"),
        ({"objectives": {"ttd_max": "10s"}}, "objectives"),
        ({"objectives": {"max_budget_spent": 1.5}}, "objectives.max_budget_spent"),
        ({"load": {"user": "locustfile"}}, "load"),
        ({"guardrails": [{"name": "g", "query": "up", "above": 1, "for": "x"}]}, "guardrails[0].for"),
    ],
)
def test_invalid_scenarios_name_file_and_field(tmp_path: Path, change: dict, field: str) -> None:
    path = write(tmp_path, minimal(tmp_path, **change))
    with pytest.raises(InputError) as exc:
        load_scenario(path)
    assert str(path) in str(exc.value) and field in str(exc.value)
    assert "\n" not in str(exc.value)


def test_guardrail_window_alias() -> None:
    g = Scenario.model_validate(
        {
            "name": "x",
            "slos": ["a"],
            "experiment": {"file": "e"},
            "phases": {"baseline": 1, "fault_hold": 1, "recovery_max": 1},
            "guardrails": [{"name": "g", "query": "up", "above": 0.5, "for": "10s"}],
        }
    ).guardrails[0]
    assert g.for_seconds == 10.0


def test_json_schema_forbids_unknown_fields_and_uses_yaml_names() -> None:
    schema = scenario_json_schema()
    assert schema["additionalProperties"] is False
    assert "for" in schema["$defs"]["Guardrail"]["properties"]
    assert {"name", "slos", "experiment", "phases"} <= set(schema["required"])


def test_cli_invalid_scenario_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, minimal(tmp_path, phases={"baseline": 1}))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.cli",
            "gameday",
            "run",
            str(path),
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "phases.fault_hold" in lines[0]
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_cli_bad_lab_config_of_a_scenario_exits_2_before_anything_runs(tmp_path: Path) -> None:
    """The scenario's own files (experiment, SLOs, lab config) are all checked up front."""
    shipped = yaml.safe_load((REPO / "scenarios" / "gpu-node-loss.yaml").read_text())
    shipped["slos"] = [str(REPO / "scenarios" / "slos" / "llm-gameday.yaml")]
    shipped["experiment"]["file"] = str(REPO / "experiments" / "gpu-node-loss.yaml")
    (tmp_path / "lab.yaml").write_text("controller:\n  provisioning_delay: 5\n")
    shipped["target"]["config"] = "lab.yaml"
    path = write(tmp_path, shipped)
    out = subprocess.run(
        [sys.executable, "-m", "reliability.cli", "gate", str(path), "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "lab.yaml" in lines[0] and "provisioning_delay" in lines[0], lines
    assert not (tmp_path / "runs").exists()


def test_cli_gate_checks_every_scenario_before_running_any(tmp_path: Path) -> None:
    good = REPO / "scenarios" / "gpu-node-loss.yaml"
    bad = write(tmp_path, minimal(tmp_path, name="Bad Name"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.cli",
            "gate",
            str(good),
            str(bad),
            "--out",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 2 and "name" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_schema_command_prints_the_scenario_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "reliability.cli", "schema", "scenario"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0 and '"Scenario"' in out.stdout
