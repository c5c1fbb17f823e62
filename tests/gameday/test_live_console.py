"""The live console as a person sees it: run under tmux against a real Prometheus whose rules fire
alerts on the stand-in target's metrics, and read off the terminal with `tmux capture-pane`.

The stand-in game day (`tests/gameday/live_driver.py`) drives the real console code (the
orchestrator's `_Run`, `LiveView`, `LiveStats`, `interrupts()`); only the lab and the chaos child are
played by the driver, since neither can run here (the lab is being rewritten).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from reliability.prometheus import LocalPrometheus, ScrapeTarget
from reliability.tools import free_port
from tests.report.synthetic import SLO_FILE

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux missing"),
]
WAIT_S = 40.0

RULES = """\
groups:
  - name: live-console-test
    rules:
      - alert: RegionUnavailable
        expr: max(fault_active) > 0
        labels: {severity: critical, region: eu-west}
      - alert: GPUNodeDown
        expr: max(fault_active) > 0
        for: 2s
        labels: {severity: critical, node: eu-west-1}
      - record: slo:sli_error:ratio_rate5s
        expr: max(fault_active) * 0.05
        labels: {sloth_slo: requests-availability}
"""


def write_scenario(run_dir: Path, fault_hold: str) -> None:
    (run_dir / "slos").mkdir(parents=True)
    (run_dir / "slos" / "llm.yaml").write_text(SLO_FILE)
    scenario = {
        "name": "region-partition",
        "slos": ["slos/llm.yaml"],
        "experiment": {"file": "../experiments/region-partition.yaml"},
        "phases": {"baseline": "4s", "fault_hold": fault_hold, "recovery_max": "5s", "recovered_hold": "1s"},
        "objectives": {"expected_alerts": ["RegionUnavailable"]},
    }
    (run_dir / "scenario.yaml").write_text(yaml.safe_dump(scenario))


@pytest.fixture
def target(tmp_path: Path, local_prometheus: LocalPrometheus) -> tuple[LocalPrometheus, int]:
    """The real Prometheus scraping the driver's metrics, with rules that fire while the fault is in."""
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    local_prometheus.targets = [ScrapeTarget("fake-target", f"127.0.0.1:{port}")]
    local_prometheus.rule_files = [rules]
    local_prometheus.reload()
    return local_prometheus, port


class Tmux:
    """A private tmux server (its own socket), so nothing of a person's sessions is touched."""

    def __init__(self) -> None:
        self.socket = f"reliability-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "live")

    def wait_for(self, ok: Callable[[str], bool], what: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        screen = self.screen()
        while not ok(screen):
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; screen:\n{screen}")
            time.sleep(0.3)
            screen = self.screen()
        return screen

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    yield t
    t.kill()


def start_driver(tmux: Tmux, run_dir: Path, prom: LocalPrometheus, port: int) -> None:
    command = (
        f"cd {REPO} && {sys.executable} -m tests.gameday.live_driver {run_dir} --prometheus {prom.url} "
        f"--port {port}; echo DRIVER-EXIT $?; sleep 60"
    )
    tmux(
        "new-session",
        "-d",
        "-s",
        "live",
        "-x",
        "130",
        "-y",
        "50",
        "-e",
        f"PATH={os.environ['PATH']}",
        command,
    )


def line_with(screen: str, first: str, *words: str) -> str:
    """The first line that begins with `first` (after indentation) and has every one of `words`."""
    return next(
        (
            line
            for line in screen.splitlines()
            if line.strip().startswith(first) and all(w in line for w in words)
        ),
        "",
    )


def test_a_partition_game_day_on_the_live_console(
    tmp_path: Path, target: tuple[LocalPrometheus, int], tmux: Tmux
) -> None:
    prom, port = target
    run_dir = tmp_path / "run"
    write_scenario(run_dir, fault_hold="10s")
    start_driver(tmux, run_dir, prom, port)

    screen = tmux.wait_for(lambda s: "left" in line_with(s, "baseline"), "the baseline's remaining time")
    assert "game day: region-partition" in screen and "Fault: not injected yet" in screen
    assert "10 s planned" in line_with(screen, "fault") and "5 s planned" in line_with(
        screen, "recovery watch"
    )

    # The fault goes in: its state, both alerts (one not expected), the detection, the regions.
    screen = tmux.wait_for(
        lambda s: (
            line_with(s, "FIRING", "GPUNodeDown")  # it has `for: 2s`: pending first
            and "Detected:" in s
            and "Burn rate: requests-availability 5.0" in s
            and re.search(r"eu-west\s+0\.0\s+0\.0\s+0\b", s) is not None
        ),
        "the fault's alerts, detection and the partitioned region",
    )
    assert "Fault: in place since" in screen and "partition_region(region=eu-west)" in screen
    assert re.search(r"\d+ s of 10 s, \d+ s left", line_with(screen, "fault")), line_with(screen, "fault")
    unavailable = line_with(screen, "FIRING", "RegionUnavailable (eu-west)")
    assert "page" in unavailable and "expected" in unavailable
    assert "UNEXPECTED" not in unavailable and "since" in unavailable
    false_page = line_with(screen, "FIRING", "GPUNodeDown (eu-west-1)")
    assert "UNEXPECTED" in false_page
    assert re.search(r"Detected: RegionUnavailable \(page\) at \d\d:\d\d:\d\d, TTD ~\d+\.\d s", screen)
    us_east = re.search(r"us-east\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+)", screen)
    assert us_east is not None and float(us_east.group(1)) > 10 and us_east.group(3) == "3"
    assert "Burn rate: requests-availability 5.0 (5s)" in screen
    assert "TTFT p95 300 ms, ITL p95 25 ms" in screen
    assert re.search(r"Last minute\s+req/s\s+[▁▂▃▄▅▆▇█]{5,}", screen)

    # Rolled back; the alerts resolve; every phase ends.
    screen = tmux.wait_for(lambda s: "DRIVER-EXIT" in s, "the end of the run")
    assert "DRIVER-EXIT 0" in screen
    assert "Fault: rolled back at" in screen
    assert line_with(screen, "resolved", "RegionUnavailable (eu-west)")
    for phase in ("baseline", "fault", "recovery watch"):
        assert "done, took" in line_with(screen, phase), phase


def test_ctrl_c_says_it_is_rolling_back_and_when_it_is_done(
    tmp_path: Path, target: tuple[LocalPrometheus, int], tmux: Tmux
) -> None:
    prom, port = target
    run_dir = tmp_path / "run"
    write_scenario(run_dir, fault_hold="60s")
    start_driver(tmux, run_dir, prom, port)
    tmux.wait_for(lambda s: "Fault: in place since" in s, "the fault in place")
    tmux("send-keys", "-t", "live", "C-c")
    screen = tmux.wait_for(lambda s: "rolling back the fault" in s, "the rollback banner", timeout=10)
    assert "Interrupted (SIGINT)" in screen
    screen = tmux.wait_for(lambda s: "rollback done" in s, "the end of the rollback")
    assert re.search(r"Interrupted \(SIGINT\): rollback done at \d\d:\d\d:\d\d", screen)
    assert "Fault: rolled back at" in screen
    assert "DRIVER-EXIT 0" in tmux.wait_for(lambda s: "DRIVER-EXIT" in s, "the driver's exit")


def test_plain_lines_when_not_a_terminal(tmp_path: Path, target: tuple[LocalPrometheus, int]) -> None:
    prom, port = target
    run_dir = tmp_path / "run"
    write_scenario(run_dir, fault_hold="8s")
    done = subprocess.run(
        [sys.executable, "-m", "tests.gameday.live_driver", str(run_dir), "--prometheus", prom.url,
         "--port", str(port), "--mode", "lines"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert all(re.match(r"\[ *\d+\.\ds\] region-partition: ", line) for line in lines), lines
    text = "\n".join(lines)
    assert "region-partition: fault in place since" in text and "partition_region(region=eu-west)" in text
    assert "alert firing: RegionUnavailable (eu-west) (page, expected)" in text
    assert "alert firing: GPUNodeDown (eu-west-1) (page, UNEXPECTED)" in text
    assert re.search(r"detected by RegionUnavailable \(page\), TTD ~\d+\.\d s", text)
    assert "alert resolved: RegionUnavailable (eu-west)" in text
    assert "fault rolled back at" in text
    assert any(len(line) > 80 for line in lines)  # long lines stay whole: no wrapping at 80 columns
    for phase in ("baseline", "chaos", "recovery", "observed", "end"):
        assert any(line.split(": ", 1)[1].startswith(phase) for line in lines), phase
