"""`reliability runbook search|show|check` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reliability.errors import InputError
from reliability.runbooks.cli import app

from .conftest import WriteRunbook

runner = CliRunner()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reliability.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_search_json(repo: Path) -> None:
    out = runner.invoke(
        app, ["search", "gpu", "fell", "off", "bus", "--json", "--dir", str(repo / "runbooks")]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["query"] == "gpu fell off bus"
    top = data["results"][0]
    assert top["id"] == "gpu-xid-errors"
    assert "bus" in top["matched"]["title"]
    assert "kubectl cordon" in top["first_mitigation_step"]


def test_search_text_shows_why_and_first_step(repo: Path) -> None:
    out = runner.invoke(app, ["search", "StoreReplicatonLagHigh", "--dir", str(repo / "runbooks"), "-n", "1"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("1. store-replication-lag")
    assert "fuzzy    replicaton -> replication" in out.output
    assert "first    If replication stopped" in out.output


def test_search_without_match_exits_1(repo: Path) -> None:
    out = runner.invoke(app, ["search", "zzqx", "--dir", str(repo / "runbooks")])
    assert out.exit_code == 1


def test_show_by_alert_name_renders_markdown(repo: Path) -> None:
    out = runner.invoke(app, ["show", "GPUXidErrors", "--dir", str(repo / "runbooks")])
    assert out.exit_code == 0, out.output
    assert "GPU Xid errors" in out.output
    assert "Mitigation" in out.output and "## Mitigation" not in out.output  # rendered, not raw
    raw = runner.invoke(app, ["show", "gpu-xid-errors", "--raw", "--dir", str(repo / "runbooks")])
    assert raw.output == (repo / "runbooks" / "gpu-xid-errors.md").read_text()


def test_show_unknown_suggests(repo: Path) -> None:
    out = runner.invoke(app, ["show", "GPUNodeDonw", "--dir", str(repo / "runbooks")])
    assert isinstance(out.exception, InputError)
    assert "did you mean: gpu-node-down" in str(out.exception)


def test_check_lists_problems_and_exits_1(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull", "GhostAlert"])
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "a.yaml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: DiskFull\n    expr: up == 0\n"
        "    annotations: {runbook_url: runbooks/disk-full.md}\n",
        encoding="utf-8",
    )
    args = ["check", "--dir", str(tmp_path / "runbooks"), "--alerts", str(tmp_path / "alerts")]
    (tmp_path / "no-slos").mkdir()
    out = runner.invoke(app, [*args, "--slos", str(tmp_path / "no-slos")])
    assert out.exit_code == 1
    assert "unknown-alert: disk-full: lists alert 'GhostAlert'" in out.output
    report = json.loads(runner.invoke(app, [*args, "--slos", str(tmp_path / "no-slos"), "--json"]).output)
    assert report["ok"] is False and report["alerts"] == ["DiskFull"]


def test_malformed_front_matter_is_one_line_exit_2(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull"], colour="red")
    out = run_cli("runbook", "search", "disk", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: runbooks/disk-full.md: colour: unknown field"


@pytest.mark.parametrize("module", ["reliability.runbooks.cli", "reliability.runbooks"])
def test_runbook_path_imports_no_heavy_libraries(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('pandas', 'plotly', 'numpy', 'chaoslib', 'locust') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
