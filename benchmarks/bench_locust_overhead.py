"""Locust throughput through our `LoadRun` against plain `locust --headless`, same locustfile,
same loopback server (the stand-in inference API, `reliability.load.stub_server`, own process).

    .venv/bin/python benchmarks/bench_locust_overhead.py [--users 20] [--seconds 10] [--rounds 2]
        [--workers 0]

Throughput is what the server answered (its own counter, sampled every 0.25 s) per second while
requests flowed, so both sides are measured the same way and start-up does not count.
Rounds alternate plain/harness to spread machine noise; reported:
each round's req/s and the ratio of the medians, harness / plain (1.0 = no overhead; our
per-request stats listener is the expected cost).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reliability.load import LoadRun  # noqa: E402
from reliability.tools import free_port  # noqa: E402

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Flat(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        self.client.post("/v1/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]})
"""


def served(url: str) -> int:
    return int(requests.get(f"{url}/_count", timeout=5).json()["served"])


class Meter:
    """Samples the server's counter while a run goes; the rate counts only the span in which
    requests flowed, so Locust's start-up (identical on both sides) does not dilute it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.wait(0.25):
            self.samples.append((time.monotonic(), served(self.url)))

    def __enter__(self) -> Meter:
        self.samples.append((time.monotonic(), served(self.url)))
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def rate(self) -> float:
        base = self.samples[0][1]
        moving = [(t, c) for t, c in self.samples if c > base]
        last = max(c for _, c in self.samples)
        first_t = moving[0][0]
        last_t = next(t for t, c in self.samples if c == last)
        return (last - moving[0][1]) / max(last_t - first_t, 1e-9)


def plain(url: str, locustfile: Path, users: int, seconds: int, workdir: Path) -> float:
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary"]
    cmd += [
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        url,
        "--exit-code-on-error",
        "0",
    ]
    with open(workdir / "plain.log", "ab") as log, Meter(url) as meter:
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=log, timeout=seconds + 60, check=False)
    return meter.rate()


def harness(url: str, locustfile: Path, users: int, seconds: int, workdir: Path, workers: int) -> float:
    before = served(url)
    start = time.monotonic()
    run = LoadRun(
        url, users=users, spawn_rate=users, duration_s=seconds, out_dir=workdir, locustfile=locustfile
    )
    run.workers = workers
    with run:
        run.wait(timeout=seconds + 60)
    return (served(url) - before) / (time.monotonic() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "reliability.load.stub_server", str(port)])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                served(url)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("stub server did not start") from None
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            locustfile = work / "flat_locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            p_rates, h_rates = [], []
            for i in range(args.rounds):
                p_rates.append(plain(url, locustfile, args.users, args.seconds, work))
                h_rates.append(
                    harness(url, locustfile, args.users, args.seconds, work / f"h{i}", args.workers)
                )
                print(
                    f"round {i + 1}: plain {p_rates[-1]:.0f} req/s, harness {h_rates[-1]:.0f} req/s",
                    flush=True,
                )
        p, h = statistics.median(p_rates), statistics.median(h_rates)
        print(f"median: plain {p:.0f} req/s, harness {h:.0f} req/s, ratio harness/plain {h / p:.3f}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
