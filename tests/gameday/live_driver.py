"""A stand-in game day for the live console's tests, run in a terminal (tmux) or a pipe.

It drives the real console - the orchestrator's `_Run` (mark, tick, wait), `LiveView`, `LiveStats`,
`interrupts()` - while it plays the other parts: a metrics endpoint in the names of the signals
profile (HAProxy responses per region, kube-state-metrics node readiness, a `fault_active` gauge
the test's alert rules fire on) scraped by the test's real Prometheus, the load generator's
`load_stats.jsonl` lines, and the chaos timeline records the chaos control and actions write
(the partition of eu-west, its rollback). Ctrl-C rolls back as the orchestrator does.

    python -m tests.gameday.live_driver RUN_DIR --prometheus URL --port PORT [--mode live|lines]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from rich.console import Console

from reliability.chaos.jsonl import append_record, stamp
from reliability.files import load_yaml, parse_model
from reliability.gameday.interrupts import RunInterrupted, interrupts
from reliability.gameday.live import LiveStats, LiveView
from reliability.gameday.livefeed import PhasePlan
from reliability.gameday.orchestrator import _Run
from reliability.rundir import RunDir, RunInfo
from reliability.scenario import Scenario
from reliability.slo import load_slo_files

REGIONS = {"us-east": 3, "eu-west": 3}
RPS = 20
ROLLBACK_S = 2.0  # how long the simulated chaos child takes to roll back after Ctrl-C


class Target:
    """The fake platform: metrics Prometheus scrapes, and the load generator's per-second lines."""

    def __init__(self, port: int, load_stats: Path) -> None:
        self.registry = CollectorRegistry()
        self.fault = Gauge("fault_active", "1 while eu-west is partitioned", registry=self.registry)
        self.responses = Counter(
            "haproxy_server_http_responses",
            "responses per gateway server",
            ["proxy", "server", "code"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "kube_node_status_condition",
            "node conditions",
            ["node", "condition", "status"],
            registry=self.registry,
        )
        labels = Gauge(
            "kube_node_labels",
            "node labels",
            ["node", "label_nvidia_com_gpu_present", "label_topology_kubernetes_io_region"],
            registry=self.registry,
        )
        cordoned = Gauge("kube_node_spec_unschedulable", "cordoned", ["node"], registry=self.registry)
        pod_info = Gauge(
            "kube_pod_info",
            "pods",
            ["namespace", "pod", "uid", "node", "created_by_kind"],
            registry=self.registry,
        )
        self.pod_ready = Gauge(
            "kube_pod_status_ready",
            "pod readiness",
            ["namespace", "pod", "uid", "condition"],
            registry=self.registry,
        )
        for region, count in REGIONS.items():
            for i in range(1, count + 1):
                labels.labels(f"{region}-{i}", "true", region).set(1)
                cordoned.labels(f"{region}-{i}").set(0)
                pod_info.labels(
                    "inference", f"vllm-{region}-{i}", f"u{region}{i}", f"{region}-{i}", "ReplicaSet"
                ).set(1)
        self.load_stats = load_stats
        self.partitioned = False
        self.stop = threading.Event()
        self.server, self.thread = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self.ticker = threading.Thread(target=self._run, daemon=True)

    def set_partition(self, on: bool) -> None:
        self.partitioned = on
        self.fault.set(1 if on else 0)

    def _run(self) -> None:
        second = int(time.time())
        while not self.stop.wait(max(0.0, second + 1 - time.time())):
            second += 1
            failures = 2 if self.partitioned else 0
            for region, count in REGIONS.items():
                down = region == "eu-west" and self.partitioned
                share = 0 if down else (RPS if self.partitioned else RPS // 2)
                self.responses.labels("regions", region, "2xx").inc(share)
                for i in range(1, count + 1):
                    self.ready.labels(f"{region}-{i}", "Ready", "true").set(0 if down else 1)
                    pod = ("inference", f"vllm-{region}-{i}", f"u{region}{i}")
                    self.pod_ready.labels(*pod, "true").set(0 if down else 1)
                    self.pod_ready.labels(*pod, "false").set(1 if down else 0)
            line = {
                "v": 2, "ts": float(second - 1), "requests": RPS, "failures": failures, "rps": float(RPS),
                "codes": {"200": RPS - failures, **({"503": failures} if failures else {})},
                "e2e_ms": {"400.0": RPS}, "ttft_ms": {"80.0": RPS - 2, "300.0": 2},
                "itl_ms": {"25.0": 10 * RPS},
                "judged": 0, "wrong": 0, "good": RPS - failures, "errors": {},
                "p50_ms": 400.0, "p95_ms": 400.0, "p99_ms": 400.0,
            }  # fmt: skip
            with self.load_stats.open("a") as fh:
                fh.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self.stop.set()
        self.ticker.join(timeout=5)
        self.server.shutdown()


def inject(timeline: Path, target: Target) -> None:
    append_record(timeline, {**stamp(), "event": "method_start", "phase": "method"})
    append_record(
        timeline,
        {**stamp(), "event": "activity_start", "phase": "method", "type": "action", "name": "partition"},
    )
    began = stamp()
    time.sleep(0.3)
    target.set_partition(True)
    append_record(
        timeline,
        {**began, "event": "fault_injected", "phase": "method", "fault": "partition_region",
         "args": {"region": "eu-west"}, "returned": stamp()},
    )  # fmt: skip


def roll_back(timeline: Path, target: Target, pause: float = 0.0) -> None:
    append_record(timeline, {**stamp(), "event": "rollback_start", "phase": "rollback"})
    time.sleep(pause)
    began = stamp()
    target.set_partition(False)
    append_record(
        timeline,
        {**began, "event": "fault_cleared", "phase": "rollback", "undo": "heal_partition",
         "args": {"region": "eu-west"}, "returned": stamp()},
    )  # fmt: skip
    append_record(timeline, {**stamp(), "event": "rollback_end", "phase": "rollback"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("live", "lines"), default="live")
    args = ap.parse_args()
    rd = RunDir(args.run_dir.resolve())
    sc = parse_model(Scenario, load_yaml(rd.scenario), rd.scenario)
    slos = [s for svc in load_slo_files(sorted(rd.slos.glob("*.yaml"))) for s in svc.slos]
    target = Target(args.port, rd.load_stats)
    target.ticker.start()
    console = Console() if args.mode == "live" else None
    view = LiveView(sc.name, args.mode, console, plan=PhasePlan.of(sc), timeline=rd.timeline)
    info = RunInfo(scenario=sc.name, started_ts=time.time())
    run = _Run(sc, rd.scenario, slos, rd, view, info)
    try:
        with interrupts() as intr, view:
            view.interrupts = intr
            injected = False
            try:
                run.mark("setup")
                run.stats = LiveStats(
                    rd.load_stats,
                    args.prometheus,
                    None,
                    timeline=rd.timeline,
                    slos=slos,
                    expected_alerts=sc.objectives.alert_names(),
                )
                run.mark("baseline")
                run.wait(sc.phases.baseline)
                run.mark("chaos")
                inject(rd.timeline, target)
                injected = True
                run.wait(sc.phases.fault_hold)
                roll_back(rd.timeline, target)
                injected = False
                run.mark("recovery")
                run.wait(sc.phases.recovery_max)
                run.mark("observed")
            except RunInterrupted:
                if injected:  # as the orchestrator's _make_safe: the chaos child plays its rollbacks
                    run.mark("rollback", reason="interrupted")
                    roll_back(rd.timeline, target, pause=ROLLBACK_S)
            finally:
                run.mark("end")
                time.sleep(1.0)  # the last frame, as the run's reports would take a moment
    finally:
        target.close()


if __name__ == "__main__":
    main()
