"""Running a shipped scenario against a lab the test owns, and reading back the ground truth of what
happened: the lab's own events (written by whoever made a thing happen), Prometheus' raw alert
evaluations, and Locust's own request counts. Shared by tests/gameday/test_verdict_truth.py and
benchmarks/bench_verdict_truth.py."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from reliability.lab import Lab, load_lab_config
from reliability.lab.events import read_events
from reliability.load.reader import read_load_stats
from reliability.slo.durations import parse_duration

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
FAULT_EVENTS = {"node_xid", "node_killed", "partition_applied", "fault_set", "model_rollout_started"}


@dataclass(frozen=True)
class Expect:
    status: str = "passed"
    verdicts: dict[str, str] = field(default_factory=dict)


# What each shipped scenario must conclude (the one built to fail, fails on RTO).
EXPECT: dict[str, Expect] = {
    "gateway-without-health-checks": Expect("failed", {"rto:availability": "fail"}),
}


@dataclass
class Truth:
    name: str
    result: dict[str, Any]
    expect: Expect
    fault_ts: float
    timings: dict[str, float]
    alert_truth: dict[str, float] = field(default_factory=dict)  # severity -> TTD
    rto_truth: dict[str, float] = field(default_factory=dict)  # SLO -> RTO
    # SLO -> the latest the effect can have ended, where it ends over an interval (in-flight answers)
    rto_truth_latest: dict[str, float] = field(default_factory=dict)
    capacity_truth: float | None = None
    rpo_truth: float | None = None
    locust_totals: tuple[int, int] | None = None  # Locust's own aggregate
    client_totals: tuple[int, int] | None = None  # ours: load_stats.jsonl over the whole run


def scenario_copy(
    name: str, directory: Path, state_file: Path, rng: random.Random
) -> tuple[Path, dict[str, float]]:
    """The shipped scenario with absolute paths, attached to the test's lab, timings drawn at random
    (the baseline never shorter than the page window, 20 s; the fault held no shorter than the
    scenario holds it, long enough for its pages to fire)."""
    doc = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    hold = parse_duration(doc["phases"]["fault_hold"])
    timings = {
        "baseline": round(rng.uniform(20.0, 26.0), 1),
        "fault_hold": round(rng.uniform(hold, hold + 4.0), 1),
    }
    doc["phases"].update({k: f"{v}s" for k, v in timings.items()})
    doc["slos"] = [str((SCENARIOS / s).resolve()) for s in doc["slos"]]
    doc["experiment"]["file"] = str((SCENARIOS / doc["experiment"]["file"]).resolve())
    doc["target"] = {"kind": "lab", "state_file": str(state_file)}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path, timings


def lab_for(name: str, workdir: Path) -> Lab:
    doc = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text())
    config = load_lab_config((SCENARIOS / doc["target"]["config"]).resolve())
    slos = [(SCENARIOS / s).resolve() for s in doc["slos"]]
    return Lab(config, workdir, slo_files=slos)


def run_with_truth(name: str, tmp_path: Path, rng: random.Random, timeout_s: float = 420.0) -> Truth:
    with lab_for(name, tmp_path / "lab") as lab:
        scenario, timings = scenario_copy(name, tmp_path, lab.state_file, rng)
        started = time.time()
        proc = subprocess.run(
            [sys.executable, "-m", "reliability.cli", "gameday", "run", str(scenario), "--out",
             str(tmp_path / "run"), "--no-live"],
            capture_output=True, text=True, timeout=timeout_s, cwd=REPO,
        )  # fmt: skip
        assert (tmp_path / "run" / "result.json").is_file(), proc.stdout + proc.stderr
        result = json.loads((tmp_path / "run" / "result.json").read_text())
        events = [e for e in read_events(lab.events_path) if e["ts"] >= started]
        fault = next(e for e in events if e["event"] in FAULT_EVENTS)
        truth = Truth(name, result, EXPECT.get(name, Expect()), float(fault["ts"]), timings)
        truth.locust_totals = locust_totals(tmp_path / "run")
        load = read_load_stats(tmp_path / "run" / "load_stats.jsonl")
        truth.client_totals = (int(load["requests"].sum()), int(load["failures"].sum()))
        inject = result["inject_ts"]
        for det in result["detection"]:
            truth.alert_truth[det["severity"]] = (
                first_firing(lab.prometheus_url, det["alertname"], det["severity"], inject) - inject
            )
        truth.rto_truth = rto_truth(name, events, inject, result)
        drained = _event(events, "fault_drained", inject)
        last_wrong = drained.get("last_wrong_answer_ts") if drained is not None else None
        if (
            name == "silent-model-degradation"
            and "model-quality" in truth.rto_truth
            and last_wrong is not None
        ):
            # Requests admitted before the clear answer wrong to their end; only the judged ones
            # (the golden share) can show it: the last judged wrong answer lies between the two.
            truth.rto_truth_latest["model-quality"] = max(
                truth.rto_truth["model-quality"], last_wrong - inject
            )
        ready = _event(events, "replacement_ready", inject)
        if ready is not None:
            truth.capacity_truth = float(ready["ts"]) - inject
        partitioned = next(
            (e for e in events if e["event"] == "partition_applied" and "store_last_ack_ts" in e), None
        )
        promoted = next((e for e in events if e["event"] == "store_promoted"), None)
        if partitioned is not None and promoted is not None and promoted.get("last_ts") is not None:
            truth.rpo_truth = max(0.0, float(partitioned["store_last_ack_ts"]) - float(promoted["last_ts"]))
        return truth


def _event(events: list[dict[str, Any]], name: str, after: float, **match: Any) -> dict[str, Any] | None:
    """The first event `name` at or after `after` whose fields match."""
    return next(
        (
            e
            for e in events
            if e["event"] == name and e["ts"] >= after and all(e.get(k) == v for k, v in match.items())
        ),
        None,
    )


def _first(events: list[dict[str, Any]], name: str, after: float, **match: Any) -> float | None:
    e = _event(events, name, after, **match)
    return None if e is None else float(e["ts"])


def rto_truth(
    name: str, events: list[dict[str, Any]], inject: float, result: dict[str, Any]
) -> dict[str, float]:
    """When each fault's effect on an SLI ended, from the event that ends it (only for the SLIs the
    measurement says left their objective; whether they should have is checked by the verdicts)."""
    left = {s["slo"] for s in result["slis"] if s["status"] != "no_impact"}
    out: dict[str, float] = {}

    def put(slo: str, ts: float | None) -> None:
        if slo in left and ts is not None:
            out[slo] = ts - inject

    cleared = _first(events, "fault_cleared", inject)
    if name == "model-failure":
        put("availability", _first(events, "model_rollback", inject))
    elif name == "silent-model-degradation":
        put("model-quality", cleared)
    elif name in ("gray-failure", "kv-cache-pressure"):
        put("time-to-first-token", cleared)
    elif name == "slow-decode":
        put("inter-token-latency", cleared)
    elif name.startswith("gpu-node-loss") or name in ("replacement-stuck", "gateway-without-health-checks"):
        # Requests fail until the gateway stops sending to the lost GPU: its health checks eject it
        # at once - or, without health checks, the controller takes it out (maintenance) when its
        # replacement is ready.
        put("availability", _first(events, "gateway_server_down", inject, server="us-east-1"))
    return out


def first_firing(prometheus_url: str, alertname: str, severity: str, after: float) -> float:
    """When Prometheus first evaluated `alertname` (of the severity) as firing in an episode that
    began after `after`: its raw ALERTS samples, one per rule evaluation."""
    sev = 'severity=~"critical|page"' if severity == "page" else 'severity=~"warning|ticket|info"'
    starts = []
    for labels in (sev, f'sloth_severity="{severity}"'):
        query = f'ALERTS{{alertname="{alertname}",alertstate="firing",{labels}}}[15m]'
        r = requests.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=10)
        for series in r.json()["data"]["result"]:
            ts = [float(t) for t, _ in series["values"]]
            starts += [t for i, t in enumerate(ts) if t >= after and (i == 0 or t - ts[i - 1] > 1.5)]
    assert starts, f"{alertname} ({severity}) never started firing after {after}"
    return min(starts)


def locust_totals(run_dir: Path) -> tuple[int, int] | None:
    """(requests, failures) from Locust's own final summary (the `Aggregated` row it prints on
    exit), or None. Not locust_stats.csv: Locust writes that before the requests still in flight
    when it is stopped have ended, so it trails by about one request per user."""
    path = run_dir / "locust.stderr"
    if not path.is_file():
        return None
    rows = re.findall(r"^\s+Aggregated\s+(\d+)\s+(\d+)\(", path.read_text(errors="replace"), re.M)
    return (int(rows[-1][0]), int(rows[-1][1])) if rows else None
