"""Locust throughput through our `LoadRun` against plain `locust --headless`, same locustfile,
each against its own loopback server (the stand-in inference API, `reliability.load.stub_server`,
own process).

    .venv/bin/python benchmarks/bench_locust_overhead.py [--users 20] [--seconds 10] [--rounds 2]
        [--workers 0] [--alternate]

Throughput is what a server answered (its own counter, sampled every 0.25 s) per second while
requests flowed, measured the same way on both sides, so start-up and shutdown do not count.
(Until this version the harness side was divided by its whole wall time, start-up included, which
alone made it look 10-20% slower on an 8-10 s run.)

Paired rounds (default): plain and harness run at the same time, each with its own server (and,
as LoadRun does, each Locust in its own session, which autogroup scheduling treats as one CPU
share), and each round's rates are taken over the span in which both flowed. Both Locust processes
are CPU-bound, so the machine's other work slows both alike and the ratio shows what the harness
adds (our per-request stats listener, shape and stats writer). `--alternate` runs them one after
the other instead (the comparison this benchmark made before; on a machine shared with other work
its rates swing by 2x from round to round). Reported per round: req/s, CPU microseconds per
request of each side's Locust process(es) and its start-up (process started to first request);
at the end the median of the per-round ratios harness / plain (1.0 = no overhead), for throughput
and for CPU per request (plain / harness).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
_TICK = os.sysconf("SC_CLK_TCK")


def served(url: str) -> int:
    return int(requests.get(f"{url}/_count", timeout=5).json()["served"])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Side:
    """One Locust run's server and processes, sampled as (time, requests served, CPU seconds)."""

    url: str
    pids: Callable[[], list[int]] = lambda: []
    samples: list[tuple[float, int, float]] = field(default_factory=list)
    cpu: dict[int, float] = field(default_factory=dict)

    def sample(self, now: float) -> None:
        for pid in self.pids():
            value = cpu_seconds(pid)
            if value is not None:
                self.cpu[pid] = value
        self.samples.append((now, served(self.url), sum(self.cpu.values())))

    def flowing(self) -> tuple[float, float]:
        """From the first sample with new requests to the first with the final count."""
        base = self.samples[0][1]
        last = max(s[1] for s in self.samples)
        start = next(s[0] for s in self.samples if s[1] > base)
        return start, next(s[0] for s in self.samples if s[1] == last)

    def startup_s(self) -> float:
        """From the start of metering (the process being started) to the first requests."""
        return self.flowing()[0] - self.samples[0][0]

    def over(self, start: float, end: float) -> tuple[float, float]:
        """req/s and CPU microseconds per request between the samples at start and end."""
        a = next(s for s in self.samples if s[0] >= start)
        b = [s for s in self.samples if s[0] <= end][-1]
        n = max(b[1] - a[1], 1)
        return n / max(b[0] - a[0], 1e-9), (b[2] - a[2]) * 1e6 / n


@contextmanager
def metering(sides: list[Side]) -> Iterator[None]:
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.25):
            now = time.monotonic()
            for side in sides:
                side.sample(now)

    now = time.monotonic()
    for side in sides:
        side.sample(now)
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def plain(
    side: Side, locustfile: Path, users: int, seconds: int, workdir: Path
) -> Iterator[Callable[[], None]]:
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary"]
    cmd += [
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        side.url,
        "--exit-code-on-error",
        "0",
    ]
    with open(workdir / "plain.log", "ab") as log:
        # Own session, as LoadRun starts Locust: with autogroup scheduling a session is a CPU share.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        side.pids = lambda: [proc.pid]
        try:
            yield lambda: proc.wait(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@contextmanager
def harness(
    side: Side, locustfile: Path, users: int, seconds: int, workdir: Path, workers: int
) -> Iterator[Callable[[], None]]:
    run = LoadRun(
        side.url,
        users=users,
        spawn_rate=users,
        duration_s=seconds,
        out_dir=workdir,
        locustfile=locustfile,
        workers=workers,
    )
    with run:
        side.pids = lambda: [p.pid for p in run.procs]
        yield lambda: run.wait(timeout=seconds + 60)


@contextmanager
def stub_server() -> Iterator[str]:
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
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def paired_round(
    urls: list[str], args: argparse.Namespace, locustfile: Path, work: Path
) -> list[tuple[float, float]]:
    p, h = Side(urls[0]), Side(urls[1])
    with (
        metering([p, h]),
        plain(p, locustfile, args.users, args.seconds, work) as wait_p,
        harness(h, locustfile, args.users, args.seconds, work, args.workers) as wait_h,
    ):
        wait_p()
        wait_h()
    (p0, p1), (h0, h1) = p.flowing(), h.flowing()
    start, end = max(p0, h0), min(p1, h1)
    return [(*p.over(start, end), p.startup_s()), (*h.over(start, end), h.startup_s())]


def alternate_round(
    urls: list[str], args: argparse.Namespace, locustfile: Path, work: Path
) -> list[tuple[float, float]]:
    out = []
    for kind in ("plain", "harness"):
        side = Side(urls[0])
        if kind == "plain":
            ctx = plain(side, locustfile, args.users, args.seconds, work)
        else:
            ctx = harness(side, locustfile, args.users, args.seconds, work, args.workers)
        with metering([side]), ctx as wait:
            wait()
        out.append((*side.over(*side.flowing()), side.startup_s()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--alternate", action="store_true", help="one after the other instead of side by side")
    args = ap.parse_args()
    with stub_server() as url_a, stub_server() as url_b, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        locustfile = work / "flat_locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        rate_ratios, cpu_ratios = [], []
        for i in range(args.rounds):
            round_dir = work / f"r{i}"
            round_dir.mkdir()
            # Swap the servers each round, so neither side keeps a server that happens to be faster.
            urls = [url_a, url_b] if i % 2 == 0 else [url_b, url_a]
            measure = alternate_round if args.alternate else paired_round
            (p_rate, p_cpu, p_up), (h_rate, h_cpu, h_up) = measure(urls, args, locustfile, round_dir)
            rate_ratios.append(h_rate / p_rate)
            cpu_ratios.append(p_cpu / h_cpu)
            print(
                f"round {i + 1}: plain {p_rate:.0f} req/s ({p_cpu:.0f} us CPU/req, start-up {p_up:.1f} s), "
                f"harness {h_rate:.0f} req/s ({h_cpu:.0f} us CPU/req, start-up {h_up:.1f} s), "
                f"ratio {rate_ratios[-1]:.3f}",
                flush=True,
            )
    mode = "alternate" if args.alternate else "paired"
    print(
        f"median of {args.rounds} {mode} rounds: ratio harness/plain {statistics.median(rate_ratios):.3f} "
        f"(throughput), {statistics.median(cpu_ratios):.3f} (CPU per request, plain/harness)"
    )


if __name__ == "__main__":
    main()
