"""Synthetic run directories for the report tests: the files a game day leaves, with figures that
follow from the parameters (so the expected measurements are known exactly)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

T0 = 1_763_856_000.0
ERROR_503 = "HTTPError('503 Server Error: Service Unavailable')"

SLO_FILE = """\
version: reliability/v1
service: llm-api
period: 1h
min_window: 1s
slos:
  - name: requests-availability
    objective: 99
    client_sli: availability
    alert_windows:
      - {severity: page, long: 30s, short: 5s, factor: 10}
    sli:
      events:
        error_query: >-
          sum(rate(haproxy_frontend_http_responses_total{proxy="inference",code="5xx"}[{{.window}}]))
        total_query: sum(rate(haproxy_frontend_http_requests_total{proxy="inference"}[{{.window}}]))
    alerting:
      name: LLMHighErrorRate
  - name: ttft
    objective: 99
    alert_windows:
      - {severity: page, long: 30s, short: 5s, factor: 10}
    sli:
      latency:
        metric: vllm:time_to_first_token_seconds
        threshold_seconds: 0.5
    alerting:
      name: LLMSlowFirstToken
"""


@dataclass(frozen=True)
class Truth:
    inject_s: float  # after T0
    outage_s: int  # bad seconds from the first full second after injection
    detect_delay_s: float
    rto_max: float
    lost_writes: int = 0
    write_interval_s: float = 0.2
    slow_s: int = 0  # seconds of slow first tokens (TTFT 900 ms) from the first bad second


def write_run(root: Path, truth: Truth, seconds: int = 90, rps: int = 20, **objectives: Any) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "series").mkdir(exist_ok=True)
    (root / "slos").mkdir(exist_ok=True)
    (root / "slos" / "llm.yaml").write_text(SLO_FILE)
    scenario = {
        "name": "gpu-node-loss",
        "description": "One GPU node dies.",
        "slos": ["slos/llm.yaml"],
        "experiment": {"file": "../experiments/gpu-node-loss.yaml"},
        "phases": {"baseline": "30s", "fault_hold": "20s", "recovery_max": "60s", "recovered_hold": "5s"},
        "objectives": {
            "rto_max": truth.rto_max,
            "ttd_max": 30,
            "rpo_max": 5,
            "expected_alerts": ["GPUNodeDown"],
            "max_budget_spent": 0.5,
            "runbooks": ["gpu-node-down"],
            **objectives,
        },
    }
    (root / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    (root / "run.json").write_text(
        json.dumps({"scenario": "gpu-node-loss", "started_ts": T0 - 5, "ended_ts": T0 + seconds + 5})
    )
    inject = T0 + truth.inject_s
    end = inject + 20
    timeline = [
        {"ts": inject - 1, "event": "method_start", "phase": "method"},
        {"ts": inject, "event": "activity_start", "phase": "method", "type": "action", "name": "kill-node"},
        {"ts": end, "event": "rollback_start", "phase": "rollback"},
    ]
    (root / "timeline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in timeline) + '{"torn')
    first_bad = math.ceil(truth.inject_s)
    rows = []
    for i in range(seconds):
        bad = first_bad <= i < first_bad + truth.outage_s
        slow = first_bad <= i < first_bad + truth.slow_s
        fails = rps // 2 if bad else 0
        ttft = 900.0 if slow else 60.0
        rows.append(
            {
                "v": 2,
                "ts": T0 + i,
                "requests": rps,
                "failures": fails,
                "last_failure_ts": T0 + i + 0.5 if fails else None,
                "codes": {"200": rps - fails, **({"503": fails} if fails else {})},
                "e2e_ms": {"400.0": rps - fails, **({"1000.0": fails} if fails else {})},
                "ttft_ms": {str(ttft): rps - fails},
                "itl_ms": {"20.0": 10 * rps},
                "judged": 2,
                "wrong": 0,
                "good": rps - fails,
                "output_tokens": 10 * rps,
                "rps": rps,
                "p50_ms": 400,
                "p95_ms": 400,
                "p99_ms": 1000 if fails else 400,
            }
        )
    (root / "load_stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    alerts = pd.DataFrame(
        [
            {
                "timestamp": inject + truth.detect_delay_s - 3,
                "alertname": "GPUNodeDown",
                "alertstate": "pending",
                "severity": "critical",
            },
            *(
                {
                    "timestamp": inject + truth.detect_delay_s + k * 0.25,
                    "alertname": "GPUNodeDown",
                    "alertstate": "firing",
                    "severity": "critical",
                }
                for k in range(40)
            ),
        ]
    )
    alerts.to_csv(root / "series" / "alerts.csv", index=False)
    (root / "series" / "range.json").write_text(json.dumps({"start": T0 - 5, "end": T0 + seconds}))
    sli = [
        {
            "timestamp": T0 + i,
            "__name__": "slo:sli_error:ratio_rate5s",
            "sloth_slo": "requests-availability",
            "value": 0.5 if first_bad <= i < first_bad + truth.outage_s else 0.0,
        }
        for i in range(seconds)
    ]
    pd.DataFrame(sli).to_csv(root / "series" / "sli_error_ratio.csv", index=False)
    regions = [
        {"timestamp": T0 + i, "server": region, "code": code, "value": value}
        for i in range(seconds)
        for region in ("us-east", "eu-west")
        for code, value in (
            ("2xx", rps / 2 - (rps / 4 if first_bad <= i < first_bad + truth.outage_s else 0)),
            ("5xx", rps / 4 if first_bad <= i < first_bad + truth.outage_s else 0.0),
        )
    ]
    pd.DataFrame(regions).to_csv(root / "series" / "requests_by_region.csv", index=False)
    n = 200
    writes = [
        {"kind": "write", "seq": s, "ts": inject - (n - s) * truth.write_interval_s, "acked": True}
        for s in range(n)
    ]
    survivors = {"kind": "survivors", "ts": end + 5, "seqs": list(range(n - truth.lost_writes))}
    (root / "canary_writes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*writes, survivors]))


@dataclass(frozen=True)
class Partition:
    """A partition game day of eu-west: when things happen, in seconds after T0."""

    inject_s: float = 20.0
    fault_end_s: float = 40.0
    failover_s: float = 22.0
    failback_s: float = 42.0
    seconds: int = 90
    rps: int = 20
    store: bool = False  # the store's primary is in eu-west: replication lag and lost writes
    lost_writes: int = 3


PARTITION_SCENARIO: dict[str, Any] = {
    "name": "region-partition",
    "description": "eu-west is cut off; traffic must fail over to us-east and back.",
    "slos": ["slos/llm.yaml"],
    "experiment": {"file": "../experiments/region-partition.yaml"},
    "phases": {"baseline": "20s", "fault_hold": "20s", "recovery_max": "60s", "recovered_hold": "5s"},
    "objectives": {
        "rto_max": 30,
        "ttd_max": 20,
        "expected_alerts": ["RegionUnavailable", "RegionFailoverActive"],
        "runbooks": ["region-unavailable", "inference-availability"],
    },
    "guardrails": [{"name": "error-ratio-over-50pct", "query": "vector(0)", "above": 0.5, "for": "20s"}],
}


def _alert_rows(name: str, severity: str, start: float, end: float, **labels: str) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": start + k * 0.25,
            "alertname": name,
            "alertstate": "firing",
            "severity": severity,
            **labels,
        }
        for k in range(int((end - start) / 0.25))
    ]


def write_partition_run(root: Path, p: Partition = Partition()) -> None:
    """A region-partition run: failover to us-east at `failover_s`, back at `failback_s`; two
    expected alerts and one false page (GPUNodeDown for a node that was only unreachable)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "series").mkdir(exist_ok=True)
    (root / "slos").mkdir(exist_ok=True)
    (root / "slos" / "llm.yaml").write_text(SLO_FILE)
    scenario = json.loads(json.dumps(PARTITION_SCENARIO))
    if p.store:
        scenario["objectives"]["rpo_max"] = 5
    (root / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    inject, end = T0 + p.inject_s, T0 + p.fault_end_s
    (root / "run.json").write_text(
        json.dumps(
            {
                "scenario": "region-partition",
                "started_ts": T0 - 5,
                "ended_ts": T0 + p.seconds + 5,
                "host": "gameday-host",
                "versions": {
                    "reliability-harness": "0.1.0",
                    "locust": "2.47.0",
                    "prometheus": "2.42.0",
                    "model": "tiny-chat 1.0",
                },
            }
        )
    )
    timeline = [
        {"ts": inject - 3, "event": "experiment_start", "phase": "experiment", "title": "Partition eu-west"},
        {"ts": inject - 2, "event": "hypothesis", "phase": "hypothesis", "met": True},
        {"ts": inject - 1, "event": "method_start", "phase": "method"},
        {"ts": inject, "event": "activity_start", "phase": "method", "type": "action", "name": "partition"},
        {"ts": inject + 0.001, "event": "fault_injected", "phase": "method", "fault": "partition_region",
         "args": {"region": "eu-west"}, "returned": {"ts": inject + 0.05}},
        {"ts": inject + 0.06, "event": "activity_end", "phase": "method", "type": "action",
         "name": "partition", "status": "succeeded", "output": {"ledger_id": "abc"}},
        {"ts": end, "event": "rollback_start", "phase": "rollback"},
        {"ts": end + 0.01, "event": "activity_start", "phase": "rollback", "type": "action", "name": "heal"},
        {"ts": end + 0.02, "event": "fault_cleared", "phase": "rollback", "undo": "heal_partition",
         "args": {"region": "eu-west"}, "returned": {"ts": end + 0.05}},
        {"ts": end + 0.06, "event": "activity_end", "phase": "rollback", "type": "action", "name": "heal",
         "status": "succeeded", "output": None},
        {"ts": end + 0.07, "event": "rollback_end", "phase": "rollback"},
        {"ts": end + 1, "event": "hypothesis", "phase": "hypothesis", "met": True},
        {"ts": end + 1.5, "event": "experiment_end", "phase": "experiment", "status": "completed"},
    ]  # fmt: skip
    (root / "timeline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in timeline))
    iso = lambda ts: pd.Timestamp(ts, unit="s").strftime("%Y-%m-%dT%H:%M:%S.%f")  # noqa: E731
    probe = {"activity": {"name": "service-answers", "type": "probe"}, "status": "succeeded",
             "tolerance_met": True, "output": 200}  # fmt: skip
    journal = {
        "status": "completed",
        "deviated": False,
        "chaoslib-version": "1.44.0",
        "experiment": {"title": "Partition eu-west"},
        "steady_states": {
            "before": {"steady_state_met": True, "probes": [{**probe, "start": iso(inject - 2)}]},
            "after": {"steady_state_met": True, "probes": [{**probe, "start": iso(end + 1)}]},
            "during": [],
        },
        "run": [{"activity": {"name": "partition", "type": "action"}, "status": "succeeded",
                 "start": iso(inject), "end": iso(inject + 0.06), "duration": 0.06,
                 "output": {"ledger_id": "abc"}}],
        "rollbacks": [{"activity": {"name": "heal", "type": "action"}, "status": "succeeded",
                       "start": iso(end + 0.01), "end": iso(end + 0.06), "duration": 0.05, "output": None}],
    }  # fmt: skip
    (root / "journal.json").write_text(json.dumps(journal))
    nodes = [(f"{region}-{i}", region) for region in ("us-east", "eu-west") for i in (1, 2, 3)]
    events: list[dict[str, Any]] = [
        {"ts": T0 - 10, "event": "node_state", "node": n, "region": r, "ready": True} for n, r in nodes
    ]
    events += [
        {"ts": inject + 0.01, "event": "partition_applied", "region": "eu-west"},
        {"ts": T0 + p.failover_s, "event": "region_failover", "region": "eu-west"},
        {"ts": end + 0.03, "event": "partition_removed", "region": "eu-west"},
        {"ts": T0 + p.failback_s, "event": "region_failback", "region": "eu-west"},
    ]
    events += [{"ts": T0 + 23, "event": "node_state", "node": n, "region": r, "ready": False}
               for n, r in nodes if r == "eu-west"]  # fmt: skip
    events += [{"ts": T0 + 43, "event": "node_state", "node": n, "region": r, "ready": True}
               for n, r in nodes if r == "eu-west"]  # fmt: skip
    (root / "events.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in sorted(events, key=lambda e: e["ts"]))
    )
    rows = []
    for i in range(p.seconds):
        t = T0 + i
        failing = p.inject_s <= i < p.failover_s  # requests pinned to eu-west fail until failover
        fails = p.rps // 4 if failing else 0
        rows.append(
            {
                "v": 2, "ts": t, "users": 10, "requests": p.rps, "failures": fails,
                "codes": {"200": p.rps - fails, **({"503": fails} if fails else {})},
                "first_failure_ts": t + 0.1 if fails else None, "last_failure_ts": t + 0.6 if fails else None,
                "e2e_ms": {"400.0": p.rps - fails, **({"1000.0": fails} if fails else {})},
                "ttft_ms": {"60.0": p.rps - fails - 2, "250.0": 2} if p.rps - fails > 2 else {},
                "itl_ms": {"20.0": 9 * p.rps, "45.0": p.rps},
                "tpot_ms": {"22.0": p.rps - fails},
                "prompt_tokens": 100 * p.rps, "output_tokens": 10 * p.rps,
                "judged": 2, "wrong": 0, "last_wrong_ts": None, "good": p.rps - fails,
                "errors": {f"chat: {ERROR_503}": fails} if fails else {},
                "rps": p.rps, "p50_ms": 400.0, "p95_ms": 1000.0 if fails else 400.0,
                "p99_ms": 1000.0 if fails else 400.0,
            }
        )  # fmt: skip
    (root / "load_stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    alerts = [
        *_alert_rows(
            "RegionFailoverActive", "warning", T0 + p.failover_s + 2, T0 + p.failback_s + 2, region="eu-west"
        ),
        *_alert_rows("RegionUnavailable", "critical", inject + 5, end + 3, region="eu-west"),
        *_alert_rows("GPUNodeDown", "critical", inject + 7, end + 1, node="eu-west-1"),
    ]  # fmt: skip
    pd.DataFrame(alerts).to_csv(root / "series" / "alerts.csv", index=False)
    (root / "series" / "range.json").write_text(json.dumps({"start": T0 - 5, "end": T0 + p.seconds}))
    sli = []
    for i in range(p.seconds):
        for window, lag in (("5s", 5), ("30s", 30)):
            bad = p.inject_s <= i < p.failover_s + lag
            sli.append({"timestamp": T0 + i, "__name__": f"slo:sli_error:ratio_rate{window}",
                        "sloth_slo": "requests-availability", "sloth_window": window,
                        "value": 0.25 * min(1.0, 5 / lag) if bad else 0.0})  # fmt: skip
    pd.DataFrame(sli).to_csv(root / "series" / "sli_error_ratio.csv", index=False)
    traffic = []
    for i in range(p.seconds):
        failed_over = p.failover_s <= i < p.failback_s
        partitioned = p.inject_s <= i < p.failover_s
        for region in ("us-east", "eu-west"):
            if region == "us-east":
                ok = p.rps if failed_over else p.rps / 2
                bad = 0.0
            else:
                ok = 0.0 if (failed_over or partitioned) else p.rps / 2
                bad = p.rps / 4 if partitioned else 0.0
            traffic += [{"timestamp": T0 + i, "server": region, "code": "2xx", "value": ok},
                        {"timestamp": T0 + i, "server": region, "code": "5xx", "value": bad}]  # fmt: skip
    pd.DataFrame(traffic).to_csv(root / "series" / "requests_by_region.csv", index=False)
    ready = [
        {"timestamp": T0 + i, "label_topology_kubernetes_io_region": region,
         "value": 0 if region == "eu-west" and 24 <= i < 44 else 3}
        for i in range(p.seconds) for region in ("us-east", "eu-west")
    ]  # fmt: skip
    pd.DataFrame(ready).to_csv(root / "series" / "ready_nodes_by_region.csv", index=False)
    pd.DataFrame({"timestamp": [T0 + i for i in range(p.seconds)], "value": [0.06] * p.seconds}).to_csv(
        root / "series" / "ttft_p95.csv", index=False
    )
    pd.DataFrame({"timestamp": [T0 + i for i in range(p.seconds)], "value": [0.025] * p.seconds}).to_csv(
        root / "series" / "itl_p95.csv", index=False
    )
    if p.store:
        lag = [{"timestamp": T0 + i, "region": "us-east", "value": 0.5 if i < p.inject_s else 0.0}
               for i in range(p.seconds)]  # fmt: skip
        pd.DataFrame(lag).to_csv(root / "series" / "store_lag.csv", index=False)
        n = 200
        writes = [{"kind": "write", "seq": s, "ts": inject - (n - s) * 0.1, "acked": True} for s in range(n)]
        survivors = {"kind": "survivors", "ts": end + 5, "seqs": list(range(n - p.lost_writes))}
        (root / "canary_writes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*writes, survivors]))
