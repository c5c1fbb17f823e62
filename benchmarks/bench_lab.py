"""The embedded lab's budget: start-to-ready time, idle memory, and sustained predictions/s through
the global gateway, with the time per hop (node alone, region gateway, global gateway) measured in
the same run so the hops are reported as ratios against the node alone.

    .venv/bin/python benchmarks/bench_lab.py [--isolation auto] [--users 20] [--seconds 10] [--starts 2]

Load is plain `locust --headless` (FastHttpUser, no wait) in its own process beside the lab, on
the same 2 cores. Targets from the issue: start < 10 s, idle memory < 1 GB, >= 2,000 predictions/s
through the global gateway with p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reliability.lab import Lab, LabConfig  # noqa: E402

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Flat(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        self.client.post("/v1/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]})
"""


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB; PSS shares the pages of common libraries fairly between processes."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def lab_pids(state_file: Path) -> list[int]:
    state = json.loads(state_file.read_text())
    pids = [c["pid"] for c in state["components"] if c.get("pid")]
    return [*pids, state["supervisor"]["pid"], state["prometheus"]["pid"]]


def locust(host: str, users: int, seconds: int, workdir: Path) -> tuple[float, float, int]:
    """(requests/s, p99 ms, failures) of a headless locust run against host."""
    lf = workdir / "locustfile.py"
    lf.write_text(LOCUSTFILE)
    prefix = workdir / f"run{time.monotonic_ns()}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(lf),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--host",
            host,
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "ERROR",
        ],
        check=False,
        capture_output=True,
        timeout=seconds + 60,
    )
    with open(f"{prefix}_stats.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    return float(row["Requests/s"]), float(row["99%"]), int(row["Failure Count"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--starts", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-"))

    starts = []
    for i in range(args.starts):
        t0 = time.monotonic()
        with Lab(
            LabConfig(),
            tmp / f"start{i}",
            isolation=args.isolation,
            slo_files=[REPO / "slos" / "inference-api.yaml"],
        ):
            starts.append(time.monotonic() - t0)
    print(
        f"start to all-ready: {', '.join(f'{s:.2f}s' for s in starts)}",
        f"(median {statistics.median(starts):.2f}s)",
    )

    with Lab(
        LabConfig(), tmp / "lab", isolation=args.isolation, slo_files=[REPO / "slos" / "inference-api.yaml"]
    ) as lab:
        time.sleep(5)
        pids = lab_pids(lab.state_file)
        mem = [memory_kib(p) for p in pids]
        rss, pss = sum(m[0] for m in mem) / 1024, sum(m[1] for m in mem) / 1024
        print(
            f"idle memory of {len(pids)} processes ({lab.isolation} isolation):",
            f"RSS {rss:.0f} MiB, PSS {pss:.0f} MiB",
        )

        state = json.loads(lab.state_file.read_text())
        comp = {c["name"]: c for c in state["components"]}
        hops = {
            "node alone": f"http://{comp['node/us-east-1']['host']}:{comp['node/us-east-1']['port']}",
            "region gateway (+1 hop)": f"http://{comp['region-gateway/us-east']['host']}:{comp['region-gateway/us-east']['port']}",
            "global gateway (+2 hops)": lab.endpoint,
        }
        results = {}
        for name, url in hops.items():
            results[name] = locust(url, args.users, args.seconds, tmp)
        base = results["node alone"][0]
        for name, (rps, p99, failures) in results.items():
            print(
                f"{name:26s} {rps:8.0f} req/s  p99 {p99:5.0f} ms  failures {failures}  ratio {rps / base:.2f}"
            )


if __name__ == "__main__":
    main()
