"""Harness overhead of a game day: wall time against the sum of its phases.

    .venv/bin/python benchmarks/bench_gameday_overhead.py [--scenario scenarios/gpu-node-loss.yaml]
        [--baseline 10] [--hold 10] [--recovery-max 30] [--recovered-hold 3]

Runs the scenario once (phases shortened as given) in a temporary run directory and reads the
phase marks of its timeline. Reported ratios (both measured in this run):
- wall / phases: everything the user waits for (lab start, reports) against the phases the
  scenario asks for (baseline + fault hold + the recovery actually observed);
- (wall - target start/stop) / phases: the harness' own overhead (aim: <= 1.15).
Locust throughput through the harness vs. plain `locust` is in bench_locust_overhead.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reliability.chaos.jsonl import read_records  # noqa: E402
from reliability.gameday import run_gameday  # noqa: E402
from reliability.scenario import resolve  # noqa: E402


def shortened(scenario: Path, tmp: Path, args: argparse.Namespace) -> Path:
    doc = yaml.safe_load(scenario.read_text())
    doc["phases"] = {
        "baseline": args.baseline,
        "fault_hold": args.hold,
        "recovery_max": args.recovery_max,
        "recovered_hold": args.recovered_hold,
    }
    # The copy lives elsewhere: every path the scenario names is made absolute.
    doc["slos"] = [str(resolve(scenario, s)) for s in doc["slos"]]
    doc["experiment"]["file"] = str(resolve(scenario, doc["experiment"]["file"]))
    for section, key in (("target", "config"), ("target", "state_file"), ("load", "locustfile")):
        if doc.get(section, {}).get(key):
            doc[section][key] = str(resolve(scenario, doc[section][key]))
    out = tmp / scenario.name
    out.write_text(yaml.safe_dump(doc))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "gpu-node-loss.yaml")
    ap.add_argument("--baseline", type=float, default=10)
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--recovery-max", type=float, default=30)
    ap.add_argument("--recovered-hold", type=float, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gameday-") as tmp:
        path = shortened(args.scenario.resolve(), Path(tmp), args)
        t0 = time.monotonic()
        outcome = run_gameday(path, out=Path(tmp) / "run")
        wall = time.monotonic() - t0
        marks = {
            r["name"]: r["mono"]
            for r in read_records(outcome.run_dir / "timeline.jsonl")
            if r.get("event") == "gameday_phase"
        }
    needed = ("setup", "baseline", "chaos", "recovery", "observed", "end")
    if any(k not in marks for k in needed):
        print(f"run did not complete its phases (exit {outcome.exit_code}): {outcome.error}")
        return 1
    phases = marks["observed"] - marks["baseline"]
    asked = args.baseline + args.hold
    target = (marks["baseline"] - marks["setup"]) + (wall - (marks["end"] - t0))
    report = {
        "scenario": args.scenario.name,
        "exit_code": outcome.exit_code,
        "wall_s": round(wall, 2),
        "phases_s": round(phases, 2),
        "baseline_plus_hold_asked_s": asked,
        "setup_s": round(marks["baseline"] - marks["setup"], 2),
        "chaos_phase_s": round(marks["recovery"] - marks["chaos"], 2),
        "recovery_observed_s": round(marks["observed"] - marks["recovery"], 2),
        "after_phases_s": round(wall - (marks["observed"] - t0), 2),
        "wall_over_phases": round(wall / phases, 3),
        "harness_over_phases": round((wall - target) / phases, 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
