"""The lab's pure parts: routing rules, config validation, the model checkpoint, the CLI's errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reliability.lab.balancer import Backend, Balancer

from reliability.errors import InputError
from reliability.lab import lab_json_schema, load_lab_config
from reliability.lab.config import ModelConfig
from reliability.lab.model import CheckpointError, load_checkpoint, outputs_match, write_checkpoint


def make_balancer(n: int = 4, **kw: float) -> Balancer:
    b = Balancer([Backend(f"n{i}", f"http://x/{i}", healthy=True) for i in range(n)], **kw)  # type: ignore[arg-type]
    return b


def test_round_robin_over_healthy_nodes_only() -> None:
    b = make_balancer(3)
    b.backends[1].healthy = False
    picks = {b.pick(0.0).name for _ in range(10)}  # type: ignore[union-attr]
    assert picks == {"n0", "n2"}
    assert b.pick(0.0, frozenset({"n0", "n2"})) is None


def test_breaker_opens_after_consecutive_failures_and_closes_after_cooldown() -> None:
    b = make_balancer(4, breaker_failures=3, breaker_cooldown_s=2.0)
    node = b.backends[0]
    for _ in range(2):
        b.record(node, False, 10.0)
    assert not node.breaker_open(10.0)
    b.record(node, False, 10.0)
    assert node.breaker_open(11.9) and not node.breaker_open(12.1)
    assert "n0" not in {b.pick(11.0).name for _ in range(8)}  # type: ignore[union-attr]


def test_breakers_never_eject_more_than_the_allowed_share() -> None:
    b = make_balancer(4, breaker_failures=1, max_ejected_ratio=0.5)
    for node in b.backends:
        b.record(node, False, 0.0)
    assert b.ejected(0.0) == 2  # a bad deploy everywhere does not take the healthy remainder out too
    b.record(b.backends[0], True, 0.5)
    assert not b.backends[0].breaker_open(0.5)


def test_default_topology_and_schema() -> None:
    cfg = load_lab_config(None)
    assert cfg.region_names() == ["us-east", "eu-west"]
    assert cfg.node_ids("eu-west") == ["eu-west-1", "eu-west-2", "eu-west-3"]
    assert cfg.store_primary() == "us-east"
    schema = lab_json_schema()
    assert schema["additionalProperties"] is False and "regions" in schema["properties"]


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("regions: [{name: a}, {name: a}]", "(top level)"),
        ("store: {primary_region: mars}", "(top level)"),
        ("controller: {missed_heartbeats: 0}", "controller.missed_heartbeats"),
        ("model: {warmup: 3}", "model.warmup"),
        ("regions: [{name: 'Bad Name'}]", "regions[0].name"),
    ],
)
def test_bad_lab_config_names_file_and_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError) as err:
        load_lab_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_lab_up_with_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("model: {features: -1}\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.cli",
            "lab",
            "up",
            "--config",
            str(path),
            "--dir",
            str(tmp_path / "l"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "model.features" in proc.stderr
    assert not (tmp_path / "l").exists()  # nothing started, nothing written


def test_checkpoint_is_verified_before_serving(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.npz"
    sha = write_checkpoint(path, ModelConfig())
    model = load_checkpoint(path, sha)
    x = np.ones((2, 4), dtype=np.float32)
    assert outputs_match(model.predict(x), model.predict(x).tolist())
    assert not outputs_match(model.predict(x), [[float("nan")] * 4] * 2)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, sha)


def test_cli_up_status_down_from_the_readme(tmp_path: Path) -> None:
    """The README's lab commands: up --detach, a prediction, status --json, down - nothing left."""
    import json

    import requests

    cli = [sys.executable, "-m", "reliability.cli", "lab"]
    workdir = tmp_path / "lab"
    up = subprocess.run(
        [
            *cli,
            "up",
            "--detach",
            "--isolation",
            "proxy",
            "--dir",
            str(workdir),
            "--slo",
            str(Path(__file__).resolve().parents[2] / "slos" / "inference-api.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "endpoint:" in up.stdout and "prometheus:" in up.stdout
        status = json.loads(
            subprocess.run(
                [*cli, "status", "--json", "--dir", str(workdir)], capture_output=True, text=True, timeout=60
            ).stdout
        )
        assert status["phase"] == "ready" and status["isolation"] == "proxy"
        r = requests.post(
            f"{status['endpoint']}/v1/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]}, timeout=5
        )
        assert r.status_code == 200
        pids = [c["pid"] for c in status["components"]]
    finally:
        down = subprocess.run(
            [*cli, "down", "--dir", str(workdir)], capture_output=True, text=True, timeout=60
        )
    assert down.returncode == 0 and "lab down" in down.stdout
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"
