"""One GPU node of the LLM twin alone: streamed tokens/s, concurrent streams, and the engine's own
inter-token latency against what the clients saw, measured in one run.

    .venv/bin/python benchmarks/bench_llm_node.py [--streams 256] [--seconds 10] [--max-tokens 200]
        [--max-num-seqs 256] [--decode-base-ms 10] [--decode-per-seq-ms 0.05] [--profile out.json]

The node runs as in the lab (its own process, uvloop); the load is N concurrent streaming clients
(aiohttp on uvloop) in one separate process, each looping `POST /v1/completions` with
`stream: true, ignore_eos: true` and the given max_tokens. The engine profile is the lab's, except
that max_num_seqs is raised to the number of streams and the KV cache to fit them, so that every
stream decodes in every step and the node, not its scheduler, is what is measured.

Reported: streamed tokens/s (content chunks received per second by the clients), concurrent streams,
ITL p50/p99 as the clients saw it (gap between consecutive chunks of one stream, exact), the engine's
ITL from `vllm:inter_token_latency_seconds` (mean exact from _sum/_count; p50/p99 interpolated in
vLLM's buckets as histogram_quantile does), and their ratios. `--profile` runs py-spy (if installed)
on the node for the measured window and writes a speedscope profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from reliability.lab.config import PredictorConfig  # noqa: E402
from reliability.lab.llm.engine import EngineConfig  # noqa: E402
from reliability.lab.llm.tinylm import LmConfig, write_checkpoint  # noqa: E402
from reliability.lab.model import write_checkpoint as write_predictor  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_itl(api: str) -> tuple[list[tuple[float, float]], float, float]:
    """(cumulative buckets, sum, count) of vllm:inter_token_latency_seconds."""
    text = urllib.request.urlopen(f"{api}/metrics", timeout=10).read().decode()
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for fam in text_string_to_metric_families(text):
        if fam.name != "vllm:inter_token_latency_seconds":
            continue
        for s in fam.samples:
            if s.name.endswith("_bucket"):
                buckets.append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_sum"):
                total = s.value
            elif s.name.endswith("_count"):
                count = s.value
    return sorted(buckets), total, count


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile on cumulative (le, count) pairs."""
    total = buckets[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_count) / max(count - prev_count, 1e-12)
        prev_le, prev_count = le, count
    return prev_le


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the client process ------------------------------------------------------------------------


async def _clients(api: str, streams: int, seconds: float, warmup: float, max_tokens: int) -> dict[str, Any]:
    import aiohttp

    body = json.dumps(
        {"prompt": "Benchmark:", "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
    ).encode()
    t_start = time.perf_counter()
    t_measure, t_end = t_start + warmup, t_start + warmup + seconds
    gaps: list[float] = []
    tokens = [0]
    requests = [0]
    active = [0]
    peak = [0]

    async def one(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < t_end:
            last = None
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            async with session.post(
                f"{api}/v1/completions", data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                async for line in resp.content:
                    if not line.startswith(b"data: {") or b'"choices":[]' in line:
                        continue
                    now = time.perf_counter()
                    if t_measure <= now <= t_end:
                        tokens[0] += 1
                        if last is not None:
                            gaps.append(now - last)
                    last = now
            active[0] -= 1
            if t_measure <= time.perf_counter() <= t_end:
                requests[0] += 1

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(session) for _ in range(streams)))
    return {"tokens": tokens[0], "requests": requests[0], "gaps": gaps, "peak_streams": peak[0]}


def client_main(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_clients(args.api, args.streams, args.seconds, args.warmup, args.max_tokens))
    gaps = result.pop("gaps")
    result.update(
        itl_p50=percentile(gaps, 0.50),
        itl_p99=percentile(gaps, 0.99),
        itl_mean=statistics.fmean(gaps) if gaps else float("nan"),
    )
    print(json.dumps(result))


# --- the driver --------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--max-num-seqs", type=int, default=None, help="default: --streams")
    ap.add_argument("--decode-base-ms", type=float, default=10.0)
    ap.add_argument("--decode-per-seq-ms", type=float, default=0.05)
    ap.add_argument("--profile", type=Path, default=None, help="py-spy speedscope output for the node")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--api", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client_main(args)
        return

    seqs = args.max_num_seqs or args.streams
    engine = EngineConfig.lab().model_copy(
        update={
            "max_num_seqs": seqs,
            "kv_cache_tokens": max(12_288, seqs * (args.max_tokens + 64)),
            "decode_step_base_s": args.decode_base_ms / 1000,
            "decode_step_per_seq_s": args.decode_per_seq_ms / 1000,
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        d = Path(tmp)
        api_port, agent_port = free_port(), free_port()
        spec = {
            "id": "bench-1",
            "region": "bench",
            "api_port": api_port,
            "agent_port": agent_port,
            "checkpoint": str(d / "lm.npz"),
            "sha256": write_checkpoint(d / "lm.npz", LmConfig()),
            "predictor_checkpoint": str(d / "mlp.npz"),
            "predictor_sha256": write_predictor(d / "mlp.npz", PredictorConfig()),
            "served_model_name": "bench",
            "predictor_name": "predictor",
            "model_version": "v1",
            "engine": engine.model_dump(),
            "gpu": {
                "uuid": "GPU-00000000-0000-4000-8000-000000000000",
                "model_name": "NVIDIA H100 80GB HBM3",
                "index": 0,
                "pci_bus_id": "00000000:18:00.0",
                "fb_total_mib": 81559,
            },
            "load_s": 0.0,
            "warmup_s": 0.0,
        }
        node = subprocess.Popen(
            [sys.executable, "-m", "reliability.lab.llm.node", json.dumps(spec)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        api = f"http://127.0.0.1:{api_port}"
        spy = None
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if urllib.request.urlopen(f"{api}/health", timeout=1).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or node.poll() is not None:
                    raise SystemExit("node did not become ready")
                time.sleep(0.1)
            client = subprocess.Popen(
                [sys.executable, __file__, "--client", "--api", api, "--streams", str(args.streams),
                 "--seconds", str(args.seconds), "--warmup", str(args.warmup),
                 "--max-tokens", str(args.max_tokens)],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(args.warmup)
            before = engine_itl(api)
            cpu0 = _cpu_seconds(node.pid), _cpu_seconds(client.pid)
            if args.profile and shutil.which("py-spy"):
                record = ["py-spy", "record", "-p", str(node.pid), "-d", str(int(args.seconds))]
                spy = subprocess.Popen(
                    [*record, "-f", "speedscope", "-o", str(args.profile), "-r", "200"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            time.sleep(args.seconds)
            after = engine_itl(api)
            cpu1 = _cpu_seconds(node.pid), _cpu_seconds(client.pid)
            out, _ = client.communicate(timeout=120)
            if spy is not None:
                spy.wait(60)
        finally:
            node.terminate()
            node.wait(10)
    res = json.loads(out)
    buckets = [(le, c1 - c0) for (le, c1), (_, c0) in zip(after[0], before[0], strict=True)]
    n = after[2] - before[2]
    eng_mean = (after[1] - before[1]) / n if n else float("nan")
    eng_p50, eng_p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
    tps = res["tokens"] / args.seconds
    node_cpu, client_cpu = (cpu1[0] - cpu0[0]), (cpu1[1] - cpu0[1])
    step_ms = args.decode_base_ms + args.decode_per_seq_ms * seqs
    print(f"engine: max_num_seqs={seqs}, decode step {args.decode_base_ms} + {args.decode_per_seq_ms} ms/seq")
    print(f"  (a full batch steps every {step_ms:.1f} ms: at most {1000 * seqs / step_ms:.0f} tokens/s)")
    print(f"streams={args.streams} (peak concurrent {res['peak_streams']}) max_tokens={args.max_tokens}")
    print(f"streamed tokens/s       {tps:10.0f}   requests/s {res['requests'] / args.seconds:.1f}")
    print(
        f"CPU: node {node_cpu / args.seconds:.2f} cores, client {client_cpu / args.seconds:.2f} cores "
        f"({1e6 * node_cpu / max(res['tokens'], 1):.1f} us node CPU per streamed token)"
    )
    cm, c50, c99 = res["itl_mean"], res["itl_p50"], res["itl_p99"]
    print("ITL (ms)         mean      p50      p99")
    print(f"  engine     {eng_mean * 1e3:8.2f} {eng_p50 * 1e3:8.2f} {eng_p99 * 1e3:8.2f}   (vLLM buckets)")
    print(f"  client     {cm * 1e3:8.2f} {c50 * 1e3:8.2f} {c99 * 1e3:8.2f}")
    print(f"  ratio      {cm / eng_mean:8.2f} {c50 / eng_p50:8.2f} {c99 / eng_p99:8.2f}   (client / engine)")
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.profile:
        print(f"profile: {args.profile}" if spy is not None else "profile: py-spy not found on PATH")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
