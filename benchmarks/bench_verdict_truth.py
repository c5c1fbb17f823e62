"""Verdict truth, the long version: every shipped scenario, several times, fault timings drawn at
random; each measurement against the lab's ground truth, as a table.

    .venv/bin/python benchmarks/bench_verdict_truth.py [--rounds 3] [--seed N] [scenario ...]

Ground truth (tests/gameday/truth.py): TTD from Prometheus' raw alert evaluations; RTO from the
event that ends each fault's effect (a rollback, a clear, an ejection, a removed node); capacity RTO
from `replacement_ready`; RPO from the store's acknowledgements; the availability budget's counts
from Locust's own aggregate. The CI version (tests/gameday/test_verdict_truth.py) runs each scenario
once and fails on an error over 1 s (1% for counts).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.gameday.truth import SHIPPED, Truth, run_with_truth  # noqa: E402


def rows(t: Truth) -> list[tuple[str, str, float | None, float | None]]:
    """(scenario, measurement, truth, measured) of one run."""
    r = t.result
    out: list[tuple[str, str, float | None, float | None]] = []
    for severity, truth in t.alert_truth.items():
        measured = next((d["ttd_seconds"] for d in r["detection"] if d["severity"] == severity), None)
        out.append((t.name, f"ttd ({severity})", truth, measured))
    for slo, truth in t.rto_truth.items():
        measured = next((s["rto_seconds"] for s in r["slis"] if s["slo"] == slo), None)
        out.append((t.name, f"rto ({slo})", truth, measured))
        if slo in t.rto_truth_latest:  # the effect ends over an interval: its latest end too
            out.append((t.name, f"rto ({slo}, in-flight end)", t.rto_truth_latest[slo], measured))
    if t.capacity_truth is not None:
        out.append((t.name, "capacity rto", t.capacity_truth, (r.get("capacity") or {}).get("rto_seconds")))
        out.append((t.name, "capacity rto (Prometheus)", t.capacity_truth,
                    (r.get("capacity") or {}).get("rto_prometheus_seconds")))  # fmt: skip
    if t.rpo_truth is not None:
        out.append((t.name, "rpo", t.rpo_truth, (r.get("rpo") or {}).get("rpo_seconds")))
    if t.locust_totals is not None and t.client_totals is not None:
        out.append(
            (t.name, "requests (Locust's count)", float(t.locust_totals[0]), float(t.client_totals[0]))
        )
        out.append(
            (t.name, "failures (Locust's count)", float(t.locust_totals[1]), float(t.client_totals[1]))
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="*", default=SHIPPED)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 30))
    args = ap.parse_args()
    table: list[tuple[str, str, float | None, float | None]] = []
    statuses: list[tuple[str, str, str]] = []
    for rnd in range(args.rounds):
        for name in args.scenarios:
            rng = random.Random(f"{args.seed}-{rnd}-{name}")
            with tempfile.TemporaryDirectory(prefix="truth-") as tmp:
                t = run_with_truth(name, Path(tmp), rng)
            statuses.append((name, t.result["status"], t.expect.status))
            table += rows(t)
            print(f"round {rnd + 1} {name}: {t.result['status']} {t.timings}", flush=True)
    print(f"\nseed {args.seed}; {args.rounds} round(s)\n")
    print(f"{'scenario':32} {'measurement':30} {'truth':>9} {'measured':>9} {'error':>8}")
    worst: dict[str, float] = {}
    for name, what, truth, measured in table:
        err = None if truth is None or measured is None else measured - truth
        kind = what.split(" (")[0]
        if err is not None:
            rel = abs(err) / max(truth or 1.0, 1.0) if "Locust" in what else abs(err)
            worst[kind] = max(worst.get(kind, 0.0), rel)
        shown = "n/a" if err is None else f"{err:+.2f}"
        print(f"{name:32} {what:30} {truth if truth is not None else float('nan'):9.2f} "
              f"{measured if measured is not None else float('nan'):9.2f} {shown:>8}")  # fmt: skip
    print("\nworst error per measurement (seconds; counts: relative):")
    for kind, value in sorted(worst.items()):
        print(f"  {kind:28} {value:.3f}")
    wrong = [s for s in statuses if s[1] != s[2]]
    print(
        f"\nverdicts as expected: {len(statuses) - len(wrong)}/{len(statuses)}"
        + (f"; not: {wrong}" if wrong else "")
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
