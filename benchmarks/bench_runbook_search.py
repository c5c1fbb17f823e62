"""Runbook search latency over 1,000 generated runbooks.

    .venv/bin/python benchmarks/bench_runbook_search.py [--runbooks 1000] [--queries 200]

Reports loading, index build and per-query p50/p99 for the BM25F index, each next to a
baseline measured in the same run: a plain linear substring scan over the same texts (what
`grep -il` would do). Also the wall time of `reliability runbook search` as a process,
against `python -c "import typer"` (the floor for any Typer CLI).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reliability.runbooks import SearchIndex, load_runbooks

WORDS = [
    "gpu",
    "node",
    "region",
    "gateway",
    "store",
    "replication",
    "lag",
    "latency",
    "error",
    "budget",
    "burn",
    "canary",
    "model",
    "version",
    "rollback",
    "drain",
    "cordon",
    "xid",
    "ecc",
    "nvlink",
    "bus",
    "partition",
    "failover",
    "failback",
    "capacity",
    "saturation",
    "queue",
    "timeout",
    "retry",
    "circuit",
    "breaker",
    "scrape",
    "target",
    "prometheus",
    "alert",
    "disk",
    "memory",
    "cpu",
    "network",
    "dns",
    "tls",
    "certificate",
    "expiry",
    "kafka",
    "consumer",
    "offset",
    "batch",
    "worker",
    "scheduler",
    "cache",
    "eviction",
    "hit",
    "ratio",
]
COMPONENTS = ["GPU", "Region", "Store", "Cache", "Queue", "Gateway", "Scheduler", "Kafka", "Disk", "Cert"]
SYMPTOMS = ["Down", "LagHigh", "ErrorsHigh", "Saturated", "Flapping", "Expiring", "Slow", "Full"]


def generate(directory: Path, n: int, rng: random.Random) -> list[str]:
    alerts: list[str] = []
    for i in range(n):
        alert = f"{rng.choice(COMPONENTS)}{rng.choice(SYMPTOMS)}{i}"
        alerts.append(alert)
        body_words = " ".join(rng.choices(WORDS, k=300))
        body = (
            f"## Meaning\n\n{body_words[:600]}\n\n## Impact\n\n{body_words[600:900]}\n\n"
            f'## Diagnosis\n\n```promql\nup{{job="x{i}"}} == 0\n```\n\n{body_words[900:1500]}\n\n'
            f"## Mitigation\n\n1. {body_words[1500:1600]}\n2. {body_words[1600:]}\n"
        )
        title = " ".join(rng.choices(WORDS, k=5))
        tags = ", ".join(rng.choices(WORDS, k=3))
        (directory / f"rb-{i:04d}.md").write_text(
            f"---\nid: rb-{i:04d}\ntitle: {title}\nalerts: [{alert}]\nseverity: warning\n"
            f"tags: [{tags}]\nowners: [team]\nlast_reviewed: 2026-01-01\n---\n{body}",
            encoding="utf-8",
        )
    return alerts


def make_queries(alerts: list[str], n: int, rng: random.Random) -> list[tuple[str, str | None]]:
    """(query, the alert whose runbook must come first, or None for keyword queries)."""
    queries: list[tuple[str, str | None]] = []
    for i in range(n):
        kind = i % 3
        a = rng.choice(alerts)
        if kind == 0:
            queries.append((a, a))
        elif kind == 1:  # a typo: two adjacent letters swapped
            j = rng.randrange(1, len(a) - 2)
            queries.append((a[:j] + a[j + 1] + a[j] + a[j + 2 :], a))
        else:
            queries.append((" ".join(rng.choices(WORDS, k=3)), None))
    return queries


def timed(fn: Callable[[], object], repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def cli_wall(args: list[str], runs: int) -> float:
    return statistics.median(
        timed(lambda: subprocess.run(args, capture_output=True, check=False, timeout=60), runs)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runbooks", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--cli-runs", type=int, default=5)
    opts = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        alerts = generate(directory, opts.runbooks, rng)
        queries = make_queries(alerts, opts.queries, rng)

        t_read = min(timed(lambda: [p.read_text() for p in sorted(directory.glob("*.md"))], 3))
        t_load = min(timed(lambda: load_runbooks(directory), 3))
        runbooks = load_runbooks(directory)
        t_build = min(timed(lambda: SearchIndex.build(runbooks), 3))
        index = SearchIndex.build(runbooks)
        texts = [
            (rb.id, f"{rb.title} {' '.join(rb.alerts)} {' '.join(rb.meta.tags)} {rb.body}".lower())
            for rb in runbooks
        ]

        def scan(q: str) -> list[str]:
            words = q.lower().split()
            hits = [(sum(text.count(w) for w in words), rid) for rid, text in texts]
            return [rid for score, rid in sorted(hits, reverse=True)[:5] if score]

        bm25 = [timed(lambda q=q: index.search(q))[0] for q, _ in queries]
        base = [timed(lambda q=q: scan(q))[0] for q, _ in queries]
        alert_of = {rb.id: rb.alerts[0] for rb in runbooks}

        def first_is(q: str, alert: str) -> bool:
            res = index.search(q, 1)
            return bool(res) and alert_of[res[0].id] == alert

        exact = [(q, a) for q, a in queries if a is not None and q == a]
        typos = [(q, a) for q, a in queries if a is not None and q != a]
        exact_hits = sum(first_is(q, a) for q, a in exact)
        typo_hits = sum(first_is(q, a) for q, a in typos)

        cli = [sys.executable, "-m", "reliability.cli", "runbook", "search", "--dir", str(directory)]
        os.environ["RELIABILITY_CACHE_DIR"] = str(directory / ".cache")  # never the user's cache
        t_cold = timed(lambda: subprocess.run([*cli, "GPUDownn"], capture_output=True, timeout=60))[0]
        t_cli = cli_wall([*cli, "GPUDownn", "drain"], opts.cli_runs)
        t_floor = cli_wall([sys.executable, "-c", "import typer"], opts.cli_runs)

    ms = 1000.0
    print(f"runbooks: {opts.runbooks}, queries: {opts.queries} (alert names, typos, keywords)")
    print(f"read files (baseline)        {t_read * ms:8.1f} ms")
    print(f"load (parse + validate)      {t_load * ms:8.1f} ms   x{t_load / t_read:.1f} of reading")
    print(f"index build                  {t_build * ms:8.1f} ms")
    for name, q in (("p50", 50), ("p99", 99)):
        b, s = pct(bm25, q), pct(base, q)
        print(f"query {name}: bm25f {b * ms:7.3f} ms   substring scan {s * ms:7.3f} ms   ratio {b / s:.2f}")
    print(f"exact alert name: its runbook ranked first {exact_hits}/{len(exact)}")
    print(f"alert name with two letters swapped: its runbook ranked first {typo_hits}/{len(typos)}")
    print(f"CLI `runbook search` wall, first run (builds the index cache): {t_cold * ms:.0f} ms")
    print(
        f"CLI `runbook search` wall, cached (median): {t_cli * ms:.0f} ms, "
        f"`import typer` floor {t_floor * ms:.0f} ms"
        f"   ratio {t_cli / t_floor:.2f}"
    )


if __name__ == "__main__":
    main()
